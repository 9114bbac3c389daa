package collector

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"

	"github.com/consentry/consentry/internal/grpcerr"
	"github.com/consentry/consentry/pipeline"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// inflight bounds the ingest requests being received and processed at
// once, over gRPC and HTTP together. Each may hold up to MaxMessageBytes
// of request and its decoded form, so this bound, not the number of
// clients, is what keeps memory bounded under a flood of large batches.
// A request over the bound is refused before its body is read, with
// RESOURCE_EXHAUSTED (OVERLOADED) and a retry delay.
type inflight struct {
	sem     chan struct{}
	refused atomic.Uint64
}

// newInflight returns a bound of n requests; n <= 0 means none.
func newInflight(n int) *inflight {
	if n <= 0 {
		return nil
	}
	return &inflight{sem: make(chan struct{}, n)}
}

// errInflight refuses a request over the bound.
var errInflight = pipeline.ErrOverloaded.Specialize("too many ingest requests in flight; retry later", pipeline.ReasonOverloaded, time.Second)

// errTooMany is the status of a refused request.
func errTooMany() error {
	return toStatus(errInflight)
}

// acquire takes a slot, or reports false when all are taken.
func (l *inflight) acquire() bool {
	select {
	case l.sem <- struct{}{}:
		return true
	default:
		l.refused.Add(1)
		return false
	}
}

func (l *inflight) release() { <-l.sem }

// saturated reports whether every slot is taken.
func (l *inflight) saturated() bool { return len(l.sem) == cap(l.sem) }

// slotKey holds, in a gRPC stream's context, the release of its slot.
type slotKey struct{}

// tap is the gRPC InTapHandle: it takes a slot for each Ingest call before
// its message is read.
func (l *inflight) tap(ctx context.Context, info *tap.Info) (context.Context, error) {
	if info.FullMethodName != consentryv1.IngestService_Ingest_FullMethodName {
		return ctx, nil
	}
	if !l.acquire() {
		return ctx, status.Convert(errTooMany()).Err()
	}
	return context.WithValue(ctx, slotKey{}, sync.OnceFunc(l.release)), nil
}

// statsHandler releases a call's slot when the call ends, whatever its
// outcome (including messages that fail to decode, which never reach an
// interceptor).
type statsHandler struct{}

func (statsHandler) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (statsHandler) HandleRPC(ctx context.Context, s stats.RPCStats) {
	if _, ok := s.(*stats.End); ok {
		if release, ok := ctx.Value(slotKey{}).(func()); ok {
			release()
		}
	}
}
func (statsHandler) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (statsHandler) HandleConn(context.Context, stats.ConnStats)                       {}

// wrap bounds an HTTP handler.
func (l *inflight) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !l.acquire() {
			code, msg, reason, delay := grpcerr.Details(errTooMany())
			grpcerr.WriteHTTP(w, grpcerr.HTTPStatus(code), code, reason, msg, delay)
			return
		}
		defer l.release()
		next.ServeHTTP(w, r)
	})
}
