package kanon

import (
	"slices"
	"testing"

	"github.com/consentry/consentry/pipeline"
)

// TestSplitParts checks the split of rows of a published device (P) and
// an unpublished one (h) in every arrangement: order kept, nothing lost,
// and the input left as it was.
func TestSplitParts(t *testing.T) {
	r := NewRouter()
	pub, unpub := pixel, pixel
	unpub.DeviceModel = "rare model"
	r.Add("com.example.notes", t0, pub)
	for _, pattern := range []string{"", "PPPP", "hhhh", "PPhh", "Phh", "hP", "hhPP", "PhPh", "hPhP", "PPhhP"} {
		t.Run(pattern, func(t *testing.T) {
			rows := &pipeline.Rows{}
			var wantPub, wantHeld []uint64
			for i, c := range pattern {
				var s pipeline.SessionRow
				s.AppID, s.EventTime, s.EventID = "com.example.notes", t0, eventID(uint64(i))
				s.DurationMs = uint64(i)
				if c == 'P' {
					pub.Apply(&s.Common)
					wantPub = append(wantPub, s.DurationMs)
				} else {
					unpub.Apply(&s.Common)
					wantHeld = append(wantHeld, s.DurationMs)
				}
				rows.Sessions = append(rows.Sessions, s)
			}
			before := slices.Clone(rows.Sessions)
			p, h := r.Split(rows)
			if len(wantHeld) == 0 {
				if h != nil || p != rows {
					t.Fatalf("nothing held: got %v, %v; want rows itself and nil", p, h)
				}
				return
			}
			ids := func(rs []pipeline.SessionRow) []uint64 {
				var out []uint64
				for _, s := range rs {
					out = append(out, s.DurationMs)
				}
				return out
			}
			if got := ids(p.Sessions); !slices.Equal(got, wantPub) {
				t.Errorf("public rows %v, want %v", got, wantPub)
			}
			if got := ids(h.Sessions); !slices.Equal(got, wantHeld) {
				t.Errorf("held rows %v, want %v", got, wantHeld)
			}
			// Appending to a part must not overwrite the other or the input.
			_ = append(p.Sessions, pipeline.SessionRow{DurationMs: 99})
			_ = append(h.Sessions, pipeline.SessionRow{DurationMs: 99})
			if !slices.EqualFunc(rows.Sessions, before, func(a, b pipeline.SessionRow) bool { return a.DurationMs == b.DurationMs }) {
				t.Error("Split modified its input")
			}
		})
	}
}

// TestSplitAllHeldDoesNotCopy checks that a batch whose rows are all held
// (a new day's first minutes) is split without copying its rows: only the
// two Rows are allocated.
func TestSplitAllHeldDoesNotCopy(t *testing.T) {
	r := NewRouter()
	rows := benchRows(r, 500, 20, false)
	if a := testing.AllocsPerRun(50, func() { r.Split(rows) }); a > 2 {
		t.Errorf("Split of held rows allocates %v times, want 2 (the parts)", a)
	}
}
