package anonymizer

import (
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/consentry/consentry/anonymizer/deobfuscate"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// versionMappings maps app versions to their mapping file.
type versionMappings map[string]*deobfuscate.Mapping

func (v versionMappings) Mapping(app, version, _ string) *deobfuscate.Mapping {
	if app != "com.example.notes" {
		return nil
	}
	return v[version]
}

const deobfuscateTestdata = "deobfuscate/testdata"

var jvmFrame = regexp.MustCompile(`^\s*at ([\w$.]+)\.([\w$<>]+)\(([^:)]*):?(\d*)\)$`)

// obfuscatedCrash reads a JVM stack trace of the deobfuscate package's
// test data as the SDK sends it: Module the package, Function the class's
// simple name and the method.
func obfuscatedCrash(t *testing.T, name string) *consentryv1.Crash {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(deobfuscateTestdata, name))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	typ, msg, _ := strings.Cut(lines[0], ": ")
	c := &consentryv1.Crash{ExceptionType: typ, Message: msg, Thread: "main"}
	for _, l := range lines[1:] {
		m := jvmFrame.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("%s: not a frame: %q", name, l)
		}
		line, _ := strconv.Atoi(m[4])
		pkg, short := m[1], m[1]
		if i := strings.LastIndexByte(m[1], '.'); i >= 0 {
			pkg, short = m[1][:i], m[1][i+1:]
		}
		c.Frames = append(c.Frames, &consentryv1.StackFrame{Module: pkg, Function: short + "." + m[2], File: m[3], Line: uint32(line),
			InApp: !strings.HasPrefix(pkg, "java.") && !strings.HasPrefix(pkg, "androidx.")})
	}
	return c
}

// TestDeobfuscateBeforeFingerprint: with the mappings of two releases
// whose obfuscation differs, the same bug's crashes are stored with the
// original names and land in one group; without them, two groups of
// obfuscated frames.
func TestDeobfuscateBeforeFingerprint(t *testing.T) {
	mappings := make(versionMappings)
	for _, v := range []string{"4.12.0", "4.13.0"} {
		f, err := os.Open(filepath.Join(deobfuscateTestdata, "notes-"+v+"-mapping.txt"))
		if err != nil {
			t.Fatal(err)
		}
		m, err := deobfuscate.Parse(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		mappings[v] = m
	}
	process := func(cfg Config, version, release string) (fp uint64, typ string, top string) {
		t.Helper()
		cfg.Generalize = GeneralizeConfig{K: 1}
		st := newStage(t, cfg)
		d := device(nil)
		d.AppVersion, d.AppBuild = version, ""
		req := &consentryv1.IngestRequest{Device: d, Events: []*consentryv1.Event{
			{EventId: eventID(1), Payload: &consentryv1.Event_Crash{Crash: obfuscatedCrash(t, "notes-"+release+"-crash.txt")}}}}
		b := batch(req, netip.Addr{}, "consent-1")
		if err := st.Process(t.Context(), b); err != nil {
			t.Fatal(err)
		}
		c := b.Rows.Crashes[0]
		f := c.Frames[0]
		return c.Fingerprint, c.ExceptionType, f.Module + "." + f.Function + ":" + strconv.Itoa(int(f.Line))
	}
	a, typA, topA := process(Config{Mappings: mappings}, "4.12.0", "4.12.0")
	b, typB, topB := process(Config{Mappings: mappings}, "4.13.0", "4.13.0")
	if a != b {
		t.Errorf("deobfuscated crashes of 4.12.0 and 4.13.0 are in two groups: %x, %x", a, b)
	}
	want := "com.example.notes.sync.SyncWorker.checkConflict"
	if typA != "com.example.notes.sync.SyncConflictException" || typB != typA || !strings.HasPrefix(topA, want) || !strings.HasPrefix(topB, want) {
		t.Errorf("stored %s at %s and %s at %s, want the original names", typA, topA, typB, topB)
	}
	// Without a mapping (none uploaded, or an unknown version), the crash
	// is stored as it came, and each release is a group of its own.
	c, typC, _ := process(Config{}, "4.12.0", "4.12.0")
	d, _, _ := process(Config{Mappings: mappings}, "4.14.0", "4.13.0")
	if typC != "c3.a" || c == a || c == d {
		t.Errorf("without a mapping: type %s, groups %x %x (deobfuscated %x)", typC, c, d, a)
	}
}
