package deobfuscate

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/consentry/consentry/pipeline"
)

// FuzzParse feeds arbitrary mapping files (mappings are uploaded by
// operators, but a wrong file must not take the collector down) and
// frames through Parse and Crash: neither panics; a crash whose frames
// and type the mapping does not know is left as it is; a retraced crash
// is never empty where the obfuscated one was not.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"notes-4.12.0-mapping.txt", "notes-4.13.0-mapping.txt"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b), "c3.d", "b", uint32(10), "c3.a")
	}
	f.Add("a -> b:\n    1:2:void c():3:4 -> d\n    1:2:void e.f():5 -> d\n", "b", "d", uint32(1), "b")
	f.Add("a -> b:\n    0:0:void c():0:0 -> d\n# {'id':'com.android.tools.r8.rewriteFrame','conditions':['throws(La;)'],'actions':['removeInnerFrames(9)']}\n", "b", "d", uint32(0), "b")
	f.Add("a -> b:\n# {\"id\":\"sourceFile\",\"fileName\":\"\"}\n    4294967295:0:void $():4294967295 -> $\n", "b", "$", uint32(1<<31), "")
	f.Fuzz(func(t *testing.T, mapping, cls, method string, line uint32, typ string) {
		m, err := Parse(strings.NewReader(mapping))
		if err != nil {
			return
		}
		frames := []pipeline.Frame{
			{Module: cls, Function: method, Line: line, InApp: true},
			{Module: "", Function: cls + "." + method, Line: line},
			{Module: "zz.unknown", Function: "Nope.never", Line: 7},
		}
		c := pipeline.CrashRow{ExceptionType: typ, Frames: slices.Clone(frames)}
		changed := m.Crash(&c, "a")
		if !changed && (c.ExceptionType != typ || !slices.Equal(c.Frames, frames)) {
			t.Fatalf("unchanged crash was changed: %+v", c)
		}
		if len(c.Frames) == 0 {
			t.Fatal("retraced crash has no frames")
		}
		if last := c.Frames[len(c.Frames)-1]; last != frames[2] {
			t.Fatalf("unknown frame changed: %+v", last)
		}
	})
}
