package seed

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/anonymizer/fingerprint"
	"github.com/consentry/consentry/internal/fakedata"
	"github.com/consentry/consentry/pipeline"
)

// testEnd is the last day of the rows the tests look at.
var testEnd = time.Date(2026, 3, 14, 17, 30, 0, 0, time.UTC)

// defaultRows returns the rows of the default Config for seed.
func defaultRows(t *testing.T, seed uint64) *pipeline.Rows {
	t.Helper()
	return Rows(Config{End: testEnd, Seed: seed})
}

// seeds are the seeds the scenario checks run with, so that they hold
// for more than one random sequence.
var seeds = []uint64{1, 2, 3}

func TestDeterministic(t *testing.T) {
	cfg := Config{End: testEnd, Days: 3, SessionsPerDay: 60, Seed: 42}
	a, b := Rows(cfg), Rows(cfg)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two Rows of one Config differ")
	}
	cfg.Seed++
	if c := Rows(cfg); reflect.DeepEqual(a.Sessions, c.Sessions) {
		t.Fatal("Rows of different seeds are equal")
	}
	// Any time of End's day is the same day.
	cfg.Seed--
	cfg.End = testEnd.Truncate(24 * time.Hour).Add(time.Second)
	if c := Rows(cfg); !reflect.DeepEqual(a, c) {
		t.Fatal("Rows differ for two times of one End day")
	}
}

func TestDefaults(t *testing.T) {
	cfg := Config{End: testEnd}.withDefaults()
	if cfg.AppID != DefaultAppID || cfg.Days != DefaultDays || cfg.SessionsPerDay != DefaultSessionsPerDay {
		t.Fatalf("defaults: %+v", cfg)
	}
	if got, want := cfg.FirstDay(), time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("FirstDay = %v, want %v", got, want)
	}
	if got := (Config{}).LastDay(); !got.Equal(time.Now().UTC().Truncate(24*time.Hour)) && !got.Equal(time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -1)) {
		t.Errorf("LastDay of a zero End = %v, want today", got)
	}

	rows := defaultRows(t, 1)
	starts := map[time.Time]int{}
	for _, s := range rows.Sessions {
		if s.Phase == "start" {
			starts[s.EventTime.Truncate(24*time.Hour)]++
		}
	}
	if len(starts) != DefaultDays {
		t.Errorf("sessions on %d days, want %d", len(starts), DefaultDays)
	}
	for day, n := range starts {
		if n != DefaultSessionsPerDay {
			t.Errorf("%s: %d sessions, want %d", day.Format(time.DateOnly), n, DefaultSessionsPerDay)
		}
	}
}

// commons returns the common fields of every row.
func commons(rows *pipeline.Rows) []*pipeline.Common {
	var cs []*pipeline.Common
	for i := range rows.Sessions {
		cs = append(cs, &rows.Sessions[i].Common)
	}
	for i := range rows.Gestures {
		cs = append(cs, &rows.Gestures[i].Common)
	}
	for i := range rows.Crashes {
		cs = append(cs, &rows.Crashes[i].Common)
	}
	for i := range rows.Customs {
		cs = append(cs, &rows.Customs[i].Common)
	}
	for i := range rows.Diagnostics {
		cs = append(cs, &rows.Diagnostics[i].Common)
	}
	return cs
}

// sessionFields is what every row of a session shares.
func sessionFields(c *pipeline.Common) pipeline.Common {
	s := *c
	s.EventID, s.EventTime = [16]byte{}, time.Time{}
	return s
}

func TestCommonFields(t *testing.T) {
	cfg := Config{End: testEnd}
	rows := defaultRows(t, 1)
	first, end := cfg.FirstDay(), cfg.LastDay().Add(24*time.Hour)
	locales := map[string]string{RareRegion: "is-IS"}
	for _, p := range fakedata.Values(fakedata.Places()) {
		locales[p.Region] = p.Locale
	}
	osVersions := map[string][]string{osAndroid: fakedata.Values(fakedata.OSVersions(osAndroid)), osIOS: fakedata.Values(fakedata.OSVersions(osIOS))}

	sessions := map[uint64]pipeline.Common{}
	starts := map[uint64]time.Time{}
	for _, s := range rows.Sessions {
		if s.Phase == "start" {
			if _, dup := sessions[s.SessionKey]; dup {
				t.Fatalf("session key %d starts twice", s.SessionKey)
			}
			sessions[s.SessionKey] = sessionFields(&s.Common)
			starts[s.SessionKey] = s.EventTime
		}
	}
	ids := map[[16]byte]bool{}
	for _, c := range commons(rows) {
		if ids[c.EventID] {
			t.Fatalf("event id %x repeats", c.EventID)
		}
		ids[c.EventID] = true
		if c.EventID[6]>>4 != 4 {
			t.Fatalf("event id %x is not a version 4 UUID", c.EventID)
		}
		if c.EventTime.Location() != time.UTC || !c.EventTime.Equal(c.EventTime.Truncate(time.Minute)) {
			t.Fatalf("event time %v is not UTC to the minute", c.EventTime)
		}
		if c.EventTime.Before(first) || !c.EventTime.Before(end) {
			t.Fatalf("event time %v outside [%v, %v)", c.EventTime, first, end)
		}
		s, ok := sessions[c.SessionKey]
		if c.SessionKey == 0 || !ok {
			t.Fatalf("row of session %d without a start row", c.SessionKey)
		}
		if got := sessionFields(c); got != s {
			t.Fatalf("row's fields %+v differ from its session's %+v", got, s)
		}
		if start := starts[c.SessionKey]; c.EventTime.Before(start) || !c.EventTime.Truncate(24*time.Hour).Equal(start.Truncate(24*time.Hour)) {
			t.Fatalf("event at %v, its session started at %v", c.EventTime, start)
		}
	}
	for _, s := range sessions {
		if s.AppID != DefaultAppID || s.ConsentKey != "" || s.AppBuild == "" {
			t.Errorf("session %+v: bad app id, consent key or build", s)
		}
		if got := locales[s.Region]; got != s.Locale || !strings.HasPrefix(s.Region, s.Country+"-") {
			t.Errorf("session in %s/%s has locale %s", s.Country, s.Region, s.Locale)
		}
		if !slices.Contains(osVersions[s.OSName], s.OSVersion) {
			t.Errorf("session on %s %s", s.OSName, s.OSVersion)
		}
		if s.SDKVersion != "consentry-"+s.OSName+"/1.0.0" {
			t.Errorf("session on %s with SDK %s", s.OSName, s.SDKVersion)
		}
		if (s.DeviceClass == "tablet") != (s.DeviceModel == "iPad13,4") || (s.OSName == osIOS) != strings.HasPrefix(s.DeviceModel, "i") {
			t.Errorf("session on %s %s %s", s.DeviceClass, s.DeviceModel, s.OSName)
		}
		if !slices.Contains(Versions(), s.AppVersion) {
			t.Errorf("session of version %s", s.AppVersion)
		}
	}
}

func TestSessions(t *testing.T) {
	rows := defaultRows(t, 1)
	starts, ends := 0, 0
	started := map[uint64]bool{}
	var durations []uint64
	for _, s := range rows.Sessions {
		switch s.Phase {
		case "start":
			starts++
			started[s.SessionKey] = true
			if s.DurationMs != 0 || s.ForegroundMs != 0 {
				t.Errorf("start row with durations %d, %d", s.DurationMs, s.ForegroundMs)
			}
		case "end":
			ends++
			if !started[s.SessionKey] {
				t.Errorf("end of session %d before or without its start", s.SessionKey)
			}
			if s.ForegroundMs > s.DurationMs || s.DurationMs == 0 {
				t.Errorf("end row with duration %d and foreground %d", s.DurationMs, s.ForegroundMs)
			}
			durations = append(durations, s.DurationMs)
		default:
			t.Errorf("phase %q", s.Phase)
		}
	}
	if share := float64(ends) / float64(starts); share < 0.92 || share > 0.97 {
		t.Errorf("%.3f of sessions have an end row, want about 0.95", share)
	}
	slices.Sort(durations)
	if median := time.Duration(durations[len(durations)/2]) * time.Millisecond; median < 2*time.Minute || median > 4*time.Minute {
		t.Errorf("median session %v, want about 3 minutes", median)
	}

	perSession := func(kind string, n int) {
		if share := float64(n) / float64(starts); share < 0.5 {
			t.Errorf("%d %s rows for %d sessions", n, kind, starts)
		}
	}
	perSession("gesture", len(rows.Gestures))
	perSession("diagnostic", len(rows.Diagnostics))
	for _, g := range rows.Gestures {
		if g.Count < 1 || g.Count > 40 || (g.Type == "tap") != (g.DurationMs == 0) && g.Type != "double_tap" {
			t.Fatalf("gesture %+v", g)
		}
	}
	kinds := map[string]int{}
	for _, d := range rows.Diagnostics {
		kinds[d.Kind]++
		if d.Kind == "app_start" && (d.DurationMs < 300 || d.DurationMs > 2500 || d.StartType != "cold" && d.StartType != "warm") {
			t.Fatalf("app start %+v", d)
		}
		if d.Kind == "memory_warning" && d.MemoryBytes == 0 {
			t.Fatalf("memory warning %+v", d)
		}
	}
	if kinds["app_start"] != starts || kinds["hang"] == 0 || kinds["memory_warning"] == 0 {
		t.Errorf("diagnostics %v for %d sessions", kinds, starts)
	}
	names := map[string]int{}
	for _, c := range rows.Customs {
		names[c.Name]++
		if c.Name == "export_pdf" && (!slices.Contains([]string{"pdf", "png"}, c.StringValues[0]) || c.NumberKeys[0] != "pages" || c.BoolKeys[0] != "premium") {
			t.Fatalf("export_pdf %+v", c)
		}
	}
	if names["export_pdf"] == 0 || names["search_performed"] == 0 {
		t.Errorf("custom events %v", names)
	}
}

func TestVersionRollout(t *testing.T) {
	cfg := Config{End: testEnd}
	rows := defaultRows(t, 1)
	perDay := map[int]map[string]int{}
	for _, s := range rows.Sessions {
		if s.Phase != "start" {
			continue
		}
		d := dayIndex(cfg, s.EventTime)
		if perDay[d] == nil {
			perDay[d] = map[string]int{}
		}
		perDay[d][s.AppVersion]++
	}
	last := DefaultDays - 1
	for d := range DefaultDays {
		if n := perDay[d]["4.13.0"]; (d >= last-2) != (n > 0) {
			t.Errorf("day %d: %d sessions on 4.13.0; want some in the last three days only", d, n)
		}
	}
	if perDay[0]["4.11.2"] <= perDay[last]["4.11.2"] || perDay[0]["4.12.0"] <= perDay[last]["4.12.0"] {
		t.Errorf("old versions do not fade: first day %v, last day %v", perDay[0], perDay[last])
	}
	if perDay[0]["4.12.1"] != 0 || perDay[last]["4.12.1"] == 0 {
		t.Errorf("4.12.1 does not roll out: first day %v, last day %v", perDay[0], perDay[last])
	}
}

func TestRareValues(t *testing.T) {
	for _, seed := range seeds {
		rows := defaultRows(t, seed)
		models, regions := map[string]int{}, map[string]int{}
		for _, s := range rows.Sessions {
			if s.Phase == "start" {
				models[s.DeviceModel]++
				regions[s.Region]++
			}
		}
		for _, rare := range []int{models[RareModel], regions[RareRegion]} {
			if rare < 1 || rare >= 5 {
				t.Errorf("seed %d: rare model or region in %d sessions, want 1 to 4; models %v, regions %v", seed, rare, models, regions)
			}
		}
		for name, n := range models {
			if name != RareModel && n < 100 {
				t.Errorf("seed %d: model %s in only %d sessions", seed, name, n)
			}
		}
		for name, n := range regions {
			if name != RareRegion && n < 100 {
				t.Errorf("seed %d: region %s in only %d sessions", seed, name, n)
			}
		}
	}
}

// TestBugFingerprints draws many occurrences of every bug, in every
// version and OS version it occurs in, and checks they share the bug's
// fingerprint while their lines, offsets and messages vary.
func TestBugFingerprints(t *testing.T) {
	bugs := Bugs()
	if len(bugs) != len(catalogue) {
		t.Fatalf("Bugs returns %d bugs, want %d", len(bugs), len(catalogue))
	}
	seen := map[uint64]string{}
	for i, bug := range bugs {
		t.Run(bug.Name, func(t *testing.T) {
			if other, dup := seen[bug.Fingerprint]; dup {
				t.Fatalf("same fingerprint as %s", other)
			}
			seen[bug.Fingerprint] = bug.Name
			if got, ok := BugNamed(bug.Name); !ok || got.Fingerprint != bug.Fingerprint {
				t.Errorf("BugNamed(%q) = %v, %v", bug.Name, got.Name, ok)
			}
			if bug.Scenario == "" || len(bug.Versions) == 0 || bug.Example.Fingerprint != bug.Fingerprint {
				t.Errorf("incomplete: %+v", bug)
			}
			def := &catalogue[i]
			r := rand.New(rand.NewPCG(7, uint64(i)))
			messages, lines := map[string]bool{}, map[string]bool{}
			var platforms []string
			for _, p := range []struct {
				os       string
				versions []string
			}{{osAndroid, fakedata.Values(fakedata.OSVersions(osAndroid))}, {osIOS, fakedata.Values(fakedata.OSVersions(osIOS))}} {
				if def.os == "" || def.os == p.os {
					platforms = append(platforms, p.os)
					for v := range appVersions {
						if !def.inVersion(v) {
							continue
						}
						for _, osv := range p.versions {
							for range 20 {
								row := def.occurrenceOf(r, v, p.os, osv)
								if got := fingerprint.Sum(&row, bug.CustomKey); got != bug.Fingerprint {
									_, inputs := fingerprint.Of(&row, bug.CustomKey)
									_, want := fingerprint.Of(&bug.Example, bug.CustomKey)
									t.Fatalf("%s on %s %s: fingerprint %x, want %x\ninputs %q\nwant   %q", appVersions[v].name, p.os, osv, got, bug.Fingerprint, inputs, want)
								}
								checkOccurrence(t, def, &row)
								messages[row.Message] = true
								lines[fmt.Sprint(row.Frames)] = true
							}
						}
					}
				}
			}
			if len(messages) < 2 && len(lines) < 2 {
				t.Errorf("occurrences all alike: %d messages, %d stacks", len(messages), len(lines))
			}
			_, inputs := fingerprint.Of(&bug.Example, bug.CustomKey)
			fallback := slices.ContainsFunc(inputs, func(s string) bool { return strings.HasPrefix(s, "message:") })
			if fallback != bug.Fallback {
				t.Errorf("Fallback = %v, but the fingerprint's inputs are %q", bug.Fallback, inputs)
			}
		})
	}
}

// checkOccurrence checks that a crash looks like one.
func checkOccurrence(t *testing.T, def *bugDef, row *pipeline.CrashRow) {
	t.Helper()
	if row.ExceptionType == "" || row.Message == "" || row.Thread == "" || len(row.Frames) < 4 {
		t.Fatalf("incomplete crash %+v", row)
	}
	if row.Handled != def.handled || !def.handled && row.AppState != "foreground" {
		t.Fatalf("crash handled %v in state %s", row.Handled, row.AppState)
	}
	system := 0
	for _, f := range row.Frames {
		if f.Module == "" || f.Function == "" {
			t.Fatalf("frame without module or function: %+v", f)
		}
		if !f.InApp {
			system++
		}
	}
	if system == 0 {
		t.Fatalf("stack without system frames: %+v", row.Frames)
	}
}

// bugCounts is the occurrences of each bug, per day index and per app
// version.
type bugCounts struct {
	total    int
	perDay   map[int]int
	perVer   map[string]int
	os       map[string]int
	types    map[string]bool
	stacks   map[string]bool
	messages []string
}

func countBugs(t *testing.T, cfg Config, rows *pipeline.Rows) map[string]*bugCounts {
	t.Helper()
	names := map[uint64]string{}
	counts := map[string]*bugCounts{}
	for _, b := range Bugs() {
		names[b.Fingerprint] = b.Name
		counts[b.Name] = &bugCounts{perDay: map[int]int{}, perVer: map[string]int{}, os: map[string]int{}, types: map[string]bool{}, stacks: map[string]bool{}}
	}
	for i := range rows.Crashes {
		c := &rows.Crashes[i]
		name, ok := names[c.Fingerprint]
		if !ok {
			t.Fatalf("crash with a fingerprint of no bug: %+v", c)
		}
		bc := counts[name]
		bc.total++
		bc.perDay[dayIndex(cfg, c.EventTime)]++
		bc.perVer[c.AppVersion]++
		bc.os[c.OSName]++
		bc.types[c.ExceptionType] = true
		var fns []string
		for _, f := range c.Frames {
			if f.InApp {
				fns = append(fns, f.Function)
			}
		}
		bc.stacks[fmt.Sprint(fns)] = true
		bc.messages = append(bc.messages, c.Message)
	}
	return counts
}

func dayIndex(cfg Config, t time.Time) int {
	return int(t.Sub(cfg.FirstDay()) / (24 * time.Hour))
}

func TestScenarios(t *testing.T) {
	const last = DefaultDays - 1
	tests := []struct {
		bug   string
		check func(c *bugCounts) string
	}{
		{BugEditorDetached, func(c *bugCounts) string {
			if len(c.perDay) < DefaultDays-2 || len(c.perVer) != len(appVersions) {
				return "want occurrences on (nearly) every day and in every version"
			}
			return ""
		}},
		{BugSettingsDetached, func(c *bugCounts) string {
			if c.total == 0 {
				return "no occurrences"
			}
			return ""
		}},
		{BugListIndex, func(c *bugCounts) string {
			if len(c.perDay) < DefaultDays-2 || c.os[osIOS] != c.total {
				return "want occurrences on (nearly) every day, on iOS only"
			}
			return ""
		}},
		{BugImageDecoderSEGV, func(c *bugCounts) string {
			if c.total < 10 || !strings.Contains(c.messages[0], "fault addr 0x") {
				return "want a steady native crash with fault addresses"
			}
			return ""
		}},
		{BugSyncNullTitle, func(c *bugCounts) string {
			if c.perVer["4.11.2"] == 0 || c.perVer["4.12.0"] == 0 || c.perVer["4.12.1"]+c.perVer["4.13.0"] > 0 {
				return "want occurrences in 4.11.2 and 4.12.0 only"
			}
			return ""
		}},
		{BugShareAdapterIndex, func(c *bugCounts) string {
			if c.perVer["4.12.0"] == 0 || c.perVer["4.12.1"] > 0 || c.perVer["4.13.0"] == 0 || c.perVer["4.11.2"] > 0 {
				return "want occurrences in 4.12.0 and 4.13.0, none in 4.12.1"
			}
			return ""
		}},
		{BugPDFRenderer, func(c *bugCounts) string {
			if c.perDay[last] < 3 || c.perDay[last] != c.total {
				return "want several occurrences, all on the last day"
			}
			return ""
		}},
		{BugListUpdate, func(c *bugCounts) string {
			before := float64(c.total-c.perDay[last]) / float64(last)
			if before < 1 || float64(c.perDay[last]) < 5*before {
				return fmt.Sprintf("want a few a day, then a jump on the last day: %.1f a day before, %d on the last", before, c.perDay[last])
			}
			return ""
		}},
		{BugDatabaseANR, func(c *bugCounts) string {
			if c.total == 0 || len(slices.Compact(slices.Sorted(slices.Values(c.messages)))) < 2 {
				return "want occurrences with different messages"
			}
			return ""
		}},
		{BugLaunchWatchdog, func(c *bugCounts) string {
			if c.total == 0 || c.os[osIOS] != c.total {
				return "want occurrences on iOS"
			}
			return ""
		}},
		{BugSyncConflict, func(c *bugCounts) string {
			if c.os[osIOS] == 0 || c.os[osAndroid] == 0 || len(c.types) < 2 || len(c.stacks) < 3 {
				return "want different types and stacks on both platforms"
			}
			return ""
		}},
		{BugUploadFailed, func(c *bugCounts) string {
			all := strings.Join(c.messages, "\n")
			if !strings.Contains(all, "[email]") || !strings.Contains(all, "[phone]") {
				return "want messages with different markers"
			}
			return ""
		}},
		{BugAttachmentDecode, func(c *bugCounts) string {
			if c.total == 0 {
				return "no occurrences"
			}
			return ""
		}},
	}
	if len(tests) != len(catalogue) {
		t.Errorf("%d scenario checks for %d bugs", len(tests), len(catalogue))
	}
	for _, seed := range seeds {
		cfg := Config{End: testEnd, Seed: seed}
		counts := countBugs(t, cfg, defaultRows(t, seed))
		for _, tt := range tests {
			t.Run(fmt.Sprintf("seed%d/%s", seed, tt.bug), func(t *testing.T) {
				c := counts[tt.bug]
				if msg := tt.check(c); msg != "" {
					t.Errorf("%s (%d occurrences, per day %v, per version %v, per OS %v)", msg, c.total, sortedCounts(c.perDay), c.perVer, c.os)
				}
			})
		}
	}
}

// sortedCounts formats per-day counts in day order.
func sortedCounts(m map[int]int) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(&b, "%d:%d ", k, m[k])
	}
	return b.String()
}

func TestCrashes(t *testing.T) {
	for _, seed := range seeds {
		rows := defaultRows(t, seed)
		sessions := map[uint64]bool{}
		ended := map[uint64]bool{}
		for _, s := range rows.Sessions {
			if s.Phase == "start" {
				sessions[s.SessionKey] = true
			} else {
				ended[s.SessionKey] = true
			}
		}
		fatal, handled := 0, 0
		for _, c := range rows.Crashes {
			if !sessions[c.SessionKey] {
				t.Fatalf("seed %d: crash of session %d without a start row", seed, c.SessionKey)
			}
			if c.Handled {
				handled++
				continue
			}
			fatal++
			if ended[c.SessionKey] {
				t.Errorf("seed %d: session %d crashed and ended", seed, c.SessionKey)
			}
		}
		n := float64(len(sessions))
		if share := float64(fatal) / n; share < 0.025 || share > 0.045 {
			t.Errorf("seed %d: %.3f of sessions crash, want about 0.03", seed, share)
		}
		if share := float64(handled) / n; share < 0.012 || share > 0.03 {
			t.Errorf("seed %d: %.3f of sessions report a handled exception, want about 0.02", seed, share)
		}
	}
}

func TestSmallConfig(t *testing.T) {
	rows := Rows(Config{AppID: "com.example.small", End: testEnd, Days: 1, SessionsPerDay: 3, Seed: 9})
	starts := 0
	for _, s := range rows.Sessions {
		if s.AppID != "com.example.small" {
			t.Fatalf("app id %q", s.AppID)
		}
		if s.Phase == "start" {
			starts++
		}
	}
	if starts != 3 {
		t.Fatalf("%d sessions, want 3", starts)
	}
}

func TestBulkCrashesSQL(t *testing.T) {
	tests := []struct {
		n, days   int
		wantN     string
		wantStart string
	}{
		{1_000_000, 14, "numbers(1000000)", "'2026-03-01'"},
		{10, 1, "numbers(10)", "'2026-03-14'"},
		{-1, 0, "numbers(0)", "'2026-03-14'"},
	}
	for _, tt := range tests {
		sql := BulkCrashesSQL("bench", tt.n, tt.days, testEnd)
		if !strings.HasPrefix(sql, "INSERT INTO bench.crashes (app_id, ") || !strings.Contains(sql, tt.wantN) || !strings.Contains(sql, tt.wantStart) {
			t.Errorf("BulkCrashesSQL(%d, %d):\n%s", tt.n, tt.days, sql)
		}
		if strings.ContainsAny(sql, "{}") {
			t.Errorf("placeholder left in:\n%s", sql)
		}
	}
	// Every column is named once, in the order the SELECT yields them.
	sql := BulkCrashesSQL("bench", 1, 1, testEnd)
	list := sql[strings.Index(sql, "(")+1 : strings.Index(sql, ")")]
	if got := strings.Split(list, ", "); !slices.Equal(got, crashColumns) || len(slices.Compact(slices.Sorted(slices.Values(got)))) != len(got) {
		t.Errorf("column list %q", got)
	}
	// The SELECT yields one column a line.
	sel := sql[strings.Index(sql, "\nSELECT\n")+8 : strings.Index(sql, "\nFROM\n")]
	if n := len(strings.Split(sel, "\n")); n != len(crashColumns) {
		t.Errorf("SELECT yields %d columns, want %d:\n%s", n, len(crashColumns), sel)
	}
}

func BenchmarkRows(b *testing.B) {
	cfg := Config{End: testEnd, Seed: 1}
	for b.Loop() {
		Rows(cfg)
	}
}
