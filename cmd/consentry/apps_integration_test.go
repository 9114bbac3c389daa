package main

import (
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/chtest"
)

func TestAppsCommands(t *testing.T) {
	run1 := runAgainst(t, chtest.Start(t), "apps_cli")
	out, err := run1("apps", "add", "--app-id", "com.example.notes", "--scopes", "analytics,crash_reports")
	if err != nil || !strings.Contains(out, "ck_") {
		t.Fatalf("add: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	key1 := lines[len(lines)-1]
	if _, err := run1("apps", "add", "--app-id", "com.example.notes"); err == nil {
		t.Fatal("adding an existing app succeeded")
	}
	if _, err := run1("apps", "add", "--app-id", "bad id"); err == nil {
		t.Fatal("bad app id accepted")
	}
	out, err = run1("apps", "rotate-key", "--app-id", "com.example.notes")
	if err != nil || !strings.Contains(out, "ck_") || strings.Contains(out, key1) {
		t.Fatalf("rotate-key: %v\n%s", err, out)
	}
	if _, err := run1("apps", "set-policy", "--app-id", "com.example.notes", "--policy", "erasable"); err != nil {
		t.Fatal(err)
	}
	if _, err := run1("apps", "set-policy", "--app-id", "com.example.notes", "--policy", "forgetful"); err == nil {
		t.Fatal("unknown policy accepted")
	}
	out, err = run1("apps", "list")
	if err != nil || !strings.Contains(out, "com.example.notes  erasable  analytics,crash_reports") {
		t.Fatalf("list: %v\n%s", err, out)
	}
	if strings.Contains(out, "ck_") {
		t.Fatal("list shows a key")
	}
}
