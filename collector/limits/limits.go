package limits

import (
	"context"
	"fmt"

	"google.golang.org/grpc/codes"

	"github.com/consentry/consentry/pipeline"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// ErrBatchTooLarge is returned when a batch holds more events than allowed.
// The client should split the batch; retrying it unchanged cannot succeed.
var ErrBatchTooLarge = pipeline.ErrBatchTooLarge.Specialize("batch holds too many events", pipeline.ReasonBatchTooLarge, 0)

// ErrFieldTooLarge is returned when a batch-level field (the device
// context) exceeds its limit. Retrying the batch unchanged cannot succeed.
var ErrFieldTooLarge = pipeline.Refuse(codes.InvalidArgument, consentryv1.ErrorReason_FIELD_TOO_LARGE, pipeline.ReasonBatchTooLarge, 0, "field too large")

// Stage enforces the limits.
type Stage struct {
	cfg Config
}

// New returns the limits stage for cfg.
func New(cfg Config) (*Stage, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Stage{cfg: cfg.withDefaults()}, nil
}

// Config returns the effective limits.
func (s *Stage) Config() Config { return s.cfg }

// Process refuses b if it has too many events, and drops each event with a
// field over its limit with DROP_REASON_TOO_LARGE.
func (s *Stage) Process(_ context.Context, b *pipeline.Batch) error {
	events := b.Request.GetEvents()
	if len(events) > s.cfg.MaxEvents {
		return fmt.Errorf("%w: %d events, at most %d", ErrBatchTooLarge, len(events), s.cfg.MaxEvents)
	}
	d := b.Request.GetDevice()
	for _, f := range []struct{ name, v string }{
		{"app_id", d.GetAppId()}, {"app_version", d.GetAppVersion()}, {"app_build", d.GetAppBuild()},
		{"sdk_version", d.GetSdkVersion()}, {"device_model", d.GetDeviceModel()}, {"os_version", d.GetOsVersion()},
		{"locale", d.GetLocale()}, {"location.country_code", d.GetLocation().GetCountryCode()},
		{"location.region_code", d.GetLocation().GetRegionCode()},
	} {
		if len(f.v) > s.cfg.MaxNameBytes {
			return fmt.Errorf("%w: device.%s is %d bytes, at most %d", ErrFieldTooLarge, f.name, len(f.v), s.cfg.MaxNameBytes)
		}
	}
	if len(b.Request.GetConsentToken()) > s.cfg.MaxTextBytes {
		return fmt.Errorf("%w: consent_token is %d bytes, at most %d", ErrFieldTooLarge, len(b.Request.GetConsentToken()), s.cfg.MaxTextBytes)
	}
	for i, e := range events {
		if !s.eventFits(e) {
			b.Drop(i, consentryv1.DropReason_DROP_REASON_TOO_LARGE)
		}
	}
	return nil
}

func (s *Stage) eventFits(e *consentryv1.Event) bool {
	name := func(v string) bool { return len(v) <= s.cfg.MaxNameBytes }
	text := func(v string) bool { return len(v) <= s.cfg.MaxTextBytes }
	switch p := e.GetPayload().(type) {
	case *consentryv1.Event_Gesture:
		return name(p.Gesture.GetScreen())
	case *consentryv1.Event_Crash:
		c := p.Crash
		if !name(c.GetExceptionType()) || !text(c.GetMessage()) || !name(c.GetThread()) || !name(c.GetFingerprint()) || len(c.GetFrames()) > s.cfg.MaxFrames {
			return false
		}
		for _, f := range c.GetFrames() {
			if !name(f.GetModule()) || !name(f.GetFunction()) || !name(f.GetFile()) {
				return false
			}
		}
		if len(c.GetBreadcrumbs()) > s.cfg.MaxBreadcrumbs {
			return false
		}
		for _, b := range c.GetBreadcrumbs() {
			if len(b.GetName()) > s.cfg.MaxBreadcrumbBytes {
				return false
			}
		}
	case *consentryv1.Event_Custom:
		c := p.Custom
		if !name(c.GetName()) || len(c.GetAttributes()) > s.cfg.MaxAttributes {
			return false
		}
		for k, v := range c.GetAttributes() {
			if !name(k) || !text(v.GetStringValue()) {
				return false
			}
		}
	}
	return true
}
