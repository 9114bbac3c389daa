package limits

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/pipeline"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

func batch(d *consentryv1.DeviceContext, events ...*consentryv1.Event) *pipeline.Batch {
	return pipeline.NewBatch(&consentryv1.IngestRequest{Device: d, Events: events}, time.Now(), netip.Addr{})
}

func TestBatchLimits(t *testing.T) {
	st, err := New(Config{MaxEvents: 2, MaxNameBytes: 16})
	if err != nil {
		t.Fatal(err)
	}
	e := &consentryv1.Event{}
	tests := []struct {
		name string
		b    *pipeline.Batch
		want error
	}{
		{"fits", batch(&consentryv1.DeviceContext{AppId: "a"}, e, e), nil},
		{"too many events", batch(&consentryv1.DeviceContext{AppId: "a"}, e, e, e), ErrBatchTooLarge},
		{"long device model", batch(&consentryv1.DeviceContext{DeviceModel: strings.Repeat("x", 17)}, e), ErrFieldTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := st.Process(context.Background(), tt.b)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestEventLimits(t *testing.T) {
	st, err := New(Config{MaxNameBytes: 16, MaxTextBytes: 32, MaxFrames: 2, MaxAttributes: 1, MaxBreadcrumbs: 2, MaxBreadcrumbBytes: 20})
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 17)
	crash := func(c *consentryv1.Crash) *consentryv1.Event {
		return &consentryv1.Event{Payload: &consentryv1.Event_Crash{Crash: c}}
	}
	custom := func(c *consentryv1.CustomEvent) *consentryv1.Event {
		return &consentryv1.Event{Payload: &consentryv1.Event_Custom{Custom: c}}
	}
	str := func(s string) *consentryv1.AttributeValue {
		return &consentryv1.AttributeValue{Value: &consentryv1.AttributeValue_StringValue{StringValue: s}}
	}
	tests := []struct {
		name    string
		e       *consentryv1.Event
		dropped bool
	}{
		{"small crash", crash(&consentryv1.Crash{ExceptionType: "E", Message: "short"}), false},
		{"long message", crash(&consentryv1.Crash{ExceptionType: "E", Message: strings.Repeat("m", 33)}), true},
		{"long exception type", crash(&consentryv1.Crash{ExceptionType: long}), true},
		{"long fingerprint", crash(&consentryv1.Crash{Fingerprint: long}), true},
		{"too many frames", crash(&consentryv1.Crash{Frames: make([]*consentryv1.StackFrame, 3)}), true},
		{"long frame function", crash(&consentryv1.Crash{Frames: []*consentryv1.StackFrame{{Function: long}}}), true},
		{"two breadcrumbs", crash(&consentryv1.Crash{ExceptionType: "E", Breadcrumbs: []*consentryv1.Breadcrumb{{Name: strings.Repeat("b", 20)}, {}}}), false},
		{"too many breadcrumbs", crash(&consentryv1.Crash{ExceptionType: "E", Breadcrumbs: make([]*consentryv1.Breadcrumb, 3)}), true},
		{"long breadcrumb name", crash(&consentryv1.Crash{ExceptionType: "E", Breadcrumbs: []*consentryv1.Breadcrumb{{Name: strings.Repeat("b", 21)}}}), true},
		{"long screen", &consentryv1.Event{Payload: &consentryv1.Event_Gesture{Gesture: &consentryv1.Gesture{Screen: long}}}, true},
		{"too many attributes", custom(&consentryv1.CustomEvent{Name: "n", Attributes: map[string]*consentryv1.AttributeValue{"a": str(""), "b": str("")}}), true},
		{"long attribute value", custom(&consentryv1.CustomEvent{Name: "n", Attributes: map[string]*consentryv1.AttributeValue{"a": str(strings.Repeat("v", 33))}}), true},
		{"long attribute key", custom(&consentryv1.CustomEvent{Name: "n", Attributes: map[string]*consentryv1.AttributeValue{long: str("")}}), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := batch(&consentryv1.DeviceContext{}, tt.e)
			if err := st.Process(context.Background(), b); err != nil {
				t.Fatal(err)
			}
			if got := b.DropReasonOf(0) == consentryv1.DropReason_DROP_REASON_TOO_LARGE; got != tt.dropped {
				t.Fatalf("dropped = %v, want %v", got, tt.dropped)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	if err := (Config{MaxEvents: -1}).Validate(); err == nil {
		t.Fatal("negative max events accepted")
	}
}
