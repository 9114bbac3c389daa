package fingerprint

import (
	"slices"
	"testing"

	"github.com/consentry/consentry/pipeline"
)

func frame(module, fn string, line uint32, inApp bool) pipeline.Frame {
	return pipeline.Frame{Module: module, Function: fn, Line: line, InApp: inApp}
}

// crash returns the NoteEditor bug as one app version reports it.
func crash(version, message string, line uint32, extra ...pipeline.Frame) pipeline.CrashRow {
	c := pipeline.CrashRow{ExceptionType: "java.lang.IllegalStateException", Message: message}
	c.AppVersion = version
	c.Frames = append([]pipeline.Frame{
		frame("com.example.notes", "com.example.notes.NoteEditorFragment.save", line, true),
		frame("com.example.notes", "com.example.notes.NoteEditorFragment.onPause", line+40, true),
	}, extra...)
	c.Frames = append(c.Frames, frame("androidx.fragment", "androidx.fragment.app.Fragment.performPause", 3174, false))
	return c
}

func TestSameBugOneGroup(t *testing.T) {
	base, _ := Of(ptr(crash("4.12.0", "Fragment NoteEditorFragment{a1b2c3} not attached to a context", 142)), "")
	for name, c := range map[string]pipeline.CrashRow{
		"another version and line":   crash("4.13.1", "Fragment NoteEditorFragment{a1b2c3} not attached to a context", 151),
		"another message":            crash("4.12.0", "Fragment NoteEditorFragment{ff00ee} not attached to [email]", 142),
		"a library frame in between": crash("4.12.0", "x", 142, frame("kotlinx.coroutines", "kotlinx.coroutines.DispatchedTask.run", 106, false)),
	} {
		if got, inputs := Of(&c, ""); got != base {
			t.Errorf("%s: fingerprint %s, want %s (inputs %q)", name, got, base, inputs)
		}
	}
	// Lambdas, offsets and addresses in frames.
	a := pipeline.CrashRow{ExceptionType: "SIGSEGV", Frames: []pipeline.Frame{
		frame("libnotes.so", "ImageCache::decode(Bitmap*)+164", 0, true),
		frame("libnotes.so", "com.example.notes.SyncWorker$doWork$1.invokeSuspend", 0, true),
		frame("libnotes.so", "com.example.notes.Editor$$Lambda$12/0x0000000801234.run", 0, true),
	}}
	b := pipeline.CrashRow{ExceptionType: "SIGSEGV", Frames: []pipeline.Frame{
		frame("libnotes.so", "ImageCache::decode(Bitmap*)+212", 0, true),
		frame("libnotes.so", "com.example.notes.SyncWorker$doWork$2.invokeSuspend", 0, true),
		frame("libnotes.so", "com.example.notes.Editor$$Lambda$15/0x0000000809999.run", 0, true),
	}}
	fa, ia := Of(&a, "")
	if fb, ib := Of(&b, ""); fa != fb {
		t.Errorf("offsets and lambda numbers split a group:\n%q\n%q", ia, ib)
	}
}

func TestDifferentBugsDifferentGroups(t *testing.T) {
	seen := map[string]string{}
	for name, c := range map[string]pipeline.CrashRow{
		"NoteEditor": crash("4.12.0", "m", 1),
		"another type": func() pipeline.CrashRow {
			c := crash("4.12.0", "m", 1)
			c.ExceptionType = "java.lang.NullPointerException"
			return c
		}(),
		"another function": func() pipeline.CrashRow {
			c := crash("4.12.0", "m", 1)
			c.Frames[0].Function = "com.example.notes.NoteEditorFragment.load"
			return c
		}(),
		"no in-app frames, one message": {ExceptionType: "SIGABRT", Message: "assertion failed: count > 0",
			Frames: []pipeline.Frame{frame("libc.so", "abort", 0, false)}},
		"no in-app frames, another message": {ExceptionType: "SIGABRT", Message: "heap corruption detected",
			Frames: []pipeline.Frame{frame("libc.so", "abort", 0, false)}},
	} {
		fp, _ := Of(&c, "")
		if other, dup := seen[fp]; dup {
			t.Errorf("%s and %s share fingerprint %s", name, other, fp)
		}
		seen[fp] = name
	}
}

func TestFallbackNormalizesMessage(t *testing.T) {
	a := pipeline.CrashRow{ExceptionType: "SIGABRT", Message: "index 12 out of range for 'notes' at 0x7fffa123",
		Frames: []pipeline.Frame{frame("libc.so", "abort+20", 0, false), frame("libc.so", "raise", 0, false)}}
	b := pipeline.CrashRow{ExceptionType: "SIGABRT", Message: "index 3 out of range for 'tags' at 0x10",
		Frames: []pipeline.Frame{frame("libc.so", "abort+44", 0, false)}}
	fa, ia := Of(&a, "")
	fb, ib := Of(&b, "")
	if fa != fb {
		t.Errorf("fallback split one bug:\n%q\n%q", ia, ib)
	}
	want := []string{"type:SIGABRT", "message:index <n> out of range for <str> at <hex>", "frame:libc.so abort"}
	if !slices.Equal(ia, want) {
		t.Errorf("inputs %q, want %q", ia, want)
	}
}

func TestCustomFingerprint(t *testing.T) {
	a, b := crash("4.12.0", "m", 1), crash("4.12.0", "m", 1)
	b.ExceptionType = "Other"
	fa, ia := Of(&a, "sync-timeout")
	fb, _ := Of(&b, " sync-timeout ")
	if fa != fb || len(ia) != 1 || ia[0] != "custom:sync-timeout" {
		t.Errorf("custom fingerprints: %s %s %q", fa, fb, ia)
	}
	if plain, _ := Of(&a, ""); plain == fa {
		t.Error("a custom fingerprint equals the computed one")
	}
	if len(fa) != 16 {
		t.Errorf("fingerprint %q is not 16 hex digits", fa)
	}
}

func TestSumMatchesOfAndDoesNotAllocate(t *testing.T) {
	c := crash("4.12.0", "Fragment NoteEditorFragment{a1b2c3} not attached", 142)
	fp, _ := Of(&c, "")
	if Hex(Sum(&c, "")) != fp {
		t.Fatalf("Sum %x and Of %s differ", Sum(&c, ""), fp)
	}
	if a := testing.AllocsPerRun(100, func() { Sum(&c, "") }); a != 0 {
		t.Errorf("Sum allocates %v times", a)
	}
}

func ptr[T any](v T) *T { return &v }
