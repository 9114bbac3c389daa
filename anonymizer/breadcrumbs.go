package anonymizer

import (
	"time"

	"github.com/consentry/consentry/pipeline"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// maxBreadcrumbOffset is the longest a breadcrumb may precede its crash:
// the age of the oldest event the collector accepts.
var maxBreadcrumbOffset = consentryv1.DefaultMaxEventAge.Milliseconds()

// breadcrumbs returns the stored form of a crash's breadcrumbs, in the
// order the SDK sent them (oldest first), nil for none:
//
//   - they describe the use of the app, so they are kept only when the
//     batch's consent covers analytics as well as crash reports (the SDK
//     records them only then; another client's are dropped);
//   - the type is "screen_view", "custom", the gesture's type ("tap",
//     ...; "gesture" if not given) or "unknown" for a type this
//     collector does not know;
//   - the name is a name, as a screen's is (letters, digits, '.', '_',
//     '-', '/', ':' and spaces), scrubbed like one; a breadcrumb whose
//     name is not a name (free text, or repaired from invalid UTF-8) is
//     left out, the crash is kept;
//   - the offset before the crash is rounded to the precision of stored
//     event times: a precise offset is a precise time relative to the
//     crash, which with the truncated times of the events the
//     breadcrumbs also are (a gesture, a custom event) would tell the
//     crash's time more precisely than its stored time does. A negative
//     offset (after the crash) or one beyond the oldest event accepted
//     leaves the breadcrumb out.
//
// Breadcrumbs are not part of the crash's fingerprint.
func (s *Stage) breadcrumbs(a *arena, in []*consentryv1.Breadcrumb) []pipeline.Breadcrumb {
	if !a.crumbs {
		return nil
	}
	start := len(a.Breadcrumbs)
	for _, c := range in {
		off, name := c.GetOffsetMs(), c.GetName()
		if off < 0 || off > maxBreadcrumbOffset || !validBreadcrumbName(name) {
			continue
		}
		a.Breadcrumbs = append(a.Breadcrumbs, pipeline.Breadcrumb{
			Type:     s.breadcrumbType(c),
			Name:     a.text(name),
			OffsetMs: roundMs(off, s.cfg.TimePrecision),
		})
	}
	return tail(a.Breadcrumbs, start)
}

// breadcrumbType is the stored type of c.
func (s *Stage) breadcrumbType(c *consentryv1.Breadcrumb) string {
	t := s.enums.of(c.GetType())
	if c.GetType() == consentryv1.BreadcrumbType_BREADCRUMB_TYPE_GESTURE {
		if g := s.enums.of(c.GetGestureType()); g != "unknown" {
			return g
		}
	}
	return t
}

// roundMs rounds ms to the nearest multiple of precision (ms stays
// itself for precisions of a millisecond or less). ms is at most
// maxBreadcrumbOffset, so the sum cannot overflow.
func roundMs(ms int64, precision time.Duration) int64 {
	p := precision.Milliseconds()
	if p <= 1 {
		return ms
	}
	return (ms + p/2) / p * p
}

// validBreadcrumbName reports whether v is a name a screen may have:
// letters, digits, '.', '_', '-', '/', ':' and spaces, or empty.
func validBreadcrumbName(v string) bool {
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.', c == '_', c == '-', c == '/', c == ':', c == ' ':
		default:
			return false
		}
	}
	return true
}
