package kanon

import (
	"fmt"
	"testing"

	"github.com/consentry/consentry/pipeline"
)

// benchRows returns n session rows of devices devices, in runs of one
// device each as batches come, all published in r if published.
func benchRows(r *Router, n, devices int, published bool) *pipeline.Rows {
	rows := &pipeline.Rows{}
	for i := range n {
		q := pixel
		q.DeviceModel = fmt.Sprint("model ", i*devices/n)
		var s pipeline.SessionRow
		s.AppID, s.EventTime, s.EventID = "com.example.notes", t0, eventID(uint64(i))
		q.Apply(&s.Common)
		rows.Sessions = append(rows.Sessions, s)
		if published {
			r.Add(s.AppID, t0, q)
		}
	}
	return rows
}

// BenchmarkSplit measures the router's cost per event: a batch of 500
// rows of one device (the rows of a batch share their device), of 500
// devices (every row hashed), and with nothing published (every row
// copied to the held rows).
func BenchmarkSplit(b *testing.B) {
	for _, bc := range []struct {
		name      string
		devices   int
		published bool
	}{{"one-device", 1, true}, {"every-row-a-device", 500, true}, {"none-published", 1, false}} {
		b.Run(bc.name, func(b *testing.B) {
			r := NewRouter()
			// A realistic published set: a day of a big app.
			for i := range 50_000 {
				q := pixel
				q.OSVersion = fmt.Sprint(i)
				r.Add("com.example.notes", t0, q)
			}
			rows := benchRows(r, 500, bc.devices, bc.published)
			b.ReportAllocs()
			for b.Loop() {
				pub, held := r.Split(rows)
				if (held == nil) != bc.published || pub == nil {
					b.Fatal("wrong split")
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*500), "ns/event")
		})
	}
}

// TestSplitAllocations checks that routing a batch whose rows are all
// published allocates nothing.
func TestSplitAllocations(t *testing.T) {
	r := NewRouter()
	rows := benchRows(r, 500, 20, true)
	if a := testing.AllocsPerRun(50, func() { r.Split(rows) }); a != 0 {
		t.Errorf("Split of published rows allocates %v times", a)
	}
}
