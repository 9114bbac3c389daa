package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/anonymizer/kanon"
	"github.com/consentry/consentry/clickhouse"
	"github.com/consentry/consentry/consent"
	"github.com/consentry/consentry/internal/chtest"
	"github.com/consentry/consentry/pipeline"
)

func TestWritePrivacyReport(t *testing.T) {
	day := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
	var r clickhouse.Releases
	r.Rows, r.Exact, r.Top, r.Classes, r.SmallestClass = 1240, 1000, 12, 41, 10
	r.Generalized[kanon.Model][1] = 228
	r.Generalized[kanon.Locale][1] = 90
	r.Generalized[kanon.Location][2] = 4
	var out bytes.Buffer
	writePrivacyReport(&out, []clickhouse.PrivacyDay{{
		App: "com.example.notes", Day: day, RowsStored: 1208450, RowsHeld: 312, Released: r,
		Scrubbed: map[string]uint64{"email": 31, "phone": 4, "identifier_key": 17}, Granted: 212, Revoked: 9, ErasureAsked: 3,
		Erased: 3, RowsErased: 1874, Receipts: map[string]uint64{"erased": 3},
	}}, "com.example.notes", day.AddDate(0, 0, -6), day)
	for _, want := range []string{
		"Privacy report, 2026-11-23 to 2026-11-29 (UTC), com.example.notes.",
		"com.example.notes  2026-11-29",
		"  rows stored          1,208,450 · held, waiting for k consents: 312",
		"  released from hold   1,240 · exact 1,000 · generalized 228 · top level 12",
		"  generalized values   device model → other 228 · locale → language 90 · region → unknown 4",
		"  smallest class       10 consents (the top level aside), 41 classes published",
		"  scrubbed             email 31 · identifier-named keys 17 · phone 4",
		"  consents             granted 212 · revoked 9 (3 asked erasure) · erased 3 (1,874 rows deleted)",
		"  erasure receipts     erased 3 · anonymous 0",
	} {
		if !strings.Contains(out.String(), want+"\n") {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	writePrivacyReport(&out, nil, "", day, day)
	if !strings.Contains(out.String(), "every app") || !strings.Contains(out.String(), "Nothing stored") {
		t.Errorf("empty report:\n%s", out.String())
	}
}

func TestWriteErasureNow(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    erasureState
		want []string
	}{
		{"nothing", erasureState{}, []string{"  unfinished erasures  none\n", "  detached parts       none\n", "  erased, yet stored   none: "}},
		{"returned", erasureState{Returned: []clickhouse.ErasedConsent{{AppID: "a", ConsentKey: "k1", Rows: 1200}, {AppID: "b", ConsentKey: "k2", Rows: 3}}},
			[]string{"  erased, yet stored   2 consents with 1,203 rows (a restored backup, a part attached back?): run consentry reapply-erasures\n"}},
		{"not known", erasureState{DetachedUnknown: true}, []string{"  detached parts       not known: ClickHouse before 19.8"}},
		{"both", erasureState{
			Stalled: []clickhouse.StalledMutation{{Table: "gestures", Count: 2, Oldest: time.Date(2026, 12, 7, 21, 25, 7, 0, time.UTC), PartsToDo: 2,
				Damaged: []string{"20261207_1_1_0"}}},
			Detached: []clickhouse.DetachedPart{{Database: "consentry", Table: "crashes", Name: "broken_20261206_3_3_0", Reason: "broken"},
				{Database: "consentry", Table: "sessions", Name: "20261206_1_1_0"}},
		}, []string{
			"  unfinished erasures  gestures: 2 unfinished since 2026-12-07T21:25:07Z, 2 parts to do, damaged parts 20261207_1_1_0: erased consents' rows",
			"  detached parts       2, their rows beyond erasure and retention until dropped (docs/operations.md#detached-parts): " +
				"consentry.crashes broken_20261206_3_3_0 (broken); consentry.sessions 20261206_1_1_0\n",
		}},
	} {
		var out bytes.Buffer
		writeErasureNow(&out, tc.s)
		for _, w := range tc.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%s: lacks %q:\n%s", tc.name, w, out.String())
			}
		}
	}
}

// TestPrivacyReportIntegration fills a real ClickHouse the way a collector
// does (held rows released by a pass, privacy counts, a revocation with
// erasure, one without) and checks what consentry privacy-report prints.
func TestPrivacyReportIntegration(t *testing.T) {
	srv := chtest.Start(t)
	ctx := context.Background()
	const db, app = "privacy_report", "com.example.notes"
	cl := migratedClient(t, srv, db)
	now := time.Now().UTC()
	// Eight consents, two rows each: four share a device (published
	// exactly), three differ only in their model (published as "other"),
	// one is unique (the top level).
	base := kanon.QI{AppVersion: "4.12.0", DeviceClass: "phone", DeviceModel: "Pixel 8", OSName: "android", OSVersion: "14", Locale: "de-AT", Country: "AT", Region: "AT-9"}
	var held pipeline.Rows
	for c := 1; c <= 8; c++ {
		q := base
		switch {
		case c >= 5 && c <= 7:
			q.DeviceModel = fmt.Sprintf("Model %d", c)
		case c == 8:
			q.DeviceModel, q.OSVersion, q.AppVersion = "Jane's phone", "9", "1.0.0"
		}
		for i := range 2 {
			var s pipeline.SessionRow
			binary.BigEndian.PutUint64(s.EventID[:], uint64(c*10+i))
			s.AppID, s.EventTime, s.Member, s.Phase = app, now, uint64(c), "start"
			q.Apply(&s.Common)
			held.Sessions = append(held.Sessions, s)
		}
	}
	if err := cl.InsertHeld(ctx, &held, ""); err != nil {
		t.Fatal(err)
	}
	rel, err := kanon.NewReleaser(kanon.ReleaserConfig{Config: kanon.Config{K: 3, Now: func() time.Time { return now.Add(2 * time.Hour) }}, Store: cl})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rel.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	// Counts as the anonymizer and the consent service make them.
	counts, err := clickhouse.NewPrivacyCounts(clickhouse.RejectsConfig{}, cl, nil)
	if err != nil {
		t.Fatal(err)
	}
	counts.Count(app, clickhouse.CountScrub, "email", 3)
	counts.Count(app, clickhouse.CountScrub, "identifier_key", 2)
	counts.Count(app, clickhouse.CountConsent, consent.EventGranted, 5)
	counts.Count(app, clickhouse.CountConsent, consent.EventReceipt+consent.OutcomeErased, 1)
	if err := counts.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// Two revocations, one with erasure of two stored rows.
	for i, erase := range []bool{true, false} {
		if err := cl.PutRevocation(ctx, consent.Revocation{ConsentHash: consent.HashConsentID(fmt.Sprint("consent-", i)), AppID: app,
			RevokedAt: now.Truncate(time.Second), ExpiresAt: now.AddDate(1, 0, 0).Truncate(time.Second), Erase: erase}); err != nil {
			t.Fatal(err)
		}
	}
	erasable := pipeline.Rows{Sessions: []pipeline.SessionRow{{Common: pipeline.Common{AppID: app, EventID: [16]byte{1}, EventTime: now, ConsentKey: "key-1"}},
		{Common: pipeline.Common{AppID: app, EventID: [16]byte{2}, EventTime: now, ConsentKey: "key-1"}}}}
	if err := cl.Insert(ctx, &erasable); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Erase(ctx, app, "key-1"); err != nil {
		t.Fatal(err)
	}
	// Released rows leave the held tables in the background.
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := cl.HeldRows(ctx, app)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d rows still held", n)
		}
		time.Sleep(50 * time.Millisecond)
	}

	out, err := runAgainst(t, srv, db)("privacy-report", "--app", app, "--days", "2")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Logf("\n%s", out)
	for _, want := range []string{
		app + "  " + now.Format(time.DateOnly),
		"  rows stored          16 · held, waiting for k consents: 0",
		"  released from hold   16 · exact 8 · generalized 6 · top level 2",
		"  generalized values   device model → other 6",
		"  smallest class       3 consents (the top level aside), 3 classes published",
		"  scrubbed             email 3 · identifier-named keys 2",
		"  consents             granted 5 · revoked 2 (1 asked erasure) · erased 1 (2 rows deleted)",
		"  erasure receipts     erased 1 · anonymous 0",
		"  unfinished erasures  none",
		"  erased, yet stored   none: no consent the erasure log records has rows stored",
		"  detached parts       none",
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("report lacks %q", want)
		}
	}

	// A partition detached by hand is beyond erasure: the report says so.
	var partition string
	if err := chtest.Conn(t, srv).QueryRow(ctx, "SELECT partition FROM system.parts WHERE database = '"+db+"' AND table = 'sessions' AND active LIMIT 1").Scan(&partition); err != nil {
		t.Fatal(err)
	}
	if err := chtest.Conn(t, srv).Exec(ctx, "ALTER TABLE "+db+".sessions DETACH PARTITION "+partition); err != nil {
		t.Fatal(err)
	}
	if out, err = runAgainst(t, srv, db)("privacy-report", "--app", app, "--days", "2"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if want := ", their rows beyond erasure and retention until dropped"; !strings.Contains(out, want) || !strings.Contains(out, db+".sessions ") {
		t.Errorf("report after a detach lacks %q naming %s.sessions:\n%s", want, db, out)
	}
}
