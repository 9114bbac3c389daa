package privacyprobe

import (
	"math/rand/v2"
	"strings"
	"testing"
)

func TestFold(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Jane.Doe@Example.COM", "jane.doe@example.com"},
		{"０１５１\u00a0１２３４５６７８", "0151 12345678"},
		{"ja\u200bne\u200d.d\u2060oe\ufeff@ex\u00adample.com", "jane.doe@example.com"},
		{"0151\u20101234\u2212567", "0151-1234-567"},
		{"ＡＫＩＡ", "akia"},
		{"\xff\xfebinary\x00", "\xff\xfebinary\x00"},
	}
	for _, tt := range tests {
		if got := fold(tt.in); got != tt.want {
			t.Errorf("fold(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDecode(t *testing.T) {
	tests := []struct{ in, want string }{
		{`jane\u002edoe\u0040example\u002ecom`, "jane.doe@example.com"},
		{"jane%2Edoe%40example.com", "jane.doe@example.com"},
		{"jane&period;doe&commat;example&#46;com&#x40;", "jane.doe@example.com@"},
		{`['a\\'b','c\td']`, "['a'b','c\td']"}, // escapes within escapes are resolved too
		{"%2540", "@"},                         // escapes within escapes
		{`\ud83d\ude00`, "😀"},
		{"no escapes", "no escapes"},
		{"100% sure", "100% sure"},
	}
	for _, tt := range tests {
		if got := decode(tt.in); got != tt.want {
			t.Errorf("decode(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDigitRuns(t *testing.T) {
	var got []string
	digitRuns("call +1 (415) 555-2671 at 12:30, id 12345 and 0151/1234567-8x9", minDigits, func(d string, _ int) { got = append(got, d) })
	want := []string{"14155552671", "015112345678"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("digit runs %v, want %v", got, want)
	}
}

// TestContextsRecoverable renders identifiers of every kind in every
// context: the scanner's normalisation must find each again, or a leak
// in that context would go unnoticed.
func TestContextsRecoverable(t *testing.T) {
	g := &generator{r: rand.New(rand.NewPCG(1, 2))}
	for _, k := range Kinds() {
		for _, c := range Contexts() {
			for range 5 {
				id := g.identifier(k)
				pr := &Probe{}
				pl := pr.AddSecret(k, "f", id.Value, id.Needles...)
				pl.Identifier = id
				s := NewScanner(pr)
				sent := c.render(g, id.Value)
				s.Scan("x", "", sent)
				if len(s.Finds()) == 0 {
					t.Errorf("%s %q in context %q: %q not found", k, id.Value, c.Name, sent)
				}
			}
		}
	}
}
