package clickhouse

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func TestDetachReason(t *testing.T) {
	for name, want := range map[string]string{
		"20261207_1_1_0":                   "",
		"20261207_1_1_0_5":                 "",
		"broken_20261207_1_1_0":            "broken",
		"broken-on-start_20261207_3_3_0":   "broken-on-start",
		"unexpected_all_1_1_0":             "unexpected",
		"ignored_20261207_2_2_0":           "ignored",
		"covered-by-broken_20261207_1_5_1": "covered-by-broken",
		"attaching_20261207_1_1_0":         "attaching",
		"somebody's backup":                "",
		"nonsense_20261207_1_1_0":          "",
	} {
		if got := detachReason(name); got != want {
			t.Errorf("detachReason(%q) = %q, want %q", name, got, want)
		}
	}
}

// TestReadDetached: the folders of detached parts are listed with their
// reasons, files and folders a query works on are not, and a table whose
// folder is not on this machine makes it fail with ErrDetachedUnknown.
func TestReadDetached(t *testing.T) {
	dir := t.TempDir()
	mk := func(p string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(dir, p), 0o750); err != nil {
			t.Fatal(err)
		}
	}
	mk("db/gestures/detached/20261207_1_1_0")
	mk("db/gestures/detached/broken-on-start_20261207_2_2_0")
	mk("db/gestures/detached/deleting_20261207_3_3_0")
	mk("db/crashes/20261207_1_1_0")
	mk("db_private/salts/detached/unexpected_all_1_1_0")
	if err := os.WriteFile(filepath.Join(dir, "db/gestures/detached/notes.txt"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tables := []tableFolder{
		{"db", "crashes", filepath.Join(dir, "db/crashes") + "/"},
		{"db", "gestures", filepath.Join(dir, "db/gestures") + "/"},
		{"db_private", "salts", filepath.Join(dir, "db_private/salts") + "/"},
	}
	got, err := readDetached("s1", tables)
	want := "[db.gestures 20261207_1_1_0 on s1 db.gestures broken-on-start_20261207_2_2_0 (broken-on-start) on s1 db_private.salts unexpected_all_1_1_0 (unexpected) on s1]"
	if err != nil || fmt.Sprint(got) != want {
		t.Fatalf("readDetached = %v, %v; want %s", got, err, want)
	}
	tables = append(tables, tableFolder{"db", "sessions", filepath.Join(dir, "elsewhere/sessions") + "/"})
	if got, err := readDetached("", tables); !errors.Is(err, ErrDetachedUnknown) {
		t.Fatalf("a table on another machine: %v, %v; want ErrDetachedUnknown", got, err)
	}
}
