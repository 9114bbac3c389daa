package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/consentry/consentry/anonymizer/deobfuscate"
	"github.com/consentry/consentry/clickhouse"
	"github.com/consentry/consentry/internal/chtest"
)

// TestMappingsUpload uploads the hand-written R8 mapping of the
// deobfuscate package's tests, lists it, replaces it, and refuses a file
// that is not a mapping before it connects.
func TestMappingsUpload(t *testing.T) {
	ctx := context.Background()
	mapping := "../../anonymizer/deobfuscate/testdata/notes-4.12.0-mapping.txt"
	bad := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(bad, []byte("this is not a mapping file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Refused before connecting: no ClickHouse needed.
	for _, args := range [][]string{
		{"mappings", "upload", "--app-id", "com.example.notes", "--app-version", "4.12.0", "--file", bad},
		{"mappings", "upload", "--app-id", "com.example.notes", "--file", mapping},
		{"mappings", "upload", "--app-id", "com.example.notes", "--app-version", "4.12.0", "--file", "/does/not/exist"},
		{"mappings", "delete"},
	} {
		var out bytes.Buffer
		if err := run(ctx, append(args, "--clickhouse-addr", "127.0.0.1:1"), &out, &out, noEnv); err == nil || strings.Contains(err.Error(), "127.0.0.1:1") {
			t.Errorf("%v: %v\n%s", args, err, out.String())
		}
	}

	srv := chtest.Start(t)
	run1 := runAgainst(t, srv, "mappings_cli")
	out, err := run1("mappings", "upload", "--app-id", "com.example.notes", "--app-version", "4.12.0", "--file", mapping)
	if err != nil || !strings.Contains(out, "uploaded the mapping of com.example.notes 4.12.0 (build every build)") {
		t.Fatalf("upload: %v\n%s", err, out)
	}
	out, err = run1("mappings", "upload", "--app-id", "com.example.notes", "--app-version", "4.12.0", "--app-build", "4120003", "--file", mapping)
	if err != nil {
		t.Fatalf("upload with build: %v\n%s", err, out)
	}
	// Uploaded again: replaced, still one row per build in the list.
	if _, err := run1("mappings", "upload", "--app-id", "com.example.notes", "--app-version", "4.12.0", "--file", mapping); err != nil {
		t.Fatal(err)
	}
	out, err = run1("mappings", "list")
	if err != nil || strings.Count(out, "com.example.notes") != 2 || !strings.Contains(out, "4120003") || !strings.Contains(out, "4.12.0   *") {
		t.Fatalf("list: %v\n%s", err, out)
	}

	// What was stored is what the collector's cache loads.
	c, err := clickhouse.Open(ctx, clickhouse.Config{Addr: srv.Addr(), Database: "mappings_cli", Username: srv.User(), Password: srv.Password()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cache, err := deobfuscate.NewCache(deobfuscate.CacheConfig{Source: c})
	if err != nil {
		t.Fatal(err)
	}
	if err := cache.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if cache.Len() != 2 || cache.Mapping("com.example.notes", "4.12.0", "4120003") == nil || cache.Mapping("com.example.notes", "4.12.0", "999") == nil ||
		cache.Mapping("com.example.notes", "4.13.0", "") != nil {
		t.Errorf("cache holds %d mappings", cache.Len())
	}
}
