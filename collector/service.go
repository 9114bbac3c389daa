package collector

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc/peer"

	"github.com/consentry/consentry/collector/metrics"
	"github.com/consentry/consentry/pipeline"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// Log field keys. Logs never hold payloads, tokens, addresses or
// identifiers: only app ids, counts, reasons and durations.
const (
	logKeyApp      = "app_id"
	logKeyEvents   = "events"
	logKeyAccepted = "accepted"
	logKeyDropped  = "dropped"
	logKeyReason   = "reason"
	logKeyCode     = "code"
)

// maxEventDrops bounds IngestResponse.event_drops.
const maxEventDrops = 100

// ServiceConfig wires the ingest service.
type ServiceConfig struct {
	// Stages run in order on every batch: limits, consent, validate,
	// anonymize. Required.
	Stages []pipeline.Stage
	// Sink stores the anonymized rows. Required.
	Sink pipeline.Sink
	// Rejects counts dropped and refused events. Required.
	Rejects pipeline.RejectCounter
	// MaxDeadline caps the time one request may take. Default 30s.
	MaxDeadline time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Metrics counts events and times requests; nil records nothing.
	Metrics *metrics.Metrics
	// Logger logs; nil means no logging.
	Logger *zap.Logger
}

// Service implements consentryv1.IngestServiceServer over the pipeline.
type Service struct {
	consentryv1.UnimplementedIngestServiceServer
	cfg ServiceConfig
	log *zap.Logger
	// batches recycles batches (*pipeline.Batch) with their slices: a
	// sink's Write that succeeded keeps nothing of the rows it was given,
	// and nothing else keeps a batch once Ingest returns, so its rows,
	// their arena, event times and drop reasons can serve the next
	// request (see pipeline.Sink). A batch whose Write failed is left to
	// the garbage collector.
	batches sync.Pool
}

// NewService returns the ingest service for cfg.
func NewService(cfg ServiceConfig) (*Service, error) {
	if len(cfg.Stages) == 0 || cfg.Sink == nil || cfg.Rejects == nil {
		return nil, errors.New("new ingest service: stages, sink and rejects are required")
	}
	if cfg.MaxDeadline == 0 {
		cfg.MaxDeadline = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	return &Service{cfg: cfg, log: cfg.Logger}, nil
}

// Ingest runs req through the pipeline and returns once every accepted
// event is durable.
func (s *Service) Ingest(ctx context.Context, req *consentryv1.IngestRequest) (*consentryv1.IngestResponse, error) {
	return s.ingest(ctx, req, time.Now())
}

// ingest is Ingest for a request received at start: the edge passes when
// it began receiving the request, so the latency metric counts reading,
// scanning and decoding it too.
func (s *Service) ingest(ctx context.Context, req *consentryv1.IngestRequest, start time.Time) (_ *consentryv1.IngestResponse, err error) {
	s.cfg.Metrics.Received(len(req.GetEvents()))
	defer func() { s.cfg.Metrics.Ingested(time.Since(start), err == nil) }()
	ctx, cancel := context.WithTimeout(ctx, s.cfg.MaxDeadline)
	defer cancel()
	if malformed(req) {
		s.refuse(req, errMalformed)
		return nil, toStatus(errMalformed)
	}
	b, _ := s.batches.Get().(*pipeline.Batch)
	if b == nil {
		b = new(pipeline.Batch)
	}
	b.Reuse(req, s.cfg.Now(), peerAddr(ctx))
	reuse := true
	defer func() {
		if reuse {
			b.Reuse(nil, time.Time{}, netip.Addr{})
			s.batches.Put(b)
		}
	}()
	for _, st := range s.cfg.Stages {
		if err := st.Process(ctx, b); err != nil {
			s.refuse(req, err)
			return nil, toStatus(err)
		}
	}
	if b.Rows.Len() > 0 {
		if err := s.cfg.Sink.Write(ctx, &b.Rows, b.Origin()); err != nil {
			// The sink may still use the rows (see pipeline.Sink): the
			// batch is not reused.
			reuse = false
			s.refuse(req, err)
			return nil, toStatus(err)
		}
	}
	resp := s.response(b)
	s.countDrops(b, resp)
	if ce := s.log.Check(zap.DebugLevel, "batch ingested"); ce != nil {
		ce.Write(zap.String(logKeyApp, rejectApp(b)), zap.Int(logKeyEvents, len(req.GetEvents())),
			zap.Uint32(logKeyAccepted, resp.GetAccepted()), zap.Uint32(logKeyDropped, resp.GetDropped()))
	}
	return resp, nil
}

// response reports b's outcome.
func (s *Service) response(b *pipeline.Batch) *consentryv1.IngestResponse {
	resp := &consentryv1.IngestResponse{
		Accepted:     uint32(b.Rows.Len()),
		Dropped:      uint32(b.DroppedCount()),
		ConsentState: b.ConsentState,
	}
	if b.DroppedCount() == 0 {
		return resp
	}
	counts := make(map[consentryv1.DropReason]uint32)
	for i := range b.Request.GetEvents() {
		r := b.DropReasonOf(i)
		if r == consentryv1.DropReason_DROP_REASON_UNSPECIFIED {
			continue
		}
		if counts[r] == 0 {
			resp.Drops = append(resp.Drops, &consentryv1.DropCount{Reason: r})
		}
		counts[r]++
		if len(resp.EventDrops) < maxEventDrops {
			resp.EventDrops = append(resp.EventDrops, &consentryv1.EventDrop{Index: uint32(i), Reason: r})
		}
	}
	for _, d := range resp.Drops {
		d.Count = counts[d.Reason]
	}
	return resp
}

// countDrops records the response's drops in the rejects table, and the
// accepted and dropped events in the metrics.
func (s *Service) countDrops(b *pipeline.Batch, resp *consentryv1.IngestResponse) {
	app := rejectApp(b)
	var drops map[string]int
	for _, d := range resp.GetDrops() {
		reason := pipeline.DropReason(d.GetReason())
		s.cfg.Rejects.CountRejects(app, reason, int(d.GetCount()))
		if drops == nil {
			drops = make(map[string]int)
		}
		drops[string(reason)] += int(d.GetCount())
	}
	s.cfg.Metrics.Accepted(int(resp.GetAccepted()), drops)
}

// refuse records a batch refused as a whole.
func (s *Service) refuse(req *consentryv1.IngestRequest, err error) {
	s.refuseCounted(req.GetDevice().GetAppId(), len(req.GetEvents()), err)
}

// refuseCounted records a request of events events, claiming to be from
// app, refused as a whole.
func (s *Service) refuseCounted(app string, events int, err error) {
	c := classify(err)
	app = rejectAppID(app)
	n := events
	if n == 0 {
		n = 1 // count the refused request even when it held no events.
	}
	s.cfg.Rejects.CountRejects(app, c.Counted, n)
	s.cfg.Metrics.Rejected(string(c.Counted), events)
	lvl := zap.InfoLevel
	if c.Counted == pipeline.ReasonStorageUnavailable {
		lvl = zap.WarnLevel
	}
	if ce := s.log.Check(lvl, "batch refused"); ce != nil {
		// err's text names fields and sizes, never values (see toStatus).
		ce.Write(zap.String(logKeyApp, app), zap.Int(logKeyEvents, events),
			zap.String(logKeyCode, c.Code.String()), zap.String(logKeyReason, string(c.Counted)), zap.Error(err))
	}
}

// rejectApp is the app a batch's rejects are counted under: the verified
// app, else the claimed one if well-formed.
func rejectApp(b *pipeline.Batch) string {
	if b.AppID != "" {
		return b.AppID
	}
	return rejectAppID(b.Request.GetDevice().GetAppId())
}

// rejectAppID returns id if it is a well-formed app id, else "_invalid",
// so malformed input cannot write arbitrary text into the rejects table.
func rejectAppID(id string) string {
	if consentryv1.ValidAppID(id) {
		return id
	}
	return "_invalid"
}

// peerAddr returns the client's IP address, if known.
func peerAddr(ctx context.Context) netip.Addr {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return netip.Addr{}
	}
	if tcp, ok := p.Addr.(*net.TCPAddr); ok {
		a, _ := netip.AddrFromSlice(tcp.IP)
		return a.Unmap()
	}
	return netip.Addr{}
}
