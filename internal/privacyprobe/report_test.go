package privacyprobe

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestReport plants two values, finds one in a column and nothing of the
// other, and checks the classification against a gap and the report.
func TestReport(t *testing.T) {
	pr := &Probe{Seed: 42}
	email := pr.AddSecret(Email, "events[crash].message", "jane.doe123@example.com")
	email.Context = "URL-encoded"
	phone := pr.AddSecret(Phone, "events[crash].thread", "+43 664 1234567")
	phone.Digits = []string{"436641234567"}
	phone.Context = "plain"
	s := NewScanner(pr)
	s.Baseline("clickhouse system.contributors.name", "nobody here")
	s.Scan("clickhouse db.crashes.message", "row 1", "upload of jane.doe123%40example.com failed")
	s.Scan("clickhouse db.crashes.thread", "row 1", "worker [phone]")
	s.ScanLines("collector log", "line 1\n{\"msg\":\"+43 (664) 123-4567\"}\n")

	gaps := []Gap{{Context: "URL-encoded", Why: "not decoded"}, {Kind: IBAN, Why: "unused"}}
	r := NewReport(pr, s, gaps)
	fresh, known, unseen := r.Classify()
	if len(known) != 1 || known[0].Plant != email || known[0].Form != FormDecoded {
		t.Errorf("known = %+v", known)
	}
	if len(fresh) != 1 || fresh[0].Plant != phone || fresh[0].Place != "collector log" || fresh[0].Where != "line 2" || fresh[0].Form != FormDigits {
		t.Errorf("fresh = %+v", fresh)
	}
	if len(unseen) != 1 || unseen[0].Kind != IBAN {
		t.Errorf("unseen = %+v", unseen)
	}
	var out bytes.Buffer
	if _, err := r.WriteTo(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"seed 42", "1 new findings, 1 of known gaps still open", "NEW #2 phone", "KNOWN GAP #1 email",
		"found in collector log, line 2", "known gaps not seen in this run", "kind iban: unused"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if err := r.WriteFindings(&out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d findings written: %s", len(lines), out.String())
	}
	var f findingJSON
	if err := json.Unmarshal([]byte(lines[0]), &f); err != nil || !f.Known || f.Kind != Email || f.Place != "clickhouse db.crashes.message" {
		t.Errorf("first finding %+v, %v", f, err)
	}
}

// TestBaselineCollision: a value found before anything was sent is left
// out of the findings.
func TestBaselineCollision(t *testing.T) {
	pr := &Probe{}
	p := pr.AddSecret(AndroidID, "f", "9774d56d682e549c")
	s := NewScanner(pr)
	s.Baseline("clickhouse system.build_options.value", "flags 9774d56d682e549c")
	s.Scan("clickhouse db.t.c", "row 1", "9774d56d682e549c")
	if f := s.Finds(); len(f) != 0 {
		t.Errorf("collided plant reported: %+v", f)
	}
	if c := s.Collisions(); c[p] != "clickhouse system.build_options.value" {
		t.Errorf("collisions %v", c)
	}
}

// TestIndexBoundaries: a needle starting or ending with a digit is not
// found inside a longer number; digit forms are found inside longer runs.
func TestIndexBoundaries(t *testing.T) {
	pr := &Probe{}
	ip := pr.AddSecret(IPv4, "f", "10.1.2.3")
	ph := pr.AddSecret(Phone, "f", "(415) 555-2671")
	ph.Digits = []string{"4155552671"}
	s := NewScanner(pr)
	s.Scan("a", "", "110.1.2.34 and 10.1.2.30")
	s.Scan("b", "", "tel:+1 415 555 2671")
	var places []string
	for _, f := range s.Finds() {
		places = append(places, f.Plant.Value+"@"+f.Place)
	}
	if strings.Join(places, ",") != "(415) 555-2671@b" {
		t.Errorf("found %v, want only the phone in b", places)
	}
	s.Scan("c", "", "connect 10.1.2.3:443")
	if len(s.Finds()) != 2 || s.Finds()[0].Plant != ip {
		t.Errorf("finds %+v", s.Finds())
	}
}
