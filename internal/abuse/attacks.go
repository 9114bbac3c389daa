package abuse

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"maps"
	"math/big"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// Target is the collector under attack: its gRPC and HTTP ingest ports.
type Target struct {
	GRPC, HTTP string
}

// Attack is one kind of abuse.
type Attack struct {
	// Name says what it does, for the report.
	Name string
	// Run attacks t until ctx ends and counts what its requests got.
	Run func(ctx context.Context, t Target, o *Outcomes)
}

// Outcomes counts what an attack's requests and connections got.
type Outcomes struct {
	mu     sync.Mutex
	counts map[string]int
}

// Add counts one outcome.
func (o *Outcomes) Add(k string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.counts == nil {
		o.counts = make(map[string]int)
	}
	o.counts[k]++
}

// Total returns the outcomes counted.
func (o *Outcomes) Total() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, c := range o.counts {
		n += c
	}
	return n
}

// Kinds returns the distinct outcomes counted, in no particular order.
func (o *Outcomes) Kinds() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Collect(maps.Keys(o.counts))
}

// String lists the outcomes, most frequent first.
func (o *Outcomes) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	keys := make([]string, 0, len(o.counts))
	for k := range o.counts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return o.counts[b] - o.counts[a] })
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s ×%d", k, o.counts[k]))
	}
	return strings.Join(parts, ", ")
}

// Addr returns attacker address i of a block: 127.<block>.x.y, all on
// loopback.
func Addr(block, i int) net.IP {
	return net.IPv4(127, byte(block), byte(i/250), byte(1+i%250))
}

// IngestMethod is the full gRPC method name of IngestService.Ingest.
const IngestMethod = "/consentry.v1.IngestService/Ingest"

// PathIngest and PathGrant are the HTTP endpoints attacked.
const (
	PathIngest = "/v1/ingest"
	PathGrant  = "/v1/consent/grant"
)

// EmptyEvents is issue 13's decode bomb: n empty events, 2 bytes each.
func EmptyEvents(n int) []byte { return bytes.Repeat([]byte{0x22, 0x00}, n) }

// EmptyEventsJSON is the bomb as protojson: 3 bytes an event.
func EmptyEventsJSON(n int) []byte {
	return []byte(`{"events":[` + strings.Repeat("{},", n-1) + `{}]}`)
}

// spread runs n workers, worker i from Addr(block, i), until ctx ends.
func spread(ctx context.Context, n int, f func(ctx context.Context, i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			// Start spread over a second, as independent clients would.
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Duration(i) * time.Second / time.Duration(n)):
			}
			f(ctx, i)
		})
	}
	wg.Wait()
}

// pause waits d or until ctx ends, and reports whether ctx is still live.
func pause(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// GRPCFlood sends frame (compressed with gzip if gzipped) to method from
// senders connections, each from an address of its own, back to back.
func GRPCFlood(name string, senders int, method string, frame func() []byte, gzipped bool) Attack {
	return Attack{Name: name, Run: func(ctx context.Context, t Target, o *Outcomes) {
		spread(ctx, senders, func(ctx context.Context, i int) {
			c := NewGRPCClient(t.GRPC, Addr(1, i))
			defer c.Close()
			for ctx.Err() == nil {
				r := c.Call(ctx, method, frame(), gzipped)
				if ctx.Err() == nil {
					o.Add("gRPC " + r.String())
				}
			}
		})
	}}
}

// HTTPFlood posts body to path from senders connections, back to back.
func HTTPFlood(name string, senders int, path, contentType, encoding string, body func() []byte) Attack {
	return Attack{Name: name, Run: func(ctx context.Context, t Target, o *Outcomes) {
		spread(ctx, senders, func(ctx context.Context, i int) {
			d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: Addr(2, i)}, Timeout: 5 * time.Second}
			c := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
			defer c.CloseIdleConnections()
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+t.HTTP+path, bytes.NewReader(body()))
				req.Header.Set("Content-Type", contentType)
				if encoding != "" {
					req.Header.Set("Content-Encoding", encoding)
				}
				resp, err := c.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						o.Add("HTTP no answer")
						pause(ctx, 100*time.Millisecond)
					}
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				o.Add(fmt.Sprintf("HTTP %d", resp.StatusCode))
			}
		})
	}}
}

// trickle connects from from to addr, writes head, then one byte of rest
// every gap until the server closes the connection or (HTTP) answers,
// then reports which after gap. What an HTTP/2 (gRPC) server sends
// unasked, its settings, is read and ignored.
func trickle(ctx context.Context, addr string, from net.IP, head, rest []byte, gap time.Duration, o *Outcomes, label string) {
	http2 := label == "gRPC"
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: from}, Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		if ctx.Err() == nil {
			o.Add(label + " not accepted")
			pause(ctx, gap)
		}
		return
	}
	defer c.Close()
	start := time.Now()
	answered := make(chan string, 1)
	go func() {
		b := make([]byte, 64)
		for {
			n, err := c.Read(b)
			switch {
			case n > 0 && http2:
				continue
			case n > 0 && bytes.HasPrefix(b, []byte("HTTP/1.1 ")):
				answered <- "answered " + string(b[9:12])
			case n > 0:
				answered <- "answered"
			default:
				_ = err
				answered <- "closed"
			}
			return
		}
	}()
	if _, err := c.Write(head); err != nil {
		return
	}
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			o.Add(label + " held until the attack ended")
			return
		case a := <-answered:
			o.Add(fmt.Sprintf("%s %s after %ds", label, a, int(time.Since(start).Seconds())))
			pause(ctx, gap)
			return
		case <-time.After(gap):
			if len(rest) > 0 {
				if _, err := c.Write(rest[i%len(rest) : i%len(rest)+1]); err != nil {
					o.Add(label + " closed")
					pause(ctx, gap)
					return
				}
			}
		}
	}
}

// SlowHeaders opens conns connections to each port and sends headers (the
// HTTP request line and headers; gRPC's HTTP/2 preface) a byte every gap,
// connecting again when cut off.
func SlowHeaders(conns int, gap time.Duration) Attack {
	httpHead := []byte("POST " + PathIngest + " HTTP/1.1\r\nHost: collector\r\nContent-Type: application/x-protobuf\r\nX-Slow: ")
	preface := []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
	return Attack{Name: fmt.Sprintf("slow headers: %d connections per port, a byte every %v", conns, gap), Run: func(ctx context.Context, t Target, o *Outcomes) {
		spread(ctx, 2*conns, func(ctx context.Context, i int) {
			for ctx.Err() == nil {
				if i%2 == 0 {
					trickle(ctx, t.HTTP, Addr(3, i), httpHead[:10], append(httpHead[10:], bytes.Repeat([]byte("x"), 1000)...), gap, o, "HTTP")
				} else {
					trickle(ctx, t.GRPC, Addr(3, i), preface[:1], preface[1:], gap, o, "gRPC")
				}
			}
		})
	}}
}

// SlowBodies is issue 13's slow-body attack: conns HTTP connections post
// Content-Length: 1000000 to the ingest endpoint a byte every gap; and
// conns gRPC connections each start an Ingest call declaring a 1 MB
// message and send it a byte every gap (SlowGRPC).
func SlowBodies(conns int, gap time.Duration) Attack {
	head := []byte("POST " + PathIngest + " HTTP/1.1\r\nHost: collector\r\nContent-Type: application/x-protobuf\r\nContent-Length: 1000000\r\n\r\n")
	return Attack{Name: fmt.Sprintf("slow bodies: %d HTTP and %d gRPC requests of 1 MB, a byte every %v", conns, conns, gap), Run: func(ctx context.Context, t Target, o *Outcomes) {
		spread(ctx, 2*conns, func(ctx context.Context, i int) {
			for ctx.Err() == nil {
				if i%2 == 0 {
					trickle(ctx, t.HTTP, Addr(4, i), head, []byte{0x0a}, gap, o, "HTTP")
				} else {
					slowGRPC(ctx, t, Addr(4, i), gap, o)
				}
			}
		})
	}}
}

// SlowGRPC has conns gRPC connections, each from an address of its own,
// start an Ingest call declaring a 1 MB message and send it a byte every
// gap; each connects again when cut off.
func SlowGRPC(conns int, gap time.Duration) Attack {
	return Attack{Name: fmt.Sprintf("slow gRPC messages: %d requests of 1 MB, a byte every %v", conns, gap), Run: func(ctx context.Context, t Target, o *Outcomes) {
		spread(ctx, conns, func(ctx context.Context, i int) {
			for ctx.Err() == nil {
				slowGRPC(ctx, t, Addr(8, i), gap, o)
			}
		})
	}}
}

func slowGRPC(ctx context.Context, t Target, from net.IP, gap time.Duration, o *Outcomes) {
	c := NewGRPCClient(t.GRPC, from)
	defer c.Close()
	start := time.Now()
	body := io.MultiReader(bytes.NewReader([]byte{0, 0, 0x0f, 0x42, 0x40}), &slowReader{ctx: ctx, gap: gap})
	r := c.CallReader(ctx, IngestMethod, body, false)
	if ctx.Err() == nil {
		o.Add(fmt.Sprintf("gRPC %s after %ds", r, int(time.Since(start).Seconds())))
		pause(ctx, gap)
	}
}

// slowReader yields a byte every gap until ctx ends.
type slowReader struct {
	ctx context.Context
	gap time.Duration
}

func (r *slowReader) Read(p []byte) (int, error) {
	if !pause(r.ctx, r.gap) {
		return 0, r.ctx.Err()
	}
	p[0] = 0x0a
	return 1, nil
}

// IdleConnections holds n connections to each port doing nothing more than
// a client may: gRPC ones send the HTTP/2 preface and settings and then
// idle; HTTP ones connect and idle. Each connects again when closed.
func IdleConnections(n int) Attack {
	preface := append([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), 0, 0, 0, 4, 0, 0, 0, 0, 0)
	return Attack{Name: fmt.Sprintf("%d idle connections (%d per port)", 2*n, n), Run: func(ctx context.Context, t Target, o *Outcomes) {
		spread(ctx, 2*n, func(ctx context.Context, i int) {
			for ctx.Err() == nil {
				addr, label, hello := t.HTTP, "HTTP", []byte(nil)
				if i%2 == 1 {
					addr, label, hello = t.GRPC, "gRPC", preface
				}
				trickle(ctx, addr, Addr(5, i), hello, nil, time.Second, o, label)
			}
		})
	}}
}

// Oversized sends requests over the size limits: a gRPC message declaring
// 64 MiB, an HTTP body declaring 100 MB, and an HTTP body of 8 MiB sent
// chunked (no declared length).
func Oversized(senders int) Attack {
	return Attack{Name: fmt.Sprintf("oversized messages: %d senders", senders), Run: func(ctx context.Context, t Target, o *Outcomes) {
		spread(ctx, senders, func(ctx context.Context, i int) {
			c := NewGRPCClient(t.GRPC, Addr(6, i))
			defer c.Close()
			hc := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: Addr(6, i)}}).DialContext}}
			defer hc.CloseIdleConnections()
			big := bytes.Repeat([]byte{0x0a}, 8<<20)
			for n := 0; ctx.Err() == nil; n++ {
				switch n % 3 {
				case 0:
					frame := append([]byte{0, 4, 0, 0, 0}, bytes.Repeat([]byte{0x22, 0}, 32<<10)...)
					o.Add("gRPC 64 MiB: " + c.Call(ctx, IngestMethod, frame, false).String())
				case 1:
					req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+t.HTTP+PathIngest, io.LimitReader(zeros{}, 100e6))
					req.ContentLength = 100e6
					req.Header.Set("Content-Type", "application/x-protobuf")
					o.Add("HTTP 100 MB: " + httpStatus(hc.Do(req)))
				case 2:
					req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+t.HTTP+PathIngest, io.MultiReader(bytes.NewReader(big)))
					req.ContentLength = -1
					req.Header.Set("Content-Type", "application/x-protobuf")
					o.Add("HTTP 8 MiB chunked: " + httpStatus(hc.Do(req)))
				}
			}
		})
	}}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// httpStatus is a response's status, its body discarded.
func httpStatus(resp *http.Response, err error) string {
	if err != nil {
		return "no answer"
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return fmt.Sprint(resp.StatusCode)
}

// NestedGroups is a protobuf request of depth nested unknown groups.
func NestedGroups(depth int) []byte {
	var b []byte
	for range depth {
		b = protowire.AppendTag(b, 99, protowire.StartGroupType)
	}
	for range depth {
		b = protowire.AppendTag(b, 99, protowire.EndGroupType)
	}
	return b
}

// DeeplyNested sends messages nested as deep as their size allows:
// protobuf groups 1M deep over gRPC, JSON arrays 1M deep over HTTP.
func DeeplyNested(senders int) Attack {
	pb := Frame(NestedGroups(1<<20), false)
	js := []byte(`{"events":` + strings.Repeat("[", 1<<20) + strings.Repeat("]", 1<<20) + `}`)
	g := GRPCFlood("", senders, IngestMethod, func() []byte { return pb }, false)
	h := HTTPFlood("", senders, PathIngest, "application/json", "", func() []byte { return js })
	return Attack{Name: fmt.Sprintf("deeply nested messages: %d senders per port", senders), Run: func(ctx context.Context, t Target, o *Outcomes) {
		var wg sync.WaitGroup
		wg.Go(func() { g.Run(ctx, t, o) })
		wg.Go(func() { h.Run(ctx, t, o) })
		wg.Wait()
	}}
}

// randomBytes returns n random bytes.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// randomSize returns a size between 1 byte and 1 MiB, mostly small.
func randomSize() int {
	e, _ := rand.Int(rand.Reader, big.NewInt(21))
	return 1 << e.Int64()
}

// RandomBytes sends random bytes: as gRPC messages, as HTTP bodies of
// both content types, and as raw TCP streams to both ports.
func RandomBytes(senders int) Attack {
	g := GRPCFlood("", senders, IngestMethod, func() []byte { return Frame(randomBytes(randomSize()), false) }, false)
	hp := HTTPFlood("", senders, PathIngest, "application/x-protobuf", "", func() []byte { return randomBytes(randomSize()) })
	hj := HTTPFlood("", senders, PathIngest, "application/json", "gzip", func() []byte { return randomBytes(randomSize()) })
	raw := func(ctx context.Context, t Target, o *Outcomes) {
		spread(ctx, senders, func(ctx context.Context, i int) {
			for ctx.Err() == nil {
				addr := t.HTTP
				if i%2 == 1 {
					addr = t.GRPC
				}
				c, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: Addr(7, i)}}).DialContext(ctx, "tcp", addr)
				if err != nil {
					continue
				}
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				_, _ = c.Write(randomBytes(randomSize()))
				n, _ := io.Copy(io.Discard, c)
				c.Close()
				if n > 0 {
					o.Add("raw TCP answered")
				} else {
					o.Add("raw TCP closed")
				}
			}
		})
	}
	return Attack{Name: fmt.Sprintf("random bytes: %d senders each over gRPC, HTTP protobuf, HTTP gzip JSON, raw TCP", senders), Run: func(ctx context.Context, t Target, o *Outcomes) {
		var wg sync.WaitGroup
		for _, f := range []func(context.Context, Target, *Outcomes){g.Run, hp.Run, hj.Run, raw} {
			wg.Go(func() { f(ctx, t, o) })
		}
		wg.Wait()
	}}
}

// forgedToken is a JWS-shaped consent token with a random signature.
func forgedToken(app string) string {
	enc := base64.RawURLEncoding
	head := enc.EncodeToString([]byte(`{"alg":"EdDSA","kid":"k1","typ":"JWT"}`))
	claims := enc.EncodeToString(fmt.Appendf(nil, `{"app":%q,"scp":["analytics","crash_reports","location"],"exp":%d}`, app, time.Now().Add(time.Hour).Unix()))
	return head + "." + claims + "." + enc.EncodeToString(randomBytes(64))
}

// KeyGuessing guesses secrets: app keys for Grant (HTTP JSON), for the
// app and for invented ones, and consent tokens signed with no key the
// collector knows, on ingest batches over gRPC.
func KeyGuessing(senders int, app string, batch func(token string) []byte) Attack {
	grant := HTTPFlood("", senders, PathGrant, "application/json", "", func() []byte {
		id := app
		if b := randomBytes(1); b[0]%2 == 0 {
			id = fmt.Sprintf("com.example.app%d", b[0])
		}
		return fmt.Appendf(nil, `{"appId":%q,"appKey":%q,"scopes":["analytics"],"consentTextVersion":"1"}`, id, base64.RawURLEncoding.EncodeToString(randomBytes(24)))
	})
	ingest := GRPCFlood("", senders, IngestMethod, func() []byte { return Frame(batch(forgedToken(app)), false) }, false)
	return Attack{Name: fmt.Sprintf("key guessing: %d senders of app keys (Grant) and forged consent tokens (Ingest)", senders), Run: func(ctx context.Context, t Target, o *Outcomes) {
		var wg sync.WaitGroup
		wg.Go(func() { grant.Run(ctx, t, o) })
		wg.Go(func() { ingest.Run(ctx, t, o) })
		wg.Wait()
	}}
}
