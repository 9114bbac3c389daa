package limits

import (
	"cmp"
	"errors"
	"time"
)

// EdgeConfig bounds what a client can cost the collector before its
// request reaches the stages: connections, bytes being received, how slow
// they may arrive, and the memory requests take while they are decoded and
// processed. Zero fields take the defaults from DefaultEdgeConfig; the
// memory bound they add up to is EdgeConfig.MemoryBound.
type EdgeConfig struct {
	// MaxInflightBytes is the byte budget of admitted ingest requests,
	// gRPC and HTTP together: each is charged its wire bytes plus an
	// estimate of its decoded and processed form (counted from the wire
	// before anything is decoded, see Scanner) until its call ends. A
	// request that does not fit while others hold the budget is refused
	// with RESOURCE_EXHAUSTED (OVERLOADED) and a retry delay; one that
	// could never fit, with BATCH_TOO_LARGE.
	MaxInflightBytes int64
	// MaxReceivingBytes bounds, per transport, the bytes of requests being
	// received: an HTTP body is counted as it arrives, and its gzip
	// output as it is inflated; over gRPC, what a connection reads from
	// the start of its earliest message being received, and what the
	// edge inflates of a compressed one. A slow sender holds what it
	// sent, not what it declared. While the bound is full, new requests
	// are refused with RESOURCE_EXHAUSTED (OVERLOADED); if gRPC reads
	// take it over, the connection holding the most of it is closed.
	MaxReceivingBytes int64
	// MaxReceivingPerAddress bounds the requests one client address may
	// have being received at once, per transport.
	MaxReceivingPerAddress int
	// MinReceiveRate is the slowest a request may arrive, in bytes per
	// second, after ReceiveGrace: a body (HTTP) or a connection with a
	// message being received (gRPC) may take ReceiveGrace plus its bytes
	// so far divided by this rate; then it is cut off.
	MinReceiveRate int64
	// ReceiveGrace is the time every request gets before MinReceiveRate
	// applies.
	ReceiveGrace time.Duration
	// MaxConnections bounds the open connections of each ingest listener
	// (gRPC, HTTP); more are closed as they are accepted.
	MaxConnections int
	// MaxConnectionsPerAddress bounds the open connections from one client
	// address, per listener.
	MaxConnectionsPerAddress int
	// HeaderTimeout is how long a new connection may take to send its
	// first request's headers (HTTP) or its TLS handshake and HTTP/2
	// preface (gRPC).
	HeaderTimeout time.Duration
	// IdleTimeout closes connections without a request for this long.
	IdleTimeout time.Duration
	// MaxConcurrentStreams bounds the requests one HTTP/2 connection
	// (gRPC, or HTTPS with h2) may have open at once.
	MaxConcurrentStreams uint32
	// MaxHeaderBytes bounds request headers (HTTP) and header lists
	// (gRPC metadata).
	MaxHeaderBytes int
	// MaxDecompressionRatio bounds how many times its compressed size an
	// HTTP gzip body may inflate to (besides MaxMessageBytes); beyond, it
	// is refused with BATCH_TOO_LARGE. Real batches compress 2 to 10
	// times; decompression bombs a thousand.
	MaxDecompressionRatio int
}

// DefaultEdgeConfig returns the default edge limits.
func DefaultEdgeConfig() EdgeConfig {
	return EdgeConfig{
		MaxInflightBytes:         256 << 20,
		MaxReceivingBytes:        256 << 20,
		MaxReceivingPerAddress:   16,
		MinReceiveRate:           16 << 10,
		ReceiveGrace:             5 * time.Second,
		MaxConnections:           2048,
		MaxConnectionsPerAddress: 128,
		HeaderTimeout:            5 * time.Second,
		IdleTimeout:              2 * time.Minute,
		MaxConcurrentStreams:     16,
		MaxHeaderBytes:           16 << 10,
		MaxDecompressionRatio:    100,
	}
}

// WithDefaults returns c with zero fields set to their defaults.
func (c EdgeConfig) WithDefaults() EdgeConfig {
	d := DefaultEdgeConfig()
	c.MaxInflightBytes = cmp.Or(c.MaxInflightBytes, d.MaxInflightBytes)
	c.MaxReceivingBytes = cmp.Or(c.MaxReceivingBytes, d.MaxReceivingBytes)
	c.MaxReceivingPerAddress = cmp.Or(c.MaxReceivingPerAddress, d.MaxReceivingPerAddress)
	c.MinReceiveRate = cmp.Or(c.MinReceiveRate, d.MinReceiveRate)
	c.ReceiveGrace = cmp.Or(c.ReceiveGrace, d.ReceiveGrace)
	c.MaxConnections = cmp.Or(c.MaxConnections, d.MaxConnections)
	c.MaxConnectionsPerAddress = cmp.Or(c.MaxConnectionsPerAddress, d.MaxConnectionsPerAddress)
	c.HeaderTimeout = cmp.Or(c.HeaderTimeout, d.HeaderTimeout)
	c.IdleTimeout = cmp.Or(c.IdleTimeout, d.IdleTimeout)
	c.MaxConcurrentStreams = cmp.Or(c.MaxConcurrentStreams, d.MaxConcurrentStreams)
	c.MaxHeaderBytes = cmp.Or(c.MaxHeaderBytes, d.MaxHeaderBytes)
	c.MaxDecompressionRatio = cmp.Or(c.MaxDecompressionRatio, d.MaxDecompressionRatio)
	return c
}

// Validate reports whether c, after defaults, is usable with requests of
// up to maxMessageBytes.
func (c EdgeConfig) Validate(maxMessageBytes int) error {
	c = c.WithDefaults()
	m := int64(maxMessageBytes)
	var errs []error
	if c.MaxInflightBytes < 4*m {
		errs = append(errs, errors.New("limits: max in-flight bytes must be at least 4 × the max message size (a request is charged its wire bytes and its decoded estimate)"))
	}
	if c.MaxReceivingBytes < 2*m {
		errs = append(errs, errors.New("limits: max receiving bytes must be at least 2 × the max message size (a compressed message and what it inflates to)"))
	}
	if c.MaxReceivingPerAddress < 1 || c.MaxConnections < 1 || c.MaxConnectionsPerAddress < 1 || c.MaxHeaderBytes < 1024 ||
		c.MinReceiveRate < 1 || c.ReceiveGrace < 0 || c.HeaderTimeout < 0 || c.IdleTimeout < 0 || c.MaxDecompressionRatio < 2 {
		errs = append(errs, errors.New("limits: an edge limit is below its minimum (per-address receiving 1, connections 1, header bytes 1 KiB, receive rate 1 B/s, decompression ratio 2, durations 0)"))
	}
	return errors.Join(errs...)
}

// ConnectionCost is the most one idle or slow connection costs the
// collector (goroutines, read and write buffers, HTTP/2 state, and the
// one read a gRPC connection may make past the receive bound),
// measured with the abuse suite (make abuse) and rounded up.
const ConnectionCost = 128 << 10

// MemoryBound is the most the requests in flight and the open connections
// can make the collector hold, beyond its baseline (spool, caches,
// ClickHouse client): the in-flight budget, the receive bounds of gRPC
// and HTTP, and every connection the two listeners admit. The estimate a
// request is charged covers what decoding and processing it retain;
// garbage the Go runtime has not collected yet comes on top (with
// GOGC=100 the heap may reach twice what is live before a collection),
// and the process's RSS shows it.
func (c EdgeConfig) MemoryBound() int64 {
	c = c.WithDefaults()
	return c.MaxInflightBytes + 2*c.MaxReceivingBytes + 2*int64(c.MaxConnections)*ConnectionCost
}
