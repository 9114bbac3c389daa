package fingerprint

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/consentry/consentry/pipeline"
)

// FuzzSum feeds arbitrary crash text through the fingerprint: it never
// panics; Sum and Of agree; the inputs are valid UTF-8 when the crash is;
// and line numbers, the app version and, with enough in-app frames, the
// message never change the group.
func FuzzSum(f *testing.F) {
	f.Add("java.lang.IllegalStateException", "Fragment X{a1b2} not attached", "com.example.notes.Editor.save(Editor.kt:42)", "com.example.notes", "", uint32(42), true)
	f.Add("SIGSEGV", "fault addr 0x7b70c9ed28", "decode_tile+0x1b4", "libimage.so", "", uint32(0), false)
	f.Add("EXC_BREAKPOINT", "Index out of range: line 91", "NoteListViewModel.item(at:) + 460", "NotesApp", "sync-conflict", uint32(7), true)
	f.Add("ANR", "Input dispatching timed out (Waited 5104ms)", "lambda$onCreate$0", "com.example", "", uint32(1), true)
	f.Add("", "", "", "", "", uint32(0), false)
	f.Add("T<A<B>>", "'quoted' \"x\" 0xFFFF 123", "a.b$$Lambda$12/0x00000008.invoke(Unknown Source)", "m", "\x00\xff", uint32(1<<31), true)
	f.Fuzz(func(t *testing.T, typ, msg, fn, module, custom string, line uint32, inApp bool) {
		c := pipeline.CrashRow{ExceptionType: typ, Message: msg, Frames: []pipeline.Frame{
			{Module: module, Function: fn, Line: line, InApp: inApp},
			{Module: module, Function: fn + "2", Line: line + 1, InApp: inApp},
			{Module: "libc.so", Function: "abort", Line: 3},
		}}
		sum := Sum(&c, custom)
		hex, inputs := Of(&c, custom)
		if hex != Hex(sum) {
			t.Fatalf("Of = %s, Sum = %s", hex, Hex(sum))
		}
		if len(inputs) == 0 {
			t.Fatal("no inputs")
		}
		valid := true
		for _, s := range []string{typ, msg, fn, module, custom} {
			valid = valid && utf8.ValidString(s)
		}
		for _, in := range inputs {
			if valid && !utf8.ValidString(in) {
				t.Fatalf("input %q is not valid UTF-8", in)
			}
		}
		if Sum(&c, custom) != sum {
			t.Fatal("Sum is not deterministic")
		}
		moved := c
		moved.Frames = append([]pipeline.Frame(nil), c.Frames...)
		moved.AppVersion = "9.9.9"
		for i := range moved.Frames {
			moved.Frames[i].Line += 17
		}
		if Sum(&moved, custom) != sum {
			t.Fatalf("line numbers or the version changed the group: %q vs %q", inputs, mustInputs(&moved, custom))
		}
		if inApp && custom == "" && strings.TrimSpace(fn) != "" {
			other := c
			other.Message = msg + " 12345 [email]"
			if Sum(&other, custom) != sum && !strings.Contains(strings.Join(inputs, "\n"), "message:") {
				t.Fatalf("the message changed a stack-grouped crash: %q", inputs)
			}
		}
	})
}

func mustInputs(c *pipeline.CrashRow, custom string) []string {
	_, in := Of(c, custom)
	return in
}
