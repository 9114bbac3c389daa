package collector

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/consentry/consentry/collector/metrics"
	"github.com/consentry/consentry/internal/every"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// DefaultHealthInterval is how often readiness is re-evaluated.
const DefaultHealthInterval = time.Second

// Paths of the liveness and readiness probes on the admin port.
const (
	PathLivez  = "/livez"
	PathReadyz = "/readyz"
)

// readinessCheck is one condition ingest needs: check returns nil while it
// holds, else why ingest would be refused (a short phrase without
// payloads).
type readinessCheck struct {
	name  string
	check func(now time.Time) error
}

// readiness tells the truth about whether the collector would accept an
// ingest batch now: gRPC health of the IngestService (and the server as a
// whole, ""), GET /readyz on the admin port, and the consentry_ready
// gauge all follow the same checks, re-evaluated every interval and on
// demand. The ConsentService's health follows its own checks (revoke
// needs ClickHouse). A check that fails turns them NOT_SERVING / 503 with
// the reason, and back once it holds again.
type readiness struct {
	log      *zap.Logger
	health   *health.Server
	now      func() time.Time
	interval time.Duration

	mu      sync.Mutex // serializes evaluations
	ingest  []readinessCheck
	consent []readinessCheck

	state    atomic.Pointer[readyState]
	stopping atomic.Bool
	loops    loops
}

// readyState is the outcome of one evaluation.
type readyState struct {
	at            time.Time
	ingestReady   bool
	consentReady  bool
	ingestReasons []string // "name: reason", in check order
}

func newReadiness(log *zap.Logger, hs *health.Server, interval time.Duration) *readiness {
	if interval <= 0 {
		interval = DefaultHealthInterval
	}
	r := &readiness{log: log, health: hs, now: time.Now, interval: interval, loops: loops{log: log}}
	r.state.Store(&readyState{ingestReady: true, consentReady: true})
	return r
}

// addIngest adds a check that ingest needs.
func (r *readiness) addIngest(name string, check func(time.Time) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ingest = append(r.ingest, readinessCheck{name, check})
}

// addConsent adds a check that the ConsentService needs.
func (r *readiness) addConsent(name string, check func(time.Time) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.consent = append(r.consent, readinessCheck{name, check})
}

// start evaluates now and then every interval until stop.
func (r *readiness) start() {
	r.evaluate()
	r.loops.goLoop("readiness", func(ctx context.Context) error {
		every.Tick(ctx, r.interval, false, func(context.Context) { r.evaluate() })
		return nil
	})
}

// stop stops re-evaluating.
func (r *readiness) stop() { r.loops.stop() }

// shuttingDown makes every later evaluation not ready, and applies it.
func (r *readiness) shuttingDown() {
	r.stopping.Store(true)
	r.evaluate()
}

// evaluate runs the checks and updates health and the state.
func (r *readiness) evaluate() *readyState {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	st := &readyState{at: now, ingestReady: true, consentReady: true}
	if r.stopping.Load() {
		st.ingestReady, st.consentReady = false, false
		st.ingestReasons = []string{"shutting down"}
	} else {
		for _, c := range r.ingest {
			if err := c.check(now); err != nil {
				st.ingestReady = false
				st.ingestReasons = append(st.ingestReasons, c.name+": "+err.Error())
			}
		}
		for _, c := range r.consent {
			if err := c.check(now); err != nil {
				st.consentReady = false
			}
		}
	}
	old := r.state.Swap(st)
	if old.ingestReady != st.ingestReady {
		if st.ingestReady {
			r.log.Info("ready for ingest again")
		} else {
			r.log.Warn("not ready for ingest", zap.Strings("reasons", st.ingestReasons))
		}
	}
	r.apply(st)
	return st
}

// apply sets the gRPC health statuses.
func (r *readiness) apply(st *readyState) {
	if r.health == nil {
		return
	}
	status := func(ok bool) healthpb.HealthCheckResponse_ServingStatus {
		if ok {
			return healthpb.HealthCheckResponse_SERVING
		}
		return healthpb.HealthCheckResponse_NOT_SERVING
	}
	r.health.SetServingStatus("", status(st.ingestReady))
	r.health.SetServingStatus(consentryv1.IngestService_ServiceDesc.ServiceName, status(st.ingestReady))
	r.health.SetServingStatus(consentryv1.ConsentService_ServiceDesc.ServiceName, status(st.consentReady))
}

// ready reports the last evaluation.
func (r *readiness) ready() *readyState { return r.state.Load() }

// register exposes the consentry_ready gauge.
func (r *readiness) register(m *metrics.Metrics) {
	m.Gauge("ready", "1 while the collector would accept ingest (gRPC health SERVING, /readyz 200), 0 while it would refuse it; /readyz says why.",
		func() float64 {
			if r.ready().ingestReady {
				return 1
			}
			return 0
		})
}

// livez answers the liveness probe: 200 while the process serves HTTP at
// all. A collector that cannot recover (its managed ClickHouse failed for
// good) exits instead of reporting unhealthy, so the supervisor restarts
// it.
func (r *readiness) livez(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprintln(w, "ok")
}

// readyz answers the readiness probe from a fresh evaluation: 200 "ready",
// or 503 with one reason per line.
func (r *readiness) readyz(w http.ResponseWriter, _ *http.Request) {
	st := r.evaluate()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if st.ingestReady {
		fmt.Fprintln(w, "ready")
		return
	}
	w.WriteHeader(http.StatusServiceUnavailable)
	fmt.Fprintf(w, "not ready\n%s\n", strings.Join(st.ingestReasons, "\n"))
}
