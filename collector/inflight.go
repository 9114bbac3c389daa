package collector

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/consentry/consentry/collector/limits"
	"github.com/consentry/consentry/collector/metrics"
	"github.com/consentry/consentry/collector/validate"
	"github.com/consentry/consentry/pipeline"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// edge bounds what a client, before it proves anything, can cost the
// collector, in three phases:
//
//   - connecting: each ingest listener admits limits.EdgeConfig's
//     MaxConnections, and MaxConnectionsPerAddress from one address;
//     headers must arrive within HeaderTimeout, idle connections close
//     after IdleTimeout;
//   - receiving: what requests being received hold (the bytes that have
//     arrived, what is being inflated) is bounded per transport, by a
//     receiver each (gRPC's counts what its connections read, see
//     limits.ListenerConfig.Budget; HTTP's the buffers bodies are read
//     into), requests being received per address too, and a request
//     must arrive at MinReceiveRate after ReceiveGrace or be cut off; a
//     slow sender holds what it sent, and nothing the other transport,
//     or processing, needs;
//   - processing: a received request is scanned (limits.Scanner) without
//     being decoded, refused if over the batch limits, and charged its
//     wire bytes plus its decoded estimate in the in-flight byte budget,
//     shared by gRPC and HTTP, until its call ends; only then is it
//     decoded.
type edge struct {
	cfg        limits.EdgeConfig
	maxMessage int64
	scanner    *limits.Scanner
	inflight   *limits.Budget
	// grpc and http bound the requests being received: gRPC's by the
	// bytes their connections read since they began (the listener
	// reserves them) and what the edge inflates; HTTP's by the buffers
	// their bodies are read into.
	grpc, http *receiver
	// grpcLis and httpLis are the ingest listeners.
	grpcLis, httpLis *limits.Listener
	// gzipMarker starts what gzipPassthrough hands the codec: a
	// compressed message, still to be inflated.
	gzipMarker []byte
	// httpTooSlow counts HTTP bodies cut off for the minimum rate.
	httpTooSlow atomic.Uint64
	// lastBusy is what overloaded saw last.
	lastBusy atomic.Uint64
}

// edgeParts is what newEdge wires together.
type edgeParts struct {
	cfg limits.EdgeConfig
	lim limits.Config
	// grpcReceiving is the budget the gRPC listener charges its
	// connections' reads to.
	grpcReceiving    *limits.Budget
	grpcLis, httpLis *limits.Listener
}

// newEdge returns the edge for p, with requests of at most
// p.lim.MaxMessageBytes and batches within p.lim.
func newEdge(p edgeParts) (*edge, error) {
	cfg := p.cfg.WithDefaults()
	lim := p.lim
	lim.MaxMessageBytes = cmp.Or(lim.MaxMessageBytes, limits.DefaultConfig().MaxMessageBytes)
	sc, err := limits.NewScanner(lim)
	if err != nil {
		return nil, err
	}
	if p.grpcReceiving == nil {
		p.grpcReceiving = limits.NewBudget(cfg.MaxReceivingBytes)
	}
	marker := make([]byte, 16)
	if _, err := rand.Read(marker); err != nil {
		return nil, fmt.Errorf("edge: %w", err)
	}
	return &edge{
		cfg:        cfg,
		maxMessage: int64(lim.MaxMessageBytes),
		scanner:    sc,
		inflight:   limits.NewBudget(cfg.MaxInflightBytes),
		grpc:       &receiver{budget: p.grpcReceiving, perAddrMax: cfg.MaxReceivingPerAddress, perAddr: make(map[netip.Addr]int)},
		http:       &receiver{budget: limits.NewBudget(cfg.MaxReceivingBytes), perAddrMax: cfg.MaxReceivingPerAddress, perAddr: make(map[netip.Addr]int)},
		grpcLis:    p.grpcLis,
		httpLis:    p.httpLis,
		gzipMarker: marker,
	}, nil
}

// The edge's refusals.
var (
	// errInflight: the in-flight budget is busy with other requests.
	errInflight = pipeline.ErrOverloaded.Specialize("in-flight byte budget busy; retry later", pipeline.ReasonOverloaded, time.Second)
	// errCostTooLarge: the request alone would cost more than the budget.
	errCostTooLarge = pipeline.ErrBatchTooLarge.Specialize("request would cost more than the in-flight byte budget (--max-inflight-bytes) decoded", pipeline.ReasonBatchTooLarge, 0)
	// errReceiving: the transport's receive bound is full.
	errReceiving = pipeline.ErrOverloaded.Specialize("too many request bytes being received; retry later", pipeline.ReasonOverloaded, time.Second)
	// errAddressBusy: the client's address has as many requests being
	// received as it may.
	errAddressBusy = pipeline.ErrOverloaded.Specialize("too many requests from this address being received; retry later", pipeline.ReasonOverloaded, time.Second)
	// errTooSlow: the body arrived slower than the minimum rate.
	errTooSlow = pipeline.Refuse(codes.DeadlineExceeded, consentryv1.ErrorReason_RECEIVE_TOO_SLOW, pipeline.ReasonOverloaded, time.Second,
		"request body arrived slower than the minimum receive rate")
	// errBodyTooLarge is a request, or its decompression, beyond the
	// message size limit.
	errBodyTooLarge = pipeline.ErrBatchTooLarge.Specialize("request exceeds the message size limit", pipeline.ReasonBatchTooLarge, 0)
)

// admitted is a request that passed the edge: decoded, and charged to the
// in-flight budget until release, which also returns its messages to
// their pools: req must not be used after release.
type admitted struct {
	req     *consentryv1.IngestRequest
	release func()
}

// admit scans body, a request in format f, charges its cost to the
// in-flight budget and decodes it. On error, cost says what was counted
// (the claimed app, the events so far).
func (e *edge) admit(body []byte, f limits.Format) (_ admitted, cost limits.Cost, err error) {
	cost, err = e.scanner.Scan(body, f)
	if err != nil {
		return admitted{}, cost, err
	}
	charge := cost.Charge()
	if charge > e.inflight.Limit() {
		return admitted{}, cost, fmt.Errorf("%w: %d bytes, %d events", errCostTooLarge, charge, cost.Events)
	}
	if !e.inflight.TryAcquire(charge) {
		return admitted{}, cost, errInflight
	}
	// The request's messages come from vtproto's pools and go back to
	// them at release, when the call has ended: nothing may keep the
	// request, its messages or its byte slices (event and session ids)
	// beyond the call. Strings are the stages' to keep: decoding copies
	// them out of body.
	req := consentryv1.IngestRequestFromVTPool()
	release := sync.OnceFunc(func() {
		req.Recycle()
		e.inflight.Release(charge)
	})
	// Unknown fields are skipped, so newer SDKs work with older
	// collectors; strings that are not UTF-8 cost their event, not the
	// batch.
	if f == limits.FormatJSON {
		err = validate.UnmarshalRequestJSON(body, req)
	} else {
		err = validate.UnmarshalScannedRequest(body, req, cost.UTF8)
	}
	if err != nil {
		release()
		return admitted{}, cost, errMalformed
	}
	return admitted{req: req, release: release}, cost, nil
}

// ingest admits body and runs it through svc; start is when its receipt
// began.
func (e *edge) ingest(ctx context.Context, svc *Service, body []byte, f limits.Format, start time.Time) (*consentryv1.IngestResponse, error) {
	a, cost, err := e.admit(body, f)
	if err != nil {
		svc.cfg.Metrics.Received(cost.Events)
		svc.cfg.Metrics.Ingested(time.Since(start), false)
		svc.refuseCounted(cost.AppID, cost.Events, err)
		return nil, toStatus(err)
	}
	defer a.release()
	return svc.ingest(ctx, a.req, start)
}

// receiver bounds the requests of one kind being received: their bytes
// (a budget) and how many come from one address.
type receiver struct {
	budget     *limits.Budget
	perAddrMax int

	mu      sync.Mutex
	perAddr map[netip.Addr]int
	// busy counts requests refused because the budget was full; perAddr
	// refusals are counted apart, as they say nothing about capacity.
	busy, addrBusy atomic.Uint64
}

// receipt is one request being received.
type receipt struct {
	r    *receiver
	addr netip.Addr
	held int64
	once sync.Once
}

// begin starts receiving a request from addr, charging n bytes; it is
// refused while the budget is full.
func (r *receiver) begin(addr netip.Addr, n int64) (*receipt, error) {
	r.mu.Lock()
	if r.perAddr[addr] >= r.perAddrMax {
		r.mu.Unlock()
		r.addrBusy.Add(1)
		return nil, errAddressBusy
	}
	r.perAddr[addr]++
	r.mu.Unlock()
	rc := &receipt{r: r, addr: addr}
	if r.budget.Full() {
		r.busy.Add(1)
		rc.end()
		return nil, errReceiving
	}
	if !rc.grow(n) {
		rc.end()
		return nil, errReceiving
	}
	return rc, nil
}

// grow charges n more bytes, and reports whether they fit.
func (rc *receipt) grow(n int64) bool {
	if n == 0 {
		return true
	}
	if !rc.r.budget.TryAcquire(n) {
		rc.r.busy.Add(1)
		return false
	}
	rc.held += n
	return true
}

// shrink gives n bytes back.
func (rc *receipt) shrink(n int64) {
	rc.r.budget.Release(n)
	rc.held -= n
}

// end gives everything back; later calls do nothing.
func (rc *receipt) end() {
	rc.once.Do(func() {
		rc.r.budget.Release(rc.held)
		rc.held = 0
		rc.r.mu.Lock()
		defer rc.r.mu.Unlock()
		if rc.r.perAddr[rc.addr]--; rc.r.perAddr[rc.addr] <= 0 {
			delete(rc.r.perAddr, rc.addr)
		}
	})
}

// beginGRPC starts receiving a gRPC message: it is refused while gRPC's
// receive budget is full or its address has as many being received as it
// may; until endWire, its connection must keep up the minimum rate and
// the bytes it reads are charged (by the listener); until the receipt
// ends, it counts for its address.
func (e *edge) beginGRPC(ctx context.Context) (rc *receipt, endWire func(), err error) {
	var remote netip.Addr
	var conn *limits.Conn
	if p, ok := peer.FromContext(ctx); ok {
		remote = limits.AddrOf(p.Addr)
		if e.grpcLis != nil {
			conn = e.grpcLis.Lookup(p.Addr)
		}
	}
	if rc, err = e.grpc.begin(remote, 0); err != nil {
		return nil, nil, err
	}
	if conn == nil {
		return rc, func() {}, nil
	}
	recv := conn.BeginReceive()
	if recv == nil {
		e.grpc.busy.Add(1)
		rc.end()
		return nil, nil, errReceiving
	}
	return rc, sync.OnceFunc(func() { conn.EndReceive(recv) }), nil
}

// wireMessage is what the gRPC ingest handler has the codec fill in: the
// message's bytes, not decoded, and whether they are still compressed
// (see codec.Unmarshal).
type wireMessage struct {
	b          []byte
	compressed bool
	// free, if set, gives b back to gRPC's buffer pool: b must not be
	// used after it.
	free func()
}

// release frees w's bytes, if they are pooled.
func (w *wireMessage) release() {
	if w.free != nil {
		w.free()
		w.free, w.b = nil, nil
	}
}

// grpcIngestHandler is the gRPC handler of IngestService.Ingest: it
// receives the message as bytes within gRPC's receive bounds, inflates
// it if compressed (charged as it grows, within the message size and the
// decompression ratio), then admits it like an HTTP body.
func (e *edge) grpcIngestHandler(svc *Service) grpc.MethodHandler {
	return func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
		start := time.Now()
		rc, endWire, err := e.beginGRPC(ctx)
		if err != nil {
			return nil, toStatus(err)
		}
		defer rc.end()
		var w wireMessage
		err = dec(&w)
		endWire()
		// Decoding copies what it keeps out of the message's bytes, so
		// they go back to the pool when the call returns.
		defer w.release()
		if err != nil {
			return nil, e.recvError(svc, err, start)
		}
		body := w.b
		if w.compressed {
			n := int64(len(body))
			body, err = e.readAll(gzipReader(bytes.NewReader(body)), rc, true, func() int64 { return n })
			w.release()
			if err != nil {
				if !errors.Is(err, errReceiving) && !errors.Is(err, errBodyTooLarge) && !errors.Is(err, errDecompressionRatio) {
					err = errMalformed
				}
				return nil, e.refuseUndecoded(svc, err, start)
			}
		}
		rc.end()
		return e.ingest(ctx, svc, body, limits.FormatProto, start)
	}
}

// refuseUndecoded counts a request refused before anything of it was
// read but its size, and returns its status; refusals for capacity are
// only counted by the edge's metrics.
func (e *edge) refuseUndecoded(svc *Service, err error, start time.Time) error {
	if c := classify(err); c.Reason == consentryv1.ErrorReason_BATCH_TOO_LARGE || c.Reason == consentryv1.ErrorReason_BATCH_MALFORMED {
		svc.cfg.Metrics.Ingested(time.Since(start), false)
		svc.refuseCounted("", 0, err)
	}
	return toStatus(err)
}

// gzipReader returns a reader inflating r, or one that fails with r's
// header error.
func gzipReader(r io.Reader) io.Reader {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return errReader{err}
	}
	return zr
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// errDecompressionRatio is a gzip message that inflates more than the
// decompression ratio allows.
var errDecompressionRatio = pipeline.ErrBatchTooLarge.Specialize("request decompresses to more than the allowed ratio of its compressed size", pipeline.ReasonBatchTooLarge, 0)

// ratioSlack is how much a gzip message may inflate beyond the ratio, so
// that tiny messages are not refused for their headers.
const ratioSlack = 8 << 10

// firstChunk is the first buffer a body is read into; it doubles from
// there.
const firstChunk = 32 << 10

// readAll reads src into a buffer charged to rc as it grows, up to
// MaxMessageBytes; if inflating (src is a gzip reader), also up to
// MaxDecompressionRatio times compressed(), the compressed bytes read so
// far. Errors are errBodyTooLarge, errDecompressionRatio, errReceiving
// (no room to grow), or src's.
func (e *edge) readAll(src io.Reader, rc *receipt, inflating bool, compressed func() int64) ([]byte, error) {
	if inflating && !rc.grow(gzipStateBytes) {
		return nil, errReceiving
	}
	var body []byte
	for {
		if len(body) == cap(body) {
			n := min(int64(max(2*cap(body), firstChunk)), e.maxMessage+1)
			if int64(cap(body)) >= n {
				return nil, fmt.Errorf("%w: more than %d bytes", errBodyTooLarge, e.maxMessage)
			}
			if !rc.grow(n) {
				return nil, errReceiving
			}
			grown := make([]byte, len(body), n)
			copy(grown, body)
			rc.shrink(int64(cap(body)))
			body = grown
		}
		n, err := src.Read(body[len(body):cap(body)])
		body = body[:len(body)+n]
		if int64(len(body)) > e.maxMessage {
			return nil, fmt.Errorf("%w: more than %d bytes", errBodyTooLarge, e.maxMessage)
		}
		if inflating && int64(len(body)) > int64(e.cfg.MaxDecompressionRatio)*compressed()+ratioSlack {
			return nil, fmt.Errorf("%w: %d bytes from %d, at most %d times", errDecompressionRatio, len(body), compressed(), e.cfg.MaxDecompressionRatio)
		}
		if err == io.EOF {
			return body, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// gzipStateBytes is what a gzip reader holds (its window and buffers),
// charged while it inflates.
const gzipStateBytes = 64 << 10

// gzipPassthrough is the gRPC server's decompressor for "gzip": it hands
// the compressed bytes on, behind a marker only this process knows, so
// that the edge inflates them within its bounds (readAll) instead of
// gRPC inflating them, uncounted, before the collector sees them.
type gzipPassthrough struct{ marker []byte }

// Type returns "gzip".
func (gzipPassthrough) Type() string { return "gzip" }

// Do returns the marker and the compressed bytes.
func (d gzipPassthrough) Do(r io.Reader) ([]byte, error) {
	b := bytes.NewBuffer(append([]byte(nil), d.marker...))
	if _, err := b.ReadFrom(r); err != nil {
		return nil, fmt.Errorf("read compressed message: %w", err)
	}
	return b.Bytes(), nil
}

// recvError maps what gRPC reports for a message it could not receive:
// over the size limit (before or after decompressing) is BATCH_TOO_LARGE,
// a compressed message that does not decompress is malformed;
// cancellations and deadlines stay what they are.
func (e *edge) recvError(svc *Service, err error, start time.Time) error {
	var refusal error
	switch status.Code(err) {
	case codes.ResourceExhausted:
		refusal = errBodyTooLarge
	case codes.Internal, codes.Unimplemented, codes.InvalidArgument:
		refusal = errMalformed
	default:
		return err
	}
	svc.cfg.Metrics.Ingested(time.Since(start), false)
	svc.refuseCounted("", 0, refusal)
	return toStatus(refusal)
}

// guardUnary bounds receiving a unary method's request like an ingest
// request's.
func (e *edge) guardUnary(h grpc.MethodHandler) grpc.MethodHandler {
	return func(srv any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
		rc, endWire, err := e.beginGRPC(ctx)
		if err != nil {
			return nil, toStatus(err)
		}
		defer rc.end()
		defer endWire()
		return h(srv, ctx, func(v any) error {
			defer rc.end()
			defer endWire()
			return dec(v)
		}, ic)
	}
}

// guardStream bounds receiving each message of a stream the same way.
func (e *edge) guardStream(h grpc.StreamHandler) grpc.StreamHandler {
	return func(srv any, ss grpc.ServerStream) error {
		return h(srv, &guardedStream{ServerStream: ss, e: e})
	}
}

// guardedStream receives each message within gRPC's receive bounds.
type guardedStream struct {
	grpc.ServerStream
	e *edge
}

func (s *guardedStream) RecvMsg(m any) error {
	rc, endWire, err := s.e.beginGRPC(s.Context())
	if err != nil {
		return toStatus(err)
	}
	defer rc.end()
	defer endWire()
	return s.ServerStream.RecvMsg(m)
}

// registrar registers services on a gRPC server with every method's
// receipt bounded, and IngestService.Ingest served by the edge.
type registrar struct {
	srv    *grpc.Server
	e      *edge
	ingest *Service
}

// RegisterService registers a copy of desc whose handlers are guarded.
func (r registrar) RegisterService(desc *grpc.ServiceDesc, impl any) {
	d := *desc
	d.Methods = append([]grpc.MethodDesc(nil), desc.Methods...)
	d.Streams = append([]grpc.StreamDesc(nil), desc.Streams...)
	for i, m := range d.Methods {
		if d.ServiceName+"/"+m.MethodName == consentryv1.IngestService_Ingest_FullMethodName[1:] {
			d.Methods[i].Handler = r.e.grpcIngestHandler(r.ingest)
			continue
		}
		d.Methods[i].Handler = r.e.guardUnary(m.Handler)
	}
	for i, s := range d.Streams {
		d.Streams[i].Handler = r.e.guardStream(s.Handler)
	}
	r.srv.RegisterService(&d, impl)
}

// GetServiceInfo returns the server's services (for reflection).
func (r registrar) GetServiceInfo() map[string]grpc.ServiceInfo { return r.srv.GetServiceInfo() }

// overloaded is the readiness check "overload": gRPC ingest is being
// refused for capacity (the in-flight budget, or gRPC's receive bound,
// refused requests since the last check and is still busy). HTTP's
// receive bound and per-address refusals do not count: they do not stop
// gRPC ingest, which health describes (docs/operations.md).
func (e *edge) overloaded(time.Time) error {
	n := e.inflight.Refused() + e.grpc.busy.Load()
	d := n - e.lastBusy.Swap(n)
	if d > 0 && (e.inflight.Busy(e.maxMessage) || e.grpc.budget.Full()) {
		return fmt.Errorf("%d requests refused since the last check: the in-flight byte budget (--max-inflight-bytes) or gRPC's receive bound (--max-receiving-bytes) is full", d)
	}
	return nil
}

// register exposes the edge's metrics.
func (e *edge) register(m *metrics.Metrics) {
	m.Gauge("ingest_inflight_bytes", "Bytes of the in-flight budget (--max-inflight-bytes) charged now: admitted ingest requests, their wire bytes and decoded estimate.",
		func() float64 { return float64(e.inflight.InUse()) })
	m.Gauge("ingest_receiving_bytes", "Bytes charged now for requests being received (--max-receiving-bytes), both transports: what their connections read and what is being inflated.",
		func() float64 { return float64(e.grpc.budget.InUse() + e.http.budget.InUse()) })
	m.Counter("ingest_requests_refused_inflight_total", "Ingest requests refused (RESOURCE_EXHAUSTED, OVERLOADED) because the in-flight byte budget (--max-inflight-bytes) was busy.",
		func() float64 { return float64(e.inflight.Refused()) })
	m.Counter("ingest_requests_refused_receiving_total", "Requests refused (RESOURCE_EXHAUSTED, OVERLOADED) before they were read: their transport's receive bound (--max-receiving-bytes) was full, or their address had as many being received as it may.",
		func() float64 {
			var n uint64
			for _, r := range []*receiver{e.grpc, e.http} {
				n += r.busy.Load() + r.addrBusy.Load()
			}
			return float64(n)
		})
	m.Counter("ingest_receive_too_slow_total", "HTTP bodies, and gRPC connections with a message being received, cut off for arriving slower than --min-receive-rate.",
		func() float64 { return float64(e.httpTooSlow.Load() + e.grpcLis.TooSlow()) })
	m.Counter("ingest_connections_cut_receiving_total", "gRPC connections closed because what they were receiving could not grow within the receive bound (--max-receiving-bytes).",
		func() float64 { return float64(e.grpcLis.Cut()) })
	m.Counter("connections_refused_total", "Connections to the gRPC and HTTP ingest ports closed as they were accepted: over --max-connections, or --max-connections-per-address from one address.",
		func() float64 { return float64(e.grpcLis.Refused() + e.httpLis.Refused()) })
	m.Gauge("connections_open", "Open connections to the gRPC and HTTP ingest ports.",
		func() float64 { return float64(e.grpcLis.Open() + e.httpLis.Open()) })
}
