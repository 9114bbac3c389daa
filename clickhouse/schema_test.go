package clickhouse

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// ddlColumn is a column definition parsed from a CREATE TABLE statement.
type ddlColumn struct {
	name, typ, dflt, comment, codec string
}

// ddlTable is a CREATE TABLE statement, parsed.
type ddlTable struct {
	name    string // database.table
	columns []ddlColumn
	tail    string // everything after the column list
}

var (
	createRE = regexp.MustCompile(`(?s)^CREATE TABLE IF NOT EXISTS (\w+\.\w+)(?: ON CLUSTER \w+)?\n\(\n(.*)\n\)\n(.*)$`)
	columnRE = regexp.MustCompile(`^    (\w+) (.+?)(?: DEFAULT (.+?))?(?: COMMENT '((?:[^'\\]|\\.)*)')?(?: CODEC\((.+)\))?(,?)$`)
	insertRE = regexp.MustCompile(`^INSERT INTO (\w+\.\w+) \((.*)\)$`)
)

// parseCreate parses a CREATE TABLE statement as the schema writes them.
func parseCreate(t *testing.T, stmt string) ddlTable {
	t.Helper()
	m := createRE.FindStringSubmatch(stmt)
	if m == nil {
		t.Fatalf("not a CREATE TABLE statement of the expected shape:\n%s", stmt)
	}
	tbl := ddlTable{name: m[1], tail: m[3]}
	lines := strings.Split(m[2], "\n")
	for i, line := range lines {
		c := columnRE.FindStringSubmatch(line)
		if c == nil {
			t.Fatalf("%s: column line %q lacks a type", tbl.name, line)
		}
		if last := i == len(lines)-1; (c[6] == ",") == last {
			t.Fatalf("%s: column line %q: misplaced comma", tbl.name, line)
		}
		tbl.columns = append(tbl.columns, ddlColumn{name: c[1], typ: c[2], dflt: c[3], comment: c[4], codec: c[5]})
	}
	return tbl
}

func (t ddlTable) names() []string {
	var names []string
	for _, c := range t.columns {
		names = append(names, c.name)
	}
	return names
}

// creates returns the parsed CREATE TABLE statements of every migration,
// keyed by qualified table name.
func creates(t *testing.T, d Dialect, o SchemaOptions) map[string]ddlTable {
	t.Helper()
	out := make(map[string]ddlTable)
	for _, m := range Migrations() {
		for _, stmt := range m.Statements(d, o) {
			if strings.HasPrefix(stmt, "CREATE TABLE") {
				tbl := parseCreate(t, stmt)
				out[tbl.name] = tbl
			}
		}
	}
	out["consentry.schema_migrations"] = parseCreate(t, newSchema(o).migrations.def.create(d, o.withDefaults())[0])
	return out
}

func dialects(t *testing.T) []Dialect {
	t.Helper()
	var ds []Dialect
	for _, v := range []string{"18.16.1", "26.7.2.1"} {
		d, err := ParseVersion(v)
		if err != nil {
			t.Fatal(err)
		}
		ds = append(ds, d)
	}
	return ds
}

func TestTables(t *testing.T) {
	want := []string{"sessions", "gestures", "crashes", "custom_events", "diagnostics", "rejects", "sessions_daily", "erasures", "crash_groups_daily"}
	if got := Tables(); !slices.Equal(got, want) {
		t.Errorf("Tables() = %v, want %v", got, want)
	}
}

func TestEveryColumnHasAComment(t *testing.T) {
	for _, d := range dialects(t) {
		tables := creates(t, d, SchemaOptions{})
		// 15, the k-anonymity tables, alert_deliveries, mappings and
		// secret_fingerprints.
		if want := 15 + len(newKanonSchema(newSchema(SchemaOptions{})).tables()) + 3; len(tables) != want {
			t.Errorf("%s: %d tables, want %d", d, len(tables), want)
		}
		for name, tbl := range tables {
			seen := make(map[string]bool)
			for _, c := range tbl.columns {
				if len(c.comment) < 10 {
					t.Errorf("%s: %s.%s: comment %q says too little", d, name, c.name, c.comment)
				}
				if seen[c.name] {
					t.Errorf("%s: %s: column %s twice", d, name, c.name)
				}
				seen[c.name] = true
			}
		}
	}
}

func TestInsertColumnsMatchDDL(t *testing.T) {
	s := newSchema(SchemaOptions{})
	inserts := map[string]string{
		"sessions":            s.sessions.insertSQL,
		"gestures":            s.gestures.insertSQL,
		"crashes":             s.crashes.insertSQL,
		"custom_events":       s.customs.insertSQL,
		"diagnostics":         s.diagnostics.insertSQL,
		"rejects":             s.rejects.insertSQL,
		"schema_migrations":   s.migrations.insertSQL,
		"apps":                s.apps.insertSQL,
		"revocations":         s.revocations.insertSQL,
		"erasures":            s.erasures.insertSQL,
		"crash_group_status":  s.crashStatus.insertSQL,
		"crash_group_changes": s.crashChanges.insertSQL,
	}
	for _, d := range dialects(t) {
		tables := creates(t, d, SchemaOptions{})
		for name, sql := range inserts {
			m := insertRE.FindStringSubmatch(sql)
			if m == nil || m[1] != "consentry."+name {
				t.Fatalf("insert for %s: %q", name, sql)
			}
			if got, want := strings.Split(m[2], ", "), tables[m[1]].names(); !slices.Equal(got, want) {
				t.Errorf("%s: insert columns of %s\n got %v\nwant %v", d, name, got, want)
			}
		}
	}
}

func TestEventTablesShareCommonColumns(t *testing.T) {
	common := []string{"app_id", "event_date", "event_time", "event_id", "session_key", "app_version", "app_build",
		"sdk_version", "device_class", "device_model", "os_name", "os_version", "locale", "country", "region", "consent_key"}
	tables := creates(t, dialects(t)[0], SchemaOptions{})
	for _, name := range []string{"sessions", "gestures", "crashes", "custom_events", "diagnostics"} {
		tbl := tables["consentry."+name]
		if got := tbl.names()[:len(common)]; !slices.Equal(got, common) {
			t.Errorf("%s starts with %v, want %v", name, got, common)
		}
		if !strings.Contains(tbl.tail, "PARTITION BY toYYYYMMDD(event_date)") || !strings.Contains(tbl.tail, "ORDER BY (app_id, event_date, ") {
			t.Errorf("%s: partitioning or sorting key:\n%s", name, tbl.tail)
		}
		if c := tbl.columns[len(common)-1]; c.typ != "String" || c.dflt != "''" {
			t.Errorf("%s.consent_key: %+v, want a plain String with DEFAULT ''", name, c)
		}
	}
}

func TestStoreTablesDDL(t *testing.T) {
	for _, d := range dialects(t) {
		tables := creates(t, d, SchemaOptions{})
		for name, want := range map[string][]string{
			"apps":        {"ENGINE = ReplacingMergeTree(version)\nORDER BY (app_id)"},
			"revocations": {"ENGINE = ReplacingMergeTree(version)\nPARTITION BY toYYYYMM(expires_at)\nORDER BY (consent_hash)"},
			"erasures":    {"ENGINE = MergeTree()\nPARTITION BY toYYYYMM(erased_at)\nORDER BY (app_id, erased_at)"},
		} {
			tbl := tables["consentry."+name]
			for _, w := range want {
				if !strings.Contains(tbl.tail, w) {
					t.Errorf("%s: %s lacks %q:\n%s", d, name, w, tbl.tail)
				}
			}
		}
		for name, cols := range map[string]string{
			"apps":        "[app_id key_hash scopes policy created_at updated_at version]",
			"revocations": "[consent_hash app_id revoked_at expires_at erase version]",
			"erasures":    "[erased_at app_id consent_key table_name rows]",
		} {
			if got := fmt.Sprint(tables["consentry."+name].names()); got != cols {
				t.Errorf("%s: %s columns %s, want %s", d, name, got, cols)
			}
		}
	}
}

// TestAddConsentKey checks migration 3's statements: the column where new
// tables have it, with its comment, idempotent on either kind of server.
func TestAddConsentKey(t *testing.T) {
	const comment = "'For apps whose erasure policy is erasable: a keyed pseudonym of the consent (HMAC-SHA-256 under a server secret), so a revoked consent\\'s rows can be erased; empty for anonymous apps, whose rows carry no link to any consent.'"
	ds := dialects(t)
	m := Migrations()[2]
	if m.Version != 3 {
		t.Fatalf("third migration is %d", m.Version)
	}
	want := map[string][]string{
		ds[0].Version: {
			"ALTER TABLE consentry.sessions ADD COLUMN consent_key String DEFAULT '' AFTER region",
			"ALTER TABLE consentry.sessions COMMENT COLUMN consent_key " + comment,
		},
		ds[1].Version: {
			"ALTER TABLE consentry.sessions ADD COLUMN IF NOT EXISTS consent_key String DEFAULT '' COMMENT " + comment + " CODEC(ZSTD(1)) AFTER region",
		},
	}
	for _, d := range ds {
		stmts := m.Statements(d, SchemaOptions{})
		if n := len(want[d.Version]) * len(EventTables()); len(stmts) != n {
			t.Errorf("%s: %d statements, want %d: %q", d, len(stmts), n, stmts)
			continue
		}
		if got := stmts[:len(want[d.Version])]; !slices.Equal(got, want[d.Version]) {
			t.Errorf("%s:\n got %q\nwant %q", d, got, want[d.Version])
		}
		for _, stmt := range stmts {
			if !strings.Contains(stmt, "consent_key") {
				t.Errorf("%s: %s", d, stmt)
			}
		}
	}
	// On a cluster, the storage and the Distributed tables get the column:
	// on modern servers through ALTER ... ON CLUSTER; on 18.16, which
	// refuses that on a Distributed table, the Distributed table is made
	// again, and no COMMENT COLUMN touches a Replicated table.
	stmts := m.Statements(ds[1], SchemaOptions{Cluster: "events"})
	for _, w := range []string{
		"ALTER TABLE consentry.crashes_local ON CLUSTER events ADD COLUMN IF NOT EXISTS consent_key String DEFAULT '' COMMENT " + comment + " CODEC(ZSTD(1)) AFTER region",
		"ALTER TABLE consentry.crashes ON CLUSTER events ADD COLUMN IF NOT EXISTS consent_key String DEFAULT '' COMMENT " + comment + " AFTER region",
	} {
		if !slices.Contains(stmts, w) {
			t.Errorf("modern cluster statements lack %q", w)
		}
	}
	stmts = m.Statements(ds[0], SchemaOptions{Cluster: "events"})
	for _, w := range []string{
		"ALTER TABLE consentry.crashes_local ON CLUSTER events ADD COLUMN consent_key String DEFAULT '' AFTER region",
		"DROP TABLE IF EXISTS consentry.crashes ON CLUSTER events",
	} {
		if !slices.Contains(stmts, w) {
			t.Errorf("legacy cluster statements lack %q", w)
		}
	}
	if !slices.ContainsFunc(stmts, func(s string) bool {
		return strings.HasPrefix(s, "CREATE TABLE IF NOT EXISTS consentry.crashes ON CLUSTER events\n") && strings.Contains(s, "consent_key String DEFAULT ''")
	}) {
		t.Errorf("legacy cluster statements do not make crashes' Distributed table again with the column: %q", stmts)
	}
	for _, s := range stmts {
		if strings.Contains(s, "COMMENT COLUMN") {
			t.Errorf("legacy cluster statement comments a column of a Replicated table: %s", s)
		}
	}
	// Nor do its Replicated tables get comments in CREATE, which 18.16
	// refuses; its Distributed tables do.
	for _, m := range Migrations() {
		for _, s := range m.Statements(ds[0], SchemaOptions{Cluster: "events"}) {
			if strings.Contains(s, "ENGINE = Replicated") && strings.Contains(s, " COMMENT ") {
				t.Errorf("legacy Replicated table with comments:\n%s", s)
			}
			if strings.Contains(s, "ENGINE = Distributed") && !strings.Contains(s, " COMMENT ") {
				t.Errorf("legacy Distributed table without comments:\n%s", s)
			}
		}
	}
}

// TestDialectsCompatible checks that both dialects make the same columns with
// types that every query treats alike.
func TestDialectsCompatible(t *testing.T) {
	ds := dialects(t)
	legacy, modern := creates(t, ds[0], SchemaOptions{}), creates(t, ds[1], SchemaOptions{})
	unwrap := strings.NewReplacer("LowCardinality(String)", "String")
	for name, l := range legacy {
		m := modern[name]
		if !slices.Equal(l.names(), m.names()) {
			t.Errorf("%s: columns differ:\nlegacy %v\nmodern %v", name, l.names(), m.names())
			continue
		}
		for i := range l.columns {
			if lt, mt := l.columns[i].typ, unwrap.Replace(m.columns[i].typ); lt != mt {
				t.Errorf("%s.%s: legacy type %s, modern %s", name, l.columns[i].name, lt, m.columns[i].typ)
			}
		}
	}
}

func TestLegacyDDLAvoidsNewSyntax(t *testing.T) {
	d := dialects(t)[0]
	for _, m := range Migrations() {
		for _, stmt := range m.Statements(d, SchemaOptions{}) {
			// 18.16 has no ADD COLUMN IF NOT EXISTS, and drops a COMMENT
			// given in ADD COLUMN.
			if strings.Contains(stmt, " ADD COLUMN ") && (strings.Contains(stmt, "IF NOT EXISTS") || strings.Contains(stmt, "COMMENT")) {
				t.Errorf("legacy ADD COLUMN with IF NOT EXISTS or COMMENT:\n%s", stmt)
			}
			// SETTINGS index_granularity is old; ttl_only_drop_parts is not.
			for _, word := range []string{"LowCardinality", "CODEC", "TTL", "ttl_only_drop_parts", "DateTime64", "Map("} {
				if strings.Contains(stmt, word) {
					t.Errorf("legacy statement uses %s:\n%s", word, stmt)
				}
			}
			if i := strings.Index(stmt, "\n)\n"); i >= 0 && strings.Contains(stmt[i:], "COMMENT") {
				t.Errorf("legacy statement has a table comment:\n%s", stmt)
			}
		}
	}
}

func TestModernDDL(t *testing.T) {
	d := dialects(t)[1]
	o := SchemaOptions{RetentionDays: map[string]int{"sessions": 30, "rejects": 7}}
	tables := creates(t, d, o)
	ttl := map[string]string{
		"sessions":       "TTL event_date + toIntervalDay(30)",
		"gestures":       "TTL event_date + toIntervalDay(90)",
		"crashes":        "TTL event_date + toIntervalDay(90)",
		"custom_events":  "TTL event_date + toIntervalDay(90)",
		"diagnostics":    "TTL event_date + toIntervalDay(90)",
		"rejects":        "TTL minute + toIntervalDay(7)",
		"sessions_daily": "TTL event_date + toIntervalDay(400)",
		"erasures":       "TTL erased_at + toIntervalDay(1095)",
		"revocations":    "TTL expires_at",
	}
	for name, want := range ttl {
		tail := tables["consentry."+name].tail
		settings := "ttl_only_drop_parts = 1"
		if slices.Contains(EventTables(), name) {
			settings += ", non_replicated_deduplication_window = 10000"
		}
		if !strings.Contains(tail, want+"\nSETTINGS "+settings+"\nCOMMENT '") {
			t.Errorf("%s: want %q, a setting and a table comment:\n%s", name, want, tail)
		}
	}
	for _, name := range []string{"schema_migrations", "apps"} {
		if tail := tables["consentry."+name].tail; strings.Contains(tail, "TTL") || !strings.Contains(tail, "COMMENT") {
			t.Errorf("%s:\n%s", name, tail)
		}
	}
	var lowCard, codecs int
	for _, tbl := range tables {
		for _, c := range tbl.columns {
			if strings.Contains(c.typ, "LowCardinality") {
				lowCard++
			}
			if c.codec != "" {
				codecs++
			}
		}
	}
	if lowCard < 50 || codecs < 10 {
		t.Errorf("modern schema: %d LowCardinality columns, %d with codecs; want more", lowCard, codecs)
	}
}

func TestClusterDDL(t *testing.T) {
	o := SchemaOptions{Cluster: "events"}
	for _, d := range dialects(t) {
		var stmts []string
		for _, m := range Migrations() {
			stmts = append(stmts, m.Statements(d, o)...)
		}
		for _, stmt := range stmts {
			if !strings.Contains(strings.SplitN(stmt, "\n", 2)[0], " ON CLUSTER events") {
				t.Errorf("%s: statement without ON CLUSTER:\n%s", d, stmt)
			}
		}
		all := strings.Join(stmts, "\n;\n")
		for _, want := range []string{
			"CREATE TABLE IF NOT EXISTS consentry.sessions_local ON CLUSTER events",
			"ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/events/{shard}/consentry/sessions_local', '{replica}')",
			"CREATE TABLE IF NOT EXISTS consentry.sessions ON CLUSTER events",
			"ENGINE = Distributed(events, consentry, sessions_local, sipHash64(toString(event_id)))",
			"ENGINE = ReplicatedSummingMergeTree('/clickhouse/tables/events/{shard}/consentry/rejects_local', '{replica}')",
			"ENGINE = Distributed(events, consentry, rejects_local, rand())",
			"ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/events/{shard}/consentry/sessions_daily_local', '{replica}')",
			"ENGINE = Distributed(events, consentry, sessions_daily_local)",
			"TO consentry.sessions_daily_local",
			"FROM consentry.sessions_local",
			// Placed everywhere: one replica set over every server.
			"CREATE TABLE IF NOT EXISTS consentry.apps ON CLUSTER events",
			"ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/events/all/consentry/apps', '{shard}-{replica}', version)",
			"ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/events/all/consentry/revocations', '{shard}-{replica}', version)",
			"ENGINE = ReplicatedMergeTree('/clickhouse/tables/events/all/consentry/erasures', '{shard}-{replica}')",
			"ENGINE = ReplicatedMergeTree('/clickhouse/tables/events/all/consentry_private/session_salts', '{shard}-{replica}')",
			"ENGINE = ReplicatedMergeTree('/clickhouse/tables/events/all/consentry/crash_group_status', '{shard}-{replica}')",
			// Held rows go with their events.
			"ENGINE = ReplicatedMergeTree('/clickhouse/tables/events/{shard}/consentry_private/held_crashes_local', '{replica}')",
			"ENGINE = Distributed(events, consentry_private, held_crashes_local, sipHash64(toString(event_id)))",
			"ALTER TABLE consentry.sessions_local ON CLUSTER events ADD COLUMN ",
		} {
			if !strings.Contains(all, want) {
				t.Errorf("%s: cluster DDL lacks %q", d, want)
			}
		}
		for _, unwanted := range []string{"apps_local", "revocations_local", "erasures_local", "session_salts_local", "schema_migrations_local", "kanon_releases_local"} {
			if strings.Contains(all, unwanted) {
				t.Errorf("%s: cluster DDL has %s, of a table placed everywhere", d, unwanted)
			}
		}
		// The Distributed tables have the same columns as the ones they front.
		tables := make(map[string]ddlTable)
		for _, stmt := range stmts {
			if strings.HasPrefix(stmt, "CREATE TABLE") {
				tbl := parseCreate(t, stmt)
				tables[tbl.name] = tbl
			}
		}
		s := newSchema(o)
		for _, tbl := range append(s.all()[1:], newKanonSchema(s).tables()...) { // Migrate makes schema_migrations
			name := tbl.database + "." + tbl.name
			if tbl.placement == everywhere {
				if _, ok := tables[name]; !ok {
					t.Errorf("%s: %s not created", d, name)
				}
				continue
			}
			dist, local := tables[name], tables[name+"_local"]
			if len(local.columns) == 0 || !slices.Equal(dist.names(), local.names()) {
				t.Errorf("%s: %s: distributed columns %v, local %v", d, name, dist.names(), local.names())
			}
		}
	}
}

// TestPlacements checks what every table's cluster form relies on, so a
// table added later cannot get it wrong unnoticed.
func TestPlacements(t *testing.T) {
	o := SchemaOptions{Cluster: "c"}
	s := newSchema(o)
	k := newKanonSchema(s)
	paths := make(map[string]string)
	for _, tbl := range append(s.all(), k.tables()...) {
		path := tbl.zooKeeperPath(s.opts)
		if other, ok := paths[path]; ok {
			t.Errorf("%s and %s share the replication path %s", tbl.name, other, path)
		}
		paths[path] = tbl.name
		switch tbl.placement {
		case everywhere:
			if tbl.shardKey != "" {
				t.Errorf("%s is placed everywhere but has a shard key", tbl.name)
			}
		case sharded:
			if tbl.quorum != noQuorum {
				t.Errorf("%s is sharded but has an insert quorum", tbl.name)
			}
		}
	}
	// The event tables and their held rows keep an event's copies on one
	// shard: a shard key of the event id alone, the same for both.
	for i, tbl := range s.eventTables() {
		if tbl.placement != sharded || tbl.shardKey != "sipHash64(toString(event_id))" || k.held[i].shardKey != tbl.shardKey || k.held[i].placement != sharded {
			t.Errorf("%s (%v %q) and %s (%v %q): want both sharded by the event id", tbl.name, tbl.placement, tbl.shardKey, k.held[i].name, k.held[i].placement, k.held[i].shardKey)
		}
	}
	// What every collector reads locally, and what must be on every
	// server once acknowledged.
	for _, tbl := range []*tableDef{s.apps.def, s.revocations.def, s.erasures.def, s.salts.def, s.crashStatus.def, s.migrations.def, k.releases.def, k.done.def, k.slots} {
		if tbl.placement != everywhere {
			t.Errorf("%s is not placed everywhere", tbl.name)
		}
	}
	for _, tbl := range []*tableDef{s.revocations.def, s.erasures.def, s.apps.def, s.salts.def} {
		if tbl.quorum == noQuorum {
			t.Errorf("%s: an acknowledged insert must be on two servers", tbl.name)
		}
	}
	if k.slots.quorum != quorumAll {
		t.Errorf("%s: a claim must be on every server once acknowledged", k.slots.name)
	}
	// ALTERs: ON CLUSTER for sharded tables, replication for the others.
	if got := s.sessions.def.alter(s.opts, "DELETE WHERE 1"); got != "ALTER TABLE consentry.sessions_local ON CLUSTER c DELETE WHERE 1" {
		t.Errorf("sharded alter: %s", got)
	}
	if got := s.revocations.def.alter(s.opts, "DELETE WHERE 1"); got != "ALTER TABLE consentry.revocations DELETE WHERE 1" {
		t.Errorf("everywhere alter: %s", got)
	}
	single := newSchema(SchemaOptions{})
	if got := single.sessions.def.alter(single.opts, "DELETE WHERE 1"); got != "ALTER TABLE consentry.sessions DELETE WHERE 1" {
		t.Errorf("single-server alter: %s", got)
	}
}

func TestTTLChanges(t *testing.T) {
	s := newSchema(SchemaOptions{RetentionDays: map[string]int{"gestures": 10}})
	current := map[string]string{
		"consentry.sessions":       "CREATE TABLE consentry.sessions (...) ENGINE = ReplacingMergeTree ORDER BY x TTL event_date + toIntervalDay(90) SETTINGS ttl_only_drop_parts = 1",
		"consentry.gestures":       "CREATE TABLE consentry.gestures (...) ENGINE = ReplacingMergeTree ORDER BY x TTL event_date + toIntervalDay(90) SETTINGS ttl_only_drop_parts = 1",
		"consentry.crashes":        "CREATE TABLE consentry.crashes (...) ENGINE = ReplacingMergeTree ORDER BY x SETTINGS index_granularity = 8192",
		"consentry.rejects":        "CREATE TABLE consentry.rejects (...) ENGINE = SummingMergeTree ORDER BY x TTL minute + toIntervalDay(400)",
		"consentry.sessions_daily": "CREATE TABLE consentry.sessions_daily (...) TTL event_date + toIntervalDay(4000) SETTINGS ttl_only_drop_parts = 1",
		"consentry.erasures":       "CREATE TABLE consentry.erasures (...) ENGINE = MergeTree PARTITION BY toYYYYMM(erased_at) ORDER BY (app_id, erased_at) SETTINGS index_granularity = 8192",
		"consentry.revocations":    "CREATE TABLE consentry.revocations (...) ENGINE = ReplacingMergeTree(version) PARTITION BY toYYYYMM(expires_at) ORDER BY consent_hash SETTINGS index_granularity = 8192",
		"consentry.apps":           "CREATE TABLE consentry.apps (...) ENGINE = ReplacingMergeTree(version) ORDER BY app_id SETTINGS index_granularity = 8192",
	}
	want := []string{
		"ALTER TABLE consentry.gestures MODIFY TTL event_date + toIntervalDay(10)",
		"ALTER TABLE consentry.crashes MODIFY SETTING ttl_only_drop_parts = 1",
		"ALTER TABLE consentry.crashes MODIFY TTL event_date + toIntervalDay(90)",
		"ALTER TABLE consentry.sessions_daily MODIFY TTL event_date + toIntervalDay(400)",
		"ALTER TABLE consentry.erasures MODIFY SETTING ttl_only_drop_parts = 1",
		"ALTER TABLE consentry.erasures MODIFY TTL erased_at + toIntervalDay(1095)",
		"ALTER TABLE consentry.revocations MODIFY SETTING ttl_only_drop_parts = 1",
		"ALTER TABLE consentry.revocations MODIFY TTL expires_at",
	}
	if got := s.ttlChanges(current); !slices.Equal(got, want) {
		t.Errorf("ttlChanges:\n got %q\nwant %q", got, want)
	}
	current["consentry.revocations"] = "CREATE TABLE consentry.revocations (...) ORDER BY consent_hash TTL expires_at SETTINGS ttl_only_drop_parts = 1, index_granularity = 8192"
	if got := s.ttlChanges(current); slices.ContainsFunc(got, func(s string) bool { return strings.Contains(s, "revocations") }) {
		t.Errorf("ttlChanges with the revocations' TTL in place: %q", got)
	}
}

func TestConfigValidate(t *testing.T) {
	good := []Config{
		{},
		{Addr: "db:9000", Database: "telemetry", Schema: SchemaOptions{Database: "telemetry", RetentionDays: map[string]int{"crashes": 365}}},
		{Schema: SchemaOptions{Database: "x_1", Cluster: "main"}},
	}
	for _, c := range good {
		if err := c.Validate(); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
	bad := []Config{
		{Database: "a-b"},
		{Database: "1st"},
		{Database: "a", Schema: SchemaOptions{Database: "b"}},
		{Schema: SchemaOptions{Cluster: "x;y"}},
		{Schema: SchemaOptions{RetentionDays: map[string]int{"sesions": 3}}},
		{Schema: SchemaOptions{RetentionDays: map[string]int{"sessions": -1}}},
		{Compression: "gzip"},
		{MaxOpenConns: -1},
		{ReadTimeout: -1},
	}
	for _, c := range bad {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
	if c := (Config{Database: "telemetry"}).withDefaults(); c.Schema.Database != "telemetry" {
		t.Errorf("Schema.Database = %q, want it to follow Database", c.Schema.Database)
	}
	if c := (Config{Schema: SchemaOptions{Database: "telemetry"}}).withDefaults(); c.Database != "telemetry" {
		t.Errorf("Database = %q, want it to follow Schema.Database", c.Database)
	}
}

func TestWriterConfigValidate(t *testing.T) {
	for _, c := range []WriterConfig{{}, {Flushers: 8, MaxBatchRows: 10, MaxPendingRows: 5, MaxRetries: -1}} {
		if err := c.Validate(); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
	for _, c := range []WriterConfig{{Flushers: 65}, {Flushers: -1}, {MaxBatchRows: -1}, {FlushInterval: -1}, {RetryBackoff: 2 * time.Second, MaxRetryBackoff: time.Second}} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
	if err := (RejectsConfig{MaxKeys: -1}).Validate(); err == nil {
		t.Error("RejectsConfig{MaxKeys: -1}: no error")
	}
}

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{`a`: `'a'`, `it's`: `'it\'s'`, `a\b`: `'a\\b'`} {
		if got := quote(in); got != want {
			t.Errorf("quote(%q) = %s, want %s", in, got, want)
		}
	}
}
