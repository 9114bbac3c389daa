package geo

import "testing"

func TestWellFormed(t *testing.T) {
	for in, want := range map[Location]Location{
		{"AT", "AT-9"}:    {"AT", "AT-9"},
		{"FR", "FR-IDF"}:  {"FR", "FR-IDF"},
		{"AT", "DE-BY"}:   {"AT", ""},
		{"AT", "AT-"}:     {"AT", ""},
		{"AT", "AT-ABCD"}: {"AT", ""},
		{"AT", "AT-b"}:    {"AT", ""},
		{"at", "at-9"}:    {},
		{"AUT", ""}:       {},
		{"", "AT-9"}:      {},
		{"AT", ""}:        {"AT", ""},
	} {
		if got := in.WellFormed(); got != want {
			t.Errorf("%+v.WellFormed() = %+v, want %+v", in, got, want)
		}
	}
}
