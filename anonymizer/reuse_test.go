package anonymizer

import (
	"context"
	"fmt"
	"net/netip"
	"reflect"
	"testing"

	"github.com/consentry/consentry/internal/eventgen"
	"github.com/consentry/consentry/pipeline"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// reuse readies b for req as the collector's service does: Batch.Reuse,
// then what the stages before the anonymizer set.
func reuse(b *pipeline.Batch, req *consentryv1.IngestRequest) {
	fresh := batch(req, netip.Addr{}, "consent-1")
	b.Reuse(req, fresh.Received, netip.Addr{})
	b.AppID, b.ConsentID, b.Scopes = fresh.AppID, fresh.ConsentID, fresh.Scopes
	copy(b.EventTimesFor(len(req.GetEvents())), fresh.EventTimes)
}

// TestReusedBatch checks that a batch reused for one request after
// another gets the rows a fresh batch gets: nothing of the last request's
// frames, breadcrumbs or attributes shows through, whether the next
// request holds more of them or fewer.
func TestReusedBatch(t *testing.T) {
	st := newStage(t, Config{Regions: firstLevel{}})
	gen := eventgen.New(eventgen.Config{AppID: "com.example.notes", Token: "token", Seed: 9})
	reused := new(pipeline.Batch)
	crashes := 0
	for _, n := range []int{200, 20, 400, 1, 200, 0, 50} {
		req := gen.Batch(n, now)
		fresh := batch(req, netip.Addr{}, "consent-1")
		reuse(reused, req)
		for _, b := range []*pipeline.Batch{fresh, reused} {
			if err := st.Process(context.Background(), b); err != nil {
				t.Fatal(err)
			}
		}
		if err := sameRows(&fresh.Rows, &reused.Rows); err != nil {
			t.Fatalf("%d events: a reused batch's rows differ from a fresh one's: %v", n, err)
		}
		for _, r := range reused.Rows.Crashes {
			if len(r.Frames) > 0 && len(r.Breadcrumbs) > 0 {
				crashes++
			}
		}
	}
	if crashes == 0 || len(reused.Arena.Strings) == 0 {
		t.Fatal("no crash with frames and breadcrumbs, or no attributes: the test tests nothing")
	}
}

// TestReusedBatchAllocates checks that a reused batch takes its rows and
// the slices inside them from the room it kept: anonymizing a mixed
// request of crashes and custom events into it allocates no more than
// one of sessions and gestures alone.
func TestReusedBatchAllocates(t *testing.T) {
	st := newStage(t, Config{Regions: firstLevel{}})
	allocs := func(req *consentryv1.IngestRequest) float64 {
		b := new(pipeline.Batch)
		return testing.AllocsPerRun(50, func() {
			reuse(b, req)
			if err := st.Process(context.Background(), b); err != nil {
				t.Fatal(err)
			}
		})
	}
	plain := cleanBatch(400)
	for _, e := range plain.Events {
		if e.GetCrash() != nil || e.GetCustom() != nil {
			e.Payload = &consentryv1.Event_Session{Session: &consentryv1.Session{Phase: consentryv1.SessionPhase_SESSION_PHASE_START}}
		}
	}
	mixed := cleanBatch(400)
	for _, e := range mixed.Events {
		if c := e.GetCrash(); c != nil {
			c.Breadcrumbs = []*consentryv1.Breadcrumb{{Type: consentryv1.BreadcrumbType_BREADCRUMB_TYPE_SCREEN_VIEW, Name: "editor", OffsetMs: 1200}}
		}
	}
	if a, b := allocs(plain), allocs(mixed); b > a {
		t.Errorf("a reused batch allocates %v times for a mixed request, %v for sessions and gestures alone", b, a)
	}
}

// sameRows reports how a's rows differ from b's, if they do; an empty
// table equals a nil one.
func sameRows(a, b *pipeline.Rows) error {
	for _, t := range []struct {
		name string
		a, b any
		n    int
	}{
		{"sessions", a.Sessions, b.Sessions, len(a.Sessions) + len(b.Sessions)},
		{"gestures", a.Gestures, b.Gestures, len(a.Gestures) + len(b.Gestures)},
		{"crashes", a.Crashes, b.Crashes, len(a.Crashes) + len(b.Crashes)},
		{"customs", a.Customs, b.Customs, len(a.Customs) + len(b.Customs)},
		{"diagnostics", a.Diagnostics, b.Diagnostics, len(a.Diagnostics) + len(b.Diagnostics)},
	} {
		if t.n > 0 && !reflect.DeepEqual(t.a, t.b) {
			return fmt.Errorf("%s: %+v, want %+v", t.name, t.b, t.a)
		}
	}
	return nil
}
