package scrub

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"unsafe"
)

// scrubCase is one input and the output expected from the default
// Scrubber.
type scrubCase struct {
	in, want string
}

// runCases checks each case, and that scrubbing the output again changes
// nothing.
func runCases(t *testing.T, cases []scrubCase) {
	t.Helper()
	s := New(Config{})
	for _, c := range cases {
		got := s.String(c.in)
		if got != c.want {
			t.Errorf("String(%q)\n got %q\nwant %q", c.in, got, c.want)
			continue
		}
		if again := s.String(got); again != got {
			t.Errorf("String(%q) = %q, but scrubbing that again gives %q", c.in, got, again)
		}
	}
}

// kept returns cases whose inputs must come out unchanged.
func kept(ins ...string) []scrubCase {
	cs := make([]scrubCase, len(ins))
	for i, in := range ins {
		cs[i] = scrubCase{in, in}
	}
	return cs
}

func TestKinds(t *testing.T) {
	ks := Kinds()
	if len(ks) != 16 {
		t.Fatalf("Kinds() has %d kinds, want 16", len(ks))
	}
	markers := map[string]bool{}
	for i, k := range ks {
		if k != Kind(i+1) {
			t.Errorf("Kinds()[%d] = %d", i, k)
		}
		m := k.Marker()
		if m != "["+k.String()+"]" {
			t.Errorf("%s.Marker() = %q", k, m)
		}
		if markers[m] {
			t.Errorf("marker %q is used twice", m)
		}
		markers[m] = true
		for _, name := range []string{k.String(), strings.ToUpper(k.String()), m} {
			if got, err := ParseKind(name); err != nil || got != k {
				t.Errorf("ParseKind(%q) = %v, %v; want %v", name, got, err, k)
			}
		}
	}
	want := "[email] [phone] [ip] [uuid] [imei] [mac] [card] [iban] [token] [jwt] [secret] [user] [coordinates] [id] [device_id] [address]"
	var got []string
	for _, k := range ks {
		got = append(got, k.Marker())
	}
	if strings.Join(got, " ") != want {
		t.Errorf("markers = %s\nwant %s", strings.Join(got, " "), want)
	}
	for name, want := range map[string]Kind{"UserPath": UserPath, "keyvalue": KeyValue, "[id]": KeyValue, "user": UserPath} {
		if got, err := ParseKind(name); err != nil || got != want {
			t.Errorf("ParseKind(%q) = %v, %v; want %v", name, got, err, want)
		}
	}
	if _, err := ParseKind("fax"); err == nil {
		t.Error("ParseKind(fax) did not fail")
	}
	if got := Kind(0).String(); got != "Kind(0)" {
		t.Errorf("Kind(0).String() = %q", got)
	}
	if got := Kind(99).Marker(); got != "[redacted]" {
		t.Errorf("Kind(99).Marker() = %q", got)
	}
}

func TestStringReturnsInputWhenClean(t *testing.T) {
	s := New(Config{})
	for _, in := range []string{"", "main", "at com.example.notes.NoteEditor.save(NoteEditor.kt:42)", "NoteEditor"} {
		got := s.String(in)
		if got != in || len(in) > 0 && unsafe.StringData(got) != unsafe.StringData(in) {
			t.Errorf("String(%q) did not return its argument", in)
		}
		if n := testing.AllocsPerRun(100, func() { s.String(in) }); n != 0 {
			t.Errorf("String(%q) allocates %v times", in, n)
		}
		if n := testing.AllocsPerRun(100, func() { s.Find(in, func(Kind, int, int) {}) }); n != 0 {
			t.Errorf("Find(%q) allocates %v times", in, n)
		}
	}
}

func TestFind(t *testing.T) {
	s := New(Config{})
	in := "mail jane@example.com from 203.0.113.7:443 as user_id=42"
	type finding struct {
		k    Kind
		text string
	}
	var got []finding
	prev := 0
	s.Find(in, func(k Kind, start, end int) {
		if start < prev || end <= start || end > len(in) {
			t.Errorf("finding %v [%d:%d] out of order or range", k, start, end)
			return
		}
		prev = end
		got = append(got, finding{k, in[start:end]})
	})
	want := []finding{{Email, "jane@example.com"}, {IP, "203.0.113.7"}, {KeyValue, "42"}}
	if !slices.Equal(got, want) {
		t.Errorf("Find found %v, want %v", got, want)
	}
}

func TestDisabled(t *testing.T) {
	in := "jane@example.com 203.0.113.7 lat=48.20849 user_id=42 password=hunter2"
	cases := []struct {
		off  []Kind
		want string
	}{
		{nil, "[email] [ip] lat=[coordinates] user_id=[id] password=[secret]"},
		{[]Kind{Email}, "jane@example.com [ip] lat=[coordinates] user_id=[id] password=[secret]"},
		{[]Kind{IP, Coordinates}, "[email] 203.0.113.7 lat=48.20849 user_id=[id] password=[secret]"},
		{[]Kind{KeyValue}, "[email] [ip] lat=[coordinates] user_id=42 password=[secret]"},
		{[]Kind{Secret}, "[email] [ip] lat=[coordinates] user_id=[id] password=[id]"},
		{Kinds(), in},
	}
	for _, c := range cases {
		if got := New(Config{Disabled: c.off}).String(in); got != c.want {
			t.Errorf("with %v off:\n got %q\nwant %q", c.off, got, c.want)
		}
	}
}

func TestZeroScrubber(t *testing.T) {
	var s Scrubber
	if got := s.String("mail jane@example.com"); got != "mail [email]" {
		t.Errorf("zero Scrubber: %q", got)
	}
}

func TestConcurrent(t *testing.T) {
	s := New(Config{ExtraKeys: []string{"loyalty_number"}})
	in := "mail jane@example.com loyalty_number=99 at 203.0.113.7"
	want := "mail [email] loyalty_number=[id] at [ip]"
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				if got := s.String(in); got != want {
					t.Errorf("got %q", got)
					return
				}
			}
		})
	}
	wg.Wait()
}
