package consentryv1_test

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/consentry/consentry/internal/eventgen"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// customs returns a request of n custom events with attrs attributes
// each, named by tag so that two requests' attributes differ.
func customs(n, attrs int, tag string) *consentryv1.IngestRequest {
	req := &consentryv1.IngestRequest{Device: &consentryv1.DeviceContext{AppId: "com.example." + tag}}
	for i := range n {
		c := &consentryv1.CustomEvent{Name: "export"}
		if attrs > 0 {
			c.Attributes = map[string]*consentryv1.AttributeValue{}
		}
		for j := range attrs {
			c.Attributes[fmt.Sprintf("%s%d", tag, j)] = &consentryv1.AttributeValue{
				Value: &consentryv1.AttributeValue_IntValue{IntValue: int64(i*j + 1)}}
		}
		req.Events = append(req.Events, &consentryv1.Event{EventId: []byte{byte(i), 1}, Payload: &consentryv1.Event_Custom{Custom: c}})
	}
	return req
}

// crashes returns a request of n crashes with frames frames and crumbs
// breadcrumbs each.
func crashes(n, frames, crumbs int) *consentryv1.IngestRequest {
	req := &consentryv1.IngestRequest{}
	for i := range n {
		c := &consentryv1.Crash{ExceptionType: "E", Handled: i%2 == 0}
		for j := range frames {
			c.Frames = append(c.Frames, &consentryv1.StackFrame{Function: fmt.Sprint("f", j), Line: uint32(j + 1), InApp: j%2 == 0})
		}
		for j := range crumbs {
			c.Breadcrumbs = append(c.Breadcrumbs, &consentryv1.Breadcrumb{Name: fmt.Sprint("s", j), OffsetMs: int64(j)})
		}
		req.Events = append(req.Events, &consentryv1.Event{EventId: []byte{byte(i), 2}, SessionId: []byte("sess"),
			Payload: &consentryv1.Event_Crash{Crash: c}})
	}
	return req
}

// decode decodes req's encoding into a request from the pool.
func decode(t testing.TB, req *consentryv1.IngestRequest) *consentryv1.IngestRequest {
	t.Helper()
	b, err := req.MarshalVT()
	if err != nil {
		t.Fatal(err)
	}
	got := consentryv1.IngestRequestFromVTPool()
	if err := got.UnmarshalVT(b); err != nil {
		t.Fatal(err)
	}
	return got
}

// TestRecycle checks that a request decoded from the pool after Recycle
// is the one sent: nothing of the last request shows through (ids,
// payloads, frames, breadcrumbs, attributes, the device), whether the
// next request has more events or fewer, other kinds of events in their
// places, longer lists or shorter, more attributes, fewer or none.
func TestRecycle(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	gen := eventgen.New(eventgen.Config{AppID: "com.example.notes", Token: "token", Seed: 3})
	next := []*consentryv1.IngestRequest{
		gen.Batch(200, now), customs(10, 3, "a"), crashes(20, 8, 5), customs(20, 5, "b"), gen.Batch(30, now),
		crashes(5, 2, 0), customs(5, 1, "c"), customs(10, 0, "d"), crashes(30, 0, 9), customs(30, 100, "e"),
		customs(30, 2, "f"), gen.Batch(300, now), {}, crashes(10, 12, 12), customs(10, 3, "g"), gen.Batch(1, now),
	}
	for round := range 3 {
		for i, want := range next {
			got := decode(t, want)
			if !proto.Equal(got, want) {
				t.Fatalf("round %d, request %d: decoded after Recycle\n%v\nwant\n%v", round, i, got, want)
			}
			got.Recycle()
		}
	}
}

// TestRecycleKeepsAttributeMaps checks that decoding custom events into
// requests recycled by Recycle allocates less than into requests
// returned by ReturnToVTPool: their attribute maps are reused.
func TestRecycleKeepsAttributeMaps(t *testing.T) {
	req := customs(50, 6, "k")
	allocs := func(recycle func(*consentryv1.IngestRequest)) float64 {
		return testing.AllocsPerRun(100, func() { recycle(decode(t, req)) })
	}
	returned := allocs((*consentryv1.IngestRequest).ReturnToVTPool)
	recycled := allocs((*consentryv1.IngestRequest).Recycle)
	// Each custom event's map costs at least one allocation when it is
	// made anew.
	if recycled > returned-50 {
		t.Errorf("a request of 50 custom events allocates %v times recycled, %v returned to the pool: its maps were not reused", recycled, returned)
	}
}

// BenchmarkRecycle decodes the load generator's mixed 200-event batches
// into requests from the pool and recycles them, by Recycle or by
// vtproto's ReturnToVTPool.
func BenchmarkRecycle(b *testing.B) {
	gen := eventgen.New(eventgen.Config{AppID: "com.example.notes", Token: "token", Seed: 5})
	var bodies [][]byte
	for range 16 {
		body, err := gen.Batch(200, time.Unix(1_800_000_000, 0)).MarshalVT()
		if err != nil {
			b.Fatal(err)
		}
		bodies = append(bodies, body)
	}
	for _, c := range []struct {
		name    string
		recycle func(*consentryv1.IngestRequest)
	}{{"Recycle", (*consentryv1.IngestRequest).Recycle}, {"ReturnToVTPool", (*consentryv1.IngestRequest).ReturnToVTPool}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				req := consentryv1.IngestRequestFromVTPool()
				if err := req.UnmarshalVT(bodies[i%len(bodies)]); err != nil {
					b.Fatal(err)
				}
				c.recycle(req)
			}
		})
	}
}
