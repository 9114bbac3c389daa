package clickhouse

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap/zaptest"

	"github.com/consentry/consentry/anonymizer/kanon"
	"github.com/consentry/consentry/internal/faultproxy"
	"github.com/consentry/consentry/pipeline"
)

// generalizationSamples are quasi-identifiers that exercise every branch
// of the generalization: empty values, versions with and without a
// leading number or "v", locales with and without a region, quotes.
func generalizationSamples() []kanon.QI {
	return []kanon.QI{
		{AppVersion: "4.12.0", AppBuild: "4120003", SDKVersion: "consentry-go/0.1.0", DeviceClass: "phone", DeviceModel: "Pixel 8",
			OSName: "android", OSVersion: "14.0.1", Locale: "de-AT", Country: "AT", Region: "AT-9"},
		{AppVersion: "v2.1.0-beta", DeviceClass: "tablet", DeviceModel: "Jane's iPad", OSName: "ipados", OSVersion: "iPadOS 17", Locale: "fr", Country: "FR"},
		{AppVersion: "beta", OSVersion: "17", DeviceClass: "unknown", OSName: "unknown"},
		{AppVersion: "10.0.2.15", OSVersion: "4.", Locale: "pt-BR", Country: "BR", Region: "BR-SP"},
		{AppVersion: "V3", OSVersion: "١٤", Locale: "zh-419"},
		{},
	}
}

// generalizationQuery returns a query that generalizes samples as g says
// with qiExprs, one row per sample in order.
func generalizationQuery(g kanon.Generalization, samples []kanon.QI) string {
	rows := make([]string, len(samples))
	for i, q := range samples {
		cols := []string{fmt.Sprintf("toUInt32(%d) AS idx", i)}
		for j, v := range q.Values() {
			cols = append(cols, quote(v)+" AS "+qiColumns[j])
		}
		rows[i] = "SELECT " + strings.Join(cols, ", ")
	}
	exprs := qiExprs(g)
	return fmt.Sprintf("SELECT idx, %s FROM (%s) ORDER BY idx", strings.Join(exprs[:], ", "), strings.Join(rows, " UNION ALL "))
}

// checkGeneralizationSQL runs generalizationQuery for every level of the
// default hierarchy with query and compares with kanon's Go code.
func checkGeneralizationSQL(t *testing.T, query func(string) [][]string) {
	t.Helper()
	h := kanon.Hierarchy{}
	samples := generalizationSamples()
	for level := 0; level <= h.Top(); level++ {
		g := h.At(level)
		got := query(generalizationQuery(g, samples))
		if len(got) != len(samples) {
			t.Fatalf("level %d: %d rows, want %d", level, len(got), len(samples))
		}
		for i, q := range samples {
			want := g.Apply(q).Values()
			if fmt.Sprint(got[i][1:]) != fmt.Sprint(want[:]) {
				t.Errorf("level %d, %+v:\nSQL %q\nGo  %q", level, q, got[i][1:], want)
			}
		}
	}
}

func TestGeneralizationSQLIntegration(t *testing.T) {
	c := openClient(t, Config{})
	checkGeneralizationSQL(t, func(q string) [][]string { return stringRows(t, c, q) })
}

// heldFleetRows returns n mixed rows of one app and day, each sent by one of
// consents consents whose member key is its number (0: unknown), with the
// device values dev gives each consent, and the consent of each event.
func heldFleetRows(seed uint64, day time.Time, n, consents int, dev func(consent int) kanon.QI) (*pipeline.Rows, map[[16]byte]int) {
	rows := newRowGen(seed, day).rows(n)
	who := map[[16]byte]int{}
	i := 0
	eachCommon(rows, func(_ string, c *pipeline.Common) {
		consent := 1 + i%consents
		i++
		c.AppID = "com.example.notes"
		dev(consent).Apply(c)
		c.Member = uint64(consent)
		who[c.EventID] = consent
	})
	return rows, who
}

// storedClasses returns, per stored combination of quasi-identifiers of
// app across the event tables, the distinct consents behind its rows, and
// how often each event is stored.
func storedClasses(t *testing.T, c *Client, who map[[16]byte]int) (map[kanon.QI]map[int]bool, map[[16]byte]int) {
	t.Helper()
	classes := map[kanon.QI]map[int]bool{}
	stored := map[[16]byte]int{}
	for _, table := range EventTables() {
		rows, err := c.conn.Query(context.Background(), fmt.Sprintf("SELECT event_id, %s FROM %s.%s FINAL", qiList, c.Database(), table))
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id uuid.UUID
			var v [kanon.NumColumns]string
			dest := []any{&id}
			for i := range v {
				dest = append(dest, &v[i])
			}
			if err := rows.Scan(dest...); err != nil {
				t.Fatal(err)
			}
			q := kanon.QIFromValues(v)
			if classes[q] == nil {
				classes[q] = map[int]bool{}
			}
			classes[q][who[id]] = true
			stored[id]++
		}
		rows.Close()
	}
	return classes, stored
}

// waitMutationsDone waits until the server (every server of a cluster)
// has applied every mutation of c's databases.
func waitMutationsDone(t *testing.T, c *Client) {
	t.Helper()
	q := fmt.Sprintf("SELECT count() FROM system.mutations WHERE is_done = 0 AND database IN (%s, %s)", quote(c.Database()), quote(c.PrivateDatabase()))
	deadline := time.Now().Add(30 * time.Second)
	for {
		var pending uint64
		if c.hosts == nil {
			pending = queryUint64(t, c, q)
		} else {
			counts, err := c.countOnEveryReplica(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range counts {
				pending += n
			}
		}
		if pending == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("mutations not done after 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestReleaseIntegration runs release passes against a real server: rows
// of a crowd (published exactly at once), of devices that share every
// value but their model (published with the model generalized after the
// delay) and of a device unique in every way (published at the top); a
// retried batch; and an erased consent, whose held rows are never
// published. Every event must be stored once, and every stored
// combination but the top's must come from at least k consents.
func TestReleaseIntegration(t *testing.T) {
	testRelease(t, migrated(t, Config{}))
}

// testRelease is TestReleaseIntegration on c, a migrated Client of a
// server or cluster.
func testRelease(t *testing.T, c *Client) {
	ctx := context.Background()
	day := time.Now().UTC().Truncate(24 * time.Hour)
	const k = 3
	crowd := kanon.QI{AppVersion: "4.12.0", AppBuild: "4120003", SDKVersion: "consentry-go/0.1.0", DeviceClass: "phone",
		DeviceModel: "Pixel 8", OSName: "android", OSVersion: "14", Locale: "de-AT", Country: "AT", Region: "AT-9"}
	device := func(consent int) kanon.QI {
		q := crowd
		switch {
		case consent <= 4: // the crowd
		case consent <= 7:
			q.DeviceModel = fmt.Sprintf("Model %d", consent)
		case consent == 8:
			q.DeviceModel, q.OSVersion, q.AppVersion, q.Locale = "Jane's phone", "9", "1.0.0", "en-GB"
		case consent == 9: // erased: shares the crowd's values
		}
		return q
	}
	rows, who := heldFleetRows(1, day, 450, 9, device)
	for id, consent := range who {
		if consent == 9 {
			setConsentKey(rows, id, "erased-consent-key")
		}
	}
	// Consent 9's rows were erased (the audit log names its key).
	if err := insertRows(ctx, c.conn, c.schema.erasures, []erasureRow{{erasedAt: time.Now().UTC(), app: "com.example.notes", consentKey: "erased-consent-key", table: TableSessions}}); err != nil {
		t.Fatal(err)
	}
	if err := c.InsertHeld(ctx, rows, "held-1"); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	rel, err := kanon.NewReleaser(kanon.ReleaserConfig{Config: kanon.Config{K: k, Now: func() time.Time { return now }}, Store: c, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	pass := func() kanon.PassStats {
		t.Helper()
		st, err := rel.Pass(ctx)
		if err != nil {
			t.Fatal(err)
		}
		waitMutationsDone(t, c)
		return st
	}
	// At once: the crowd is published exactly, the others wait.
	st := pass()
	classes, stored := storedClasses(t, c, who)
	if len(classes) != 1 || len(classes[crowd]) != 4 || st.NewClasses != 1 {
		t.Fatalf("after the first pass: classes %v (%+v), want the crowd's with 4 consents", classes, st)
	}
	// The router learns the crowd's class.
	pub, err := c.Published(ctx, day, time.Time{})
	if err != nil || len(pub) != 1 || pub[0].QI != crowd || !pub[0].Day.Equal(day) {
		t.Fatalf("published: %+v, %v", pub, err)
	}
	// A retried batch: rows already stored are held again; the next pass
	// neither counts nor stores them twice, and deletes them.
	if err := c.InsertHeld(ctx, rows, "held-retry"); err != nil {
		t.Fatal(err)
	}
	// After the delay: models 5 to 7 meet at level 1 (model → other),
	// apart from the crowd, which is stored exactly; the unique device
	// goes to the top.
	now = now.Add(2 * time.Hour)
	st = pass()
	classes, stored = storedClasses(t, c, who)
	for q, consents := range classes {
		if q != kanon.TopQI() && len(consents) < k {
			t.Errorf("stored class %+v has %d consents", q, len(consents))
		}
		if consents[9] {
			t.Errorf("an erased consent's row was published in %+v", q)
		}
	}
	other := crowd
	other.DeviceModel = kanon.Other
	if len(classes[other]) != 3 || len(classes[kanon.TopQI()]) != 1 {
		t.Errorf("classes after the delay: %v", classes)
	}
	for id, consent := range who {
		if want := map[bool]int{true: 0, false: 1}[consent == 9]; stored[id] != want {
			t.Fatalf("event of consent %d stored %d times, want %d", consent, stored[id], want)
		}
	}
	if n, err := c.HeldRows(ctx, "com.example.notes"); err != nil || n != 0 {
		t.Errorf("%d rows still held (%v)", n, err)
	}
	if units, err := c.HeldUnits(ctx); err != nil || len(units) != 0 {
		t.Errorf("held units %v, %v", units, err)
	}
	// The log: the crowd exact, model → other at level 1, the top.
	log, done, err := c.Releases(ctx, kanon.Unit{App: "com.example.notes", Day: day})
	if err != nil {
		t.Fatal(err)
	}
	var levels []int
	for _, r := range log {
		if r.New {
			levels = append(levels, r.Level)
		}
		if !done[r.Pass] {
			t.Errorf("pass %d not marked done", r.Pass)
		}
	}
	if fmt.Sprint(levels) != "[0 1 10]" {
		t.Errorf("new classes at levels %v, want [0 1 10]", levels)
	}
	if err := c.PruneKanon(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
}

// TestReleaseResumesAfterRestartIntegration checks restart safety: held
// rows are in ClickHouse, so a new Releaser (a restarted collector)
// publishes them; and a pass that failed half-way, leaving a class logged
// and partly moved, is completed as it decided.
func TestReleaseResumesAfterRestartIntegration(t *testing.T) {
	c := migrated(t, Config{})
	ctx := context.Background()
	day := time.Now().UTC().Truncate(24 * time.Hour)
	base := kanon.QI{AppVersion: "4.12.0", DeviceClass: "phone", DeviceModel: "Pixel 8", OSName: "android", OSVersion: "14", Locale: "de-AT", Country: "AT", Region: "AT-9"}
	rows, who := heldFleetRows(2, day, 200, 4, func(consent int) kanon.QI {
		q := base
		q.DeviceModel = fmt.Sprintf("Model %d", consent)
		return q
	})
	if err := c.InsertHeld(ctx, rows, ""); err != nil {
		t.Fatal(err)
	}
	u := kanon.Unit{App: "com.example.notes", Day: day}
	// A pass decided, logged and moved only the first combination's rows,
	// then its collector died.
	other := base
	other.DeviceModel = kanon.Other
	g := kanon.Hierarchy{}.At(1)
	if err := c.LogReleases(ctx, u, []kanon.Release{{Pass: 99, Class: kanon.Class{Level: 1, QI: other}, Generalization: g, Consents: 4, Rows: 200, New: true,
		ExpiredBefore: time.Now(), ReleasedAt: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	first := base
	first.DeviceModel = "Model 1"
	if err := c.Move(ctx, u, kanon.Move{Level: 1, Generalization: g, Combos: []kanon.QI{first}}); err != nil {
		t.Fatal(err)
	}
	// A new collector: its first pass, before any delay, completes pass
	// 99's class rather than waiting.
	rel, err := kanon.NewReleaser(kanon.ReleaserConfig{Config: kanon.Config{K: 3}, Store: c})
	if err != nil {
		t.Fatal(err)
	}
	st, err := rel.Pass(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitMutationsDone(t, c)
	classes, stored := storedClasses(t, c, who)
	if st.Recovered != 1 || len(classes) != 1 || len(classes[other]) != 4 {
		t.Errorf("after the restart: %+v, classes %v; want pass 99 completed with 4 consents", st, classes)
	}
	for id := range who {
		if stored[id] != 1 {
			t.Fatalf("an event stored %d times", stored[id])
		}
	}
}

// setConsentKey sets the consent key of the row with event id.
func setConsentKey(rows *pipeline.Rows, id [16]byte, key string) {
	eachCommon(rows, func(_ string, c *pipeline.Common) {
		if c.EventID == id {
			c.ConsentKey = key
		}
	})
}

// TestSlotClaimedEarlierWinsIntegration: a release slot goes to the
// earliest claim by the server's clock, whatever the holders' names, once
// the claims are a second apart; a pass that runs long relies on it when
// it claims the next slot a second before the other replicas do (see
// kanon.Releaser.Run). Claims within one second go to the smallest holder.
func TestSlotClaimedEarlierWinsIntegration(t *testing.T) {
	c := migrated(t, Config{})
	ctx := context.Background()
	slot := uint64(time.Now().UnixNano())
	if err := c.ClaimSlot(ctx, slot, "zz-running-pass"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	for _, h := range []string{"aa-other", "00-other"} {
		if err := c.ClaimSlot(ctx, slot, h); err != nil {
			t.Fatal(err)
		}
	}
	if w, err := c.SlotHolder(ctx, slot); err != nil || w != "zz-running-pass" {
		t.Errorf("slot holder %q (%v), want the earlier claim zz-running-pass", w, err)
	}
	if w, err := c.SlotHolder(ctx, slot+1); err != nil || w != "" {
		t.Errorf("unclaimed slot's holder %q (%v), want none", w, err)
	}
}

// TestReleaseThroughSlowServerIntegration: a release pass whose queries
// go to ClickHouse through a slow network takes longer than its slot. It
// was cut off at the end of every slot and started over, so held rows
// were never published; now it holds the next slots and completes.
func TestReleaseThroughSlowServerIntegration(t *testing.T) {
	c := migrated(t, Config{})
	ctx := context.Background()
	day := time.Now().UTC().Truncate(24 * time.Hour)
	crowd := kanon.QI{AppVersion: "4.12.0", DeviceClass: "phone", DeviceModel: "Pixel 8", OSName: "android", OSVersion: "14",
		Locale: "de-AT", Country: "AT", Region: "AT-9"}
	rows, who := heldFleetRows(7, day, 200, 4, func(int) kanon.QI { return crowd })
	if err := c.InsertHeld(ctx, rows, "held-slow"); err != nil {
		t.Fatal(err)
	}
	p := faultproxy.StartForTest(t, shared.Addr())
	slow := openClient(t, Config{Addr: p.Addr(), Database: c.Database()})
	p.SetLatency(slowLatency)
	rel, err := kanon.NewReleaser(kanon.ReleaserConfig{Config: kanon.Config{K: 3, ReleaseInterval: 3 * time.Second},
		Store: slow, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- rel.Run(runCtx) }()
	defer func() {
		cancel()
		<-done
	}()
	start := time.Now()
	for time.Since(start) < 45*time.Second {
		if n := storedEvents(t, c); n == uint64(len(who)) {
			t.Logf("all %d held rows published after %v", n, time.Since(start).Round(time.Second))
			return
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("%d of %d held rows published in 45 s through a server %v away", storedEvents(t, c), len(who), slowLatency)
}

// slowLatency is how much the proxy delays every chunk of the slow
// server's traffic: a release pass then needs several seconds, more than
// a slot of 3 s leaves it.
const slowLatency = 60 * time.Millisecond
