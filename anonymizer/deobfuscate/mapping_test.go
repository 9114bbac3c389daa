package deobfuscate

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/consentry/consentry/anonymizer/fingerprint"
	"github.com/consentry/consentry/pipeline"
)

const appID = "com.example.notes"

func parseFile(t *testing.T, name string) *Mapping {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func parseString(t *testing.T, s string) *Mapping {
	t.Helper()
	m, err := Parse(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestParseTestdata(t *testing.T) {
	m := parseFile(t, "notes-4.12.0-mapping.txt")
	if m.ID() != "7c1f3a9" || m.FormatVersion() != "2.2" {
		t.Errorf("id %q, version %q", m.ID(), m.FormatVersion())
	}
	if m.Classes() != 13 || m.Methods() != 51 {
		t.Errorf("%d classes, %d methods", m.Classes(), m.Methods())
	}
	if m.Size() <= 0 {
		t.Errorf("size %d", m.Size())
	}
	if c, ok := m.Class("c2.b"); !ok || c != "com.example.notes.editor.NoteEditor" {
		t.Errorf("Class(c2.b) = %q, %v", c, ok)
	}
	if _, ok := m.Class("com.example.notes.editor.NoteEditor"); ok {
		t.Error("an original name is taken for an obfuscated one")
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		line     int
	}{
		{"empty", "", 0},
		{"comments only", "# compiler: R8\n", 0},
		{"member before class", "    void a() -> b\n", 1},
		{"class without colon", "a.B -> c\n", 1},
		{"class without arrow", "a.B c:\n", 1},
		{"class with spaces", "a B -> c:\n", 1},
		{"member without arrow", "a.B -> c:\n    void foo()\n", 2},
		{"member with two names", "a.B -> c:\n    void foo() -> a b\n", 2},
		{"bad original line", "a.B -> c:\n    1:2:void foo():x -> a\n", 2},
		{"three original lines", "a.B -> c:\n    1:2:void foo():1:2:3 -> a\n", 2},
		{"range without method", "a.B -> c:\n    1:2:foo -> a\n", 2},
		{"method without type", "a.B -> c:\n    foo() -> a\n", 2},
		{"stack trace", "java.lang.IllegalStateException: boom\n\tat a.b.c(SourceFile:4)\n", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tc.in))
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			if tc.line > 0 && !strings.Contains(err.Error(), fmt.Sprintf("line %d:", tc.line)) {
				t.Errorf("err = %v, want line %d", err, tc.line)
			}
		})
	}
	long := "a.B -> c:\n    void " + strings.Repeat("x", MaxLineBytes) + "() -> a\n"
	if _, err := Parse(strings.NewReader(long)); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("overlong line: %v", err)
	}
}

// frames formats Lookup's result as "Class.method(File:line)" lines.
func frames(fs []Frame) string {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "%s.%s(%s:%d)\n", f.Class, f.Method, f.File, f.Line)
	}
	return b.String()
}

// rewriteNPE maps a method inlined into a caller, with a rewriteFrame
// rule that leaves the inlined frame out when a NullPointerException is
// thrown.
const rewriteNPE = `some.Class -> a:
    4:4:void other.Class.inlinee():23:23 -> a
    4:4:void caller(other.Class):7 -> a
    # {"id":"com.android.tools.r8.rewriteFrame","conditions":["throws(Ljava/lang/NullPointerException;)"],"actions":["removeInnerFrames(1)"]}
`

// TestLookup checks the line semantics of the format, as R8's retrace
// reads them, one rule per case.
func TestLookup(t *testing.T) {
	for _, tc := range []struct {
		name, mapping string
		cls, method   string
		line          uint32
		thrown        string
		want          string
	}{
		{
			name: "inline chain with line ranges",
			mapping: `com.example.Main -> a:
    1:1:void main(java.lang.String[]):101:101 -> a
    2:4:void method1(java.lang.String):94:96 -> a
    2:4:void main(java.lang.String[]):102 -> a
    5:5:void method2(int):86:86 -> a
    5:5:void method1(java.lang.String):96 -> a
    5:5:void main(java.lang.String[]):102 -> a
`,
			cls: "a", method: "a", line: 3,
			want: "com.example.Main.method1(Main.java:95)\ncom.example.Main.main(Main.java:102)\n",
		},
		{
			name: "three levels",
			mapping: `com.example.Main -> a:
    5:5:void method2(int):86:86 -> a
    5:5:void method1(java.lang.String):96 -> a
    5:5:void main(java.lang.String[]):102 -> a
`,
			cls: "a", method: "a", line: 5,
			want: "com.example.Main.method2(Main.java:86)\ncom.example.Main.method1(Main.java:96)\ncom.example.Main.main(Main.java:102)\n",
		},
		{
			name: "range to a single line",
			mapping: `foo.bar.Baz -> a:
    1:10:void qux():27:27 -> a
    11:15:void qux():42 -> a
`,
			cls: "a", method: "a", line: 13,
			want: "foo.bar.Baz.qux(Baz.java:42)\n",
		},
		{
			name:    "ProGuard: no original range means the same lines",
			mapping: "foo.Importer -> c:\n    35:40:void parseLine(java.lang.String) -> b\n",
			cls:     "c", method: "b", line: 37,
			want: "foo.Importer.parseLine(Importer.java:37)\n",
		},
		{
			name:    "catch-all range",
			mapping: "foo.Main -> a:\n    0:65535:void onTrimMemory(int):210:210 -> b\n",
			cls:     "a", method: "b", line: 9,
			want: "foo.Main.onTrimMemory(Main.java:210)\n",
		},
		{
			name:    "no obfuscated range, one original line",
			mapping: "foo.Main -> foo.Main:\n    void mainPC(java.lang.String[]):42 -> mainPC\n",
			cls:     "foo.Main", method: "mainPC", line: 3,
			want: "foo.Main.mainPC(Main.java:42)\n",
		},
		{
			name: "outside every range: the class alone",
			mapping: `some.Class -> b:
    1:3:void method2():11:13 -> a
    4:4:void method2():10:10 -> a
`,
			cls: "b", method: "a", line: 27,
			want: "some.Class.a(Class.java:27)\n",
		},
		{
			name: "no line: the 0:0 range",
			mapping: `foo.Main -> foo.a:
    0:0:void method1(java.lang.String):42:42 -> a
    0:0:void main(java.lang.String[]):28 -> a
    1:1:void main(java.lang.String[]):153 -> a
`,
			cls: "foo.a", method: "a", line: 0,
			want: "foo.Main.method1(Main.java:42)\nfoo.Main.main(Main.java:28)\n",
		},
		{
			name: "overloads: the first that covers the line",
			mapping: `foo.Editor -> c:
    1:8:void save(foo.Note):40:47 -> a
    9:11:void delete(long):102:104 -> a
`,
			cls: "c", method: "a", line: 10,
			want: "foo.Editor.delete(Editor.java:103)\n",
		},
		{
			name:    "method not mapped: the class alone",
			mapping: "foo.Editor -> c:\n    1:8:void save(foo.Note):40:47 -> a\n",
			cls:     "c", method: "zz", line: 3,
			want: "foo.Editor.zz(Editor.java:3)\n",
		},
		{
			name: "source file, and inlined classes take its extension",
			mapping: `com.example.Main -> a.a:
# {"id":"sourceFile","fileName":"Main.kt"}
    2:2:void foo.bar.Baz$Quux.inlinee():42:42 -> a
    2:2:void main(java.lang.String[]):102 -> a
`,
			cls: "a.a", method: "a", line: 2,
			want: "foo.bar.Baz$Quux.inlinee(Baz.kt:42)\ncom.example.Main.main(Main.kt:102)\n",
		},
		{
			name: "an inlined class's own source file",
			mapping: `com.example.Main -> a.a:
# {"id":"sourceFile","fileName":"Main.kt"}
    2:2:void com.example.Util.check():42:42 -> a
    2:2:void main(java.lang.String[]):102 -> a
com.example.Util -> a.b:
# {'id':'sourceFile','fileName':'Checks.kt'}
`,
			cls: "a.a", method: "a", line: 2,
			want: "com.example.Util.check(Checks.kt:42)\ncom.example.Main.main(Main.kt:102)\n",
		},
		{
			name: "synthesized frames are left out",
			mapping: `foo.Editor$$ExternalSyntheticLambda0 -> c2.a:
# {'id':'com.android.tools.r8.synthesized'}
    1:1:void foo.Editor.lambda$autosave$0():160:160 -> run
    1:1:void run():0 -> run
    # {'id':'com.android.tools.r8.synthesized'}
`,
			cls: "c2.a", method: "run", line: 1,
			want: "foo.Editor.lambda$autosave$0(Editor.java:160)\n",
		},
		{
			name:    "rewriteFrame: removeInnerFrames when its exception is thrown",
			mapping: `# {"id":"com.android.tools.r8.mapping","version":"2.0"}` + "\n" + rewriteNPE,
			cls:     "a", method: "a", line: 4, thrown: "java.lang.NullPointerException",
			want: "some.Class.caller(Class.java:7)\n",
		},
		{
			name:    "rewriteFrame: another exception keeps the frames",
			mapping: rewriteNPE,
			cls:     "a", method: "a", line: 4, thrown: "java.lang.IllegalStateException",
			want: "other.Class.inlinee(Class.java:23)\nsome.Class.caller(Class.java:7)\n",
		},
		{
			name: "rewriteFrame in the middle of a chain",
			mapping: `foo.Class -> A:
    1:5:void inlinable():90:90 -> a
    1:5:void caller():97 -> a
      # {"id":"com.android.tools.r8.rewriteFrame","conditions":["throws(Ljava/lang/NullPointerException;)"],"actions":["removeInnerFrames(1)"]}
    1:5:void outerCaller():107 -> a
`,
			cls: "A", method: "a", line: 1, thrown: "java.lang.NullPointerException",
			want: "foo.Class.caller(Class.java:97)\nfoo.Class.outerCaller(Class.java:107)\n",
		},
		{
			name:    "inverted obfuscated range",
			mapping: "foo.Main -> foo.Main:\n    5:3:void main(java.lang.String[]) -> main\n",
			cls:     "foo.Main", method: "main", line: 3,
			want: "foo.Main.main(Main.java:3)\n",
		},
		{
			name:    "inverted original range",
			mapping: "foo.Main -> foo.Main:\n    2:5:void main(java.lang.String[]):5:2 -> main\n",
			cls:     "foo.Main", method: "main", line: 3,
			want: "foo.Main.main(Main.java:3)\n",
		},
		{
			name:    "a line past the original range stops at its end",
			mapping: "foo.Main -> a:\n    1:5:void run():10:12 -> a\n",
			cls:     "a", method: "a", line: 5,
			want: "foo.Main.run(Main.java:12)\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := parseString(t, tc.mapping)
			got, ok := m.Lookup(tc.cls, tc.method, tc.line, tc.thrown, true)
			if !ok {
				t.Fatalf("Lookup(%s, %s) found no class", tc.cls, tc.method)
			}
			if s := frames(got); s != tc.want {
				t.Errorf("got\n%s\nwant\n%s", s, tc.want)
			}
		})
	}
	m := parseString(t, "foo.Main -> a:\n    1:5:void run():10:14 -> a\n")
	if _, ok := m.Lookup("b", "a", 1, "", true); ok {
		t.Error("unknown class found")
	}
	// rewriteFrame applies only to the innermost frame.
	m = parseString(t, rewriteNPE)
	if got, _ := m.Lookup("a", "a", 4, "java.lang.NullPointerException", false); len(got) != 2 {
		t.Errorf("rewriteFrame applied to an outer frame: %v", got)
	}
}

// javaFrame is a JVM stack frame line, as the SDK parses it.
var javaFrame = regexp.MustCompile(`^\s*at ([\w$.<>/-]+)\.([\w$<>-]+)\(([^():]*)(?::(\d+))?\)`)

// readCrash reads a JVM stack trace into a crash row the way the SDK
// sends one: module is the package, function the class's simple name and
// the method; frames of the app id's package are in-app.
func readCrash(t *testing.T, name string) pipeline.CrashRow {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	typ, msg, _ := strings.Cut(lines[0], ": ")
	c := pipeline.CrashRow{ExceptionType: typ, Message: msg}
	for _, l := range lines[1:] {
		m := javaFrame.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("%s: not a frame: %q", name, l)
		}
		line, _ := strconv.Atoi(m[4])
		pkg, short := splitClass(m[1])
		c.Frames = append(c.Frames, pipeline.Frame{Module: pkg, Function: short + "." + m[2], File: m[3], Line: uint32(line), InApp: inPackage(m[1], appID)})
	}
	return c
}

// format writes c as a JVM stack trace.
func format(c pipeline.CrashRow) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s\n", c.ExceptionType, c.Message)
	for _, f := range c.Frames {
		fmt.Fprintf(&b, "\tat %s.%s(%s:%d)\n", f.Module, f.Function, f.File, f.Line)
	}
	return b.String()
}

// TestCrashTestdata retraces obfuscated crashes of two releases with
// their mapping files: the exception type, the classes, methods, files
// and lines of three frames inlined into one come back, and system frames
// are kept.
func TestCrashTestdata(t *testing.T) {
	for _, release := range []string{"4.12.0", "4.13.0"} {
		t.Run(release, func(t *testing.T) {
			m := parseFile(t, "notes-"+release+"-mapping.txt")
			c := readCrash(t, "notes-"+release+"-crash.txt")
			orig := slices.Clone(c.Frames)
			if !m.Crash(&c, appID) {
				t.Fatal("nothing retraced")
			}
			want, err := os.ReadFile(filepath.Join("testdata", "notes-"+release+"-crash.retraced.txt"))
			if err != nil {
				t.Fatal(err)
			}
			if got := format(c); got != string(want) {
				t.Errorf("got\n%s\nwant\n%s", got, want)
			}
			for i, f := range c.Frames {
				if want := i < 3; f.InApp != want {
					t.Errorf("frame %d (%s) in-app = %v", i, f.Function, f.InApp)
				}
			}
			if orig[0].Module == c.Frames[0].Module {
				t.Error("frames were changed in place")
			}
		})
	}
}

// TestGroupsAcrossReleases checks what deobfuscation is for: one bug
// crashes in two releases whose obfuscation differs; without the
// mappings it forms two crash groups, with them one.
func TestGroupsAcrossReleases(t *testing.T) {
	a, b := readCrash(t, "notes-4.12.0-crash.txt"), readCrash(t, "notes-4.13.0-crash.txt")
	if fingerprint.Sum(&a, "") == fingerprint.Sum(&b, "") {
		t.Fatal("obfuscated crashes of two releases share a group: the test shows nothing")
	}
	parseFile(t, "notes-4.12.0-mapping.txt").Crash(&a, appID)
	parseFile(t, "notes-4.13.0-mapping.txt").Crash(&b, appID)
	fa, ia := fingerprint.Of(&a, "")
	fb, ib := fingerprint.Of(&b, "")
	if fa != fb {
		t.Errorf("deobfuscated crashes of one bug in two releases: groups %s and %s\n%v\n%v", fa, fb, ia, ib)
	}
	if !slices.Contains(ia, "frame:com.example.notes.sync SyncWorker.checkConflict") {
		t.Errorf("grouping inputs are not deobfuscated: %v", ia)
	}
}

// TestCrashMore covers the frames of the 4.12.0 mapping one by one: an
// inline chain in a kept class, a library inlined into app code (not
// in-app), a synthesized lambda, a rewriteFrame rule, frames the mapping
// does not know, and a crash with nothing to retrace.
func TestCrashMore(t *testing.T) {
	m := parseFile(t, "notes-4.12.0-mapping.txt")
	frame := func(module, function string, line uint32, inApp bool) pipeline.Frame {
		return pipeline.Frame{Module: module, Function: function, File: "SourceFile", Line: line, InApp: inApp}
	}
	for _, tc := range []struct {
		name   string
		crash  pipeline.CrashRow
		want   string
		inApp  []bool
		change bool
	}{
		{
			name: "inlined into a kept class",
			crash: pipeline.CrashRow{ExceptionType: "java.lang.IllegalStateException", Message: "no title", Frames: []pipeline.Frame{
				frame("c2", "b.a", 4, false),
				frame("com.example.notes", "MainActivity.onResume", 5, true),
				{Module: "android.app", Function: "Activity.performResume", File: "Activity.java", Line: 8422},
			}},
			want: `java.lang.IllegalStateException: no title
	at com.example.notes.data.Note.requireTitle(Note.kt:52)
	at com.example.notes.editor.NoteEditor.save(NoteEditor.kt:43)
	at com.example.notes.editor.NoteEditor.restoreDraft(NoteEditor.kt:131)
	at com.example.notes.MainActivity.onResume(MainActivity.kt:88)
	at android.app.Activity.performResume(Activity.java:8422)
`,
			inApp: []bool{true, true, true, true, false}, change: true,
		},
		{
			name: "a library inlined into app code",
			crash: pipeline.CrashRow{ExceptionType: "java.util.NoSuchElementException", Message: "List is empty.", Frames: []pipeline.Frame{
				frame("c3", "b.a", 5, false),
			}},
			want: `java.util.NoSuchElementException: List is empty.
	at kotlin.collections.CollectionsKt___CollectionsKt.first(_Collections.kt:226)
	at com.example.notes.sync.SyncApi.fetchChanges(SyncApi.kt:37)
`,
			inApp: []bool{false, true}, change: true,
		},
		{
			name: "a synthesized lambda class",
			crash: pipeline.CrashRow{ExceptionType: "java.lang.IllegalArgumentException", Message: "x", Frames: []pipeline.Frame{
				frame("c2", "a.run", 1, false),
				{Module: "android.os", Function: "Handler.handleCallback", File: "Handler.java", Line: 942},
			}},
			want: `java.lang.IllegalArgumentException: x
	at com.example.notes.editor.NoteEditor.lambda$scheduleAutosave$0(NoteEditor.kt:160)
	at android.os.Handler.handleCallback(Handler.java:942)
`,
			inApp: []bool{true, false}, change: true,
		},
		{
			name: "rewriteFrame for a NullPointerException",
			crash: pipeline.CrashRow{ExceptionType: "java.lang.NullPointerException", Message: "null", Frames: []pipeline.Frame{
				frame("c3", "d.b", 4, false),
			}},
			want: `java.lang.NullPointerException: null
	at com.example.notes.sync.SyncWorker.doWork(SyncWorker.kt:47)
`,
			inApp: []bool{true}, change: true,
		},
		{
			name: "module holding the class, function the method; no line",
			crash: pipeline.CrashRow{ExceptionType: "java.lang.RuntimeException", Message: "y", Frames: []pipeline.Frame{
				{Module: "c4.a", Function: "a"},
				frame("c2", "c.a", 2, false),
			}},
			want: `java.lang.RuntimeException: y
	at com.example.notes.legacy.Importer.importFile(Importer.java:0)
	at com.example.notes.editor.NoteEditor$DraftStore.write(NoteEditor.kt:202)
`,
			inApp: []bool{true, true}, change: true,
		},
		{
			name: "nothing to retrace",
			crash: pipeline.CrashRow{ExceptionType: "SIGSEGV", Message: "fault", Frames: []pipeline.Frame{
				{Module: "libimage.so", Function: "decode_tile+0x1b4"},
				{Module: "", Function: "main"},
				{Module: "com.example.notes", Function: "Unknown.method", Line: 3},
			}},
			want: `SIGSEGV: fault
	at libimage.so.decode_tile+0x1b4(:0)
	at .main(:0)
	at com.example.notes.Unknown.method(:3)
`,
			inApp: []bool{false, false, false},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.crash
			if got := m.Crash(&c, appID); got != tc.change {
				t.Errorf("Crash = %v", got)
			}
			if got := format(c); got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
			var inApp []bool
			for _, f := range c.Frames {
				inApp = append(inApp, f.InApp)
			}
			if !slices.Equal(inApp, tc.inApp) {
				t.Errorf("in-app %v, want %v", inApp, tc.inApp)
			}
		})
	}
}
