package collector

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

func TestReadinessFollowsChecks(t *testing.T) {
	hs := health.NewServer()
	r := newReadiness(zap.NewNop(), hs, time.Hour)
	var sinkErr, storeErr atomic.Pointer[error]
	check := func(p *atomic.Pointer[error]) func(time.Time) error {
		return func(time.Time) error {
			if e := p.Load(); e != nil {
				return *e
			}
			return nil
		}
	}
	r.addIngest("sink", check(&sinkErr))
	r.addConsent("clickhouse", check(&storeErr))
	status := func(svc string) healthpb.HealthCheckResponse_ServingStatus {
		resp, err := hs.Check(context.Background(), &healthpb.HealthCheckRequest{Service: svc})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetStatus()
	}
	readyz := func() (int, string) {
		w := httptest.NewRecorder()
		r.readyz(w, httptest.NewRequest(http.MethodGet, PathReadyz, nil))
		return w.Code, w.Body.String()
	}
	ingest, cons := consentryv1.IngestService_ServiceDesc.ServiceName, consentryv1.ConsentService_ServiceDesc.ServiceName
	const serving, notServing = healthpb.HealthCheckResponse_SERVING, healthpb.HealthCheckResponse_NOT_SERVING

	r.start()
	defer r.stop()
	if status(ingest) != serving || status("") != serving || status(cons) != serving {
		t.Fatal("not serving with every check passing")
	}
	if code, body := readyz(); code != 200 || body != "ready\n" {
		t.Fatalf("readyz = %d %q", code, body)
	}

	e := errors.New("spool full: 10 bytes")
	sinkErr.Store(&e)
	if code, body := readyz(); code != 503 || !strings.Contains(body, "sink: spool full: 10 bytes") {
		t.Fatalf("readyz = %d %q", code, body)
	}
	if status(ingest) != notServing || status("") != notServing || status(cons) != serving {
		t.Fatal("ingest still serving, or consent not serving, with the sink full")
	}
	sinkErr.Store(nil)
	r.evaluate()
	if status(ingest) != serving {
		t.Fatal("ingest not serving once the sink has room")
	}

	down := errors.New("down")
	storeErr.Store(&down)
	r.evaluate()
	if status(cons) != notServing || status(ingest) != serving {
		t.Fatal("the consent service's health does not follow its own checks")
	}
	storeErr.Store(nil)

	r.shuttingDown()
	if code, body := readyz(); code != 503 || !strings.Contains(body, "shutting down") {
		t.Fatalf("readyz while shutting down = %d %q", code, body)
	}
	if status(ingest) != notServing || status(cons) != notServing {
		t.Fatal("serving while shutting down")
	}
}
