// Package faultproxy is a TCP proxy for fault tests: it forwards
// connections to a target and can delay every chunk it forwards, stall
// forwarding altogether, refuse new connections, and cut the open ones,
// so a test can play a slow, hung or unreachable server.
package faultproxy

import (
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Proxy forwards connections from Addr to a target. It is safe for
// concurrent use.
type Proxy struct {
	target string
	lis    net.Listener

	mu      sync.Mutex
	latency time.Duration
	stalled chan struct{} // closed when forwarding may go on
	refuse  bool
	conns   map[net.Conn]struct{}
	closed  bool
	wg      sync.WaitGroup
}

// Start listens on a free loopback port and forwards to target.
func Start(target string) (*Proxy, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen: %w", err)
	}
	p := &Proxy{target: target, lis: lis, conns: make(map[net.Conn]struct{}), stalled: make(chan struct{})}
	close(p.stalled)
	p.wg.Go(p.accept)
	return p, nil
}

// Addr returns the proxy's address.
func (p *Proxy) Addr() string { return p.lis.Addr().String() }

// SetLatency delays every chunk forwarded, in either direction, by d.
func (p *Proxy) SetLatency(d time.Duration) {
	p.mu.Lock()
	p.latency = d
	p.mu.Unlock()
}

// Stall stops forwarding on every connection, open or new, until Resume:
// the server looks hung.
func (p *Proxy) Stall() {
	p.mu.Lock()
	select {
	case <-p.stalled:
		p.stalled = make(chan struct{})
	default:
	}
	p.mu.Unlock()
}

// Resume ends a Stall.
func (p *Proxy) Resume() {
	p.mu.Lock()
	select {
	case <-p.stalled:
	default:
		close(p.stalled)
	}
	p.mu.Unlock()
}

// Refuse makes the proxy close new connections at once (refuse true) or
// forward them again (false).
func (p *Proxy) Refuse(refuse bool) {
	p.mu.Lock()
	p.refuse = refuse
	p.mu.Unlock()
}

// Cut closes every open connection, both sides.
func (p *Proxy) Cut() {
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
}

// Close stops listening, cuts every connection and waits for the
// forwarding goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	err := p.lis.Close()
	p.Resume()
	p.Cut()
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	for {
		c, err := p.lis.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refuse := p.refuse || p.closed
		p.mu.Unlock()
		if refuse {
			c.Close()
			continue
		}
		p.wg.Go(func() { p.serve(c) })
	}
}

// serve forwards one connection.
func (p *Proxy) serve(client net.Conn) {
	server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		client.Close()
		return
	}
	if !p.track(client, server) {
		return
	}
	var wg sync.WaitGroup
	wg.Go(func() { p.pipe(server, client) })
	wg.Go(func() { p.pipe(client, server) })
	wg.Wait()
	p.mu.Lock()
	delete(p.conns, client)
	delete(p.conns, server)
	p.mu.Unlock()
}

// track records both ends of a connection, or closes them if the proxy is
// closed.
func (p *Proxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		for _, c := range conns {
			c.Close()
		}
		return false
	}
	for _, c := range conns {
		p.conns[c] = struct{}{}
	}
	return true
}

// pipe copies src to dst, chunk by chunk, under the current faults, and
// closes both when either side ends.
func (p *Proxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			latency, stalled := p.latency, p.stalled
			p.mu.Unlock()
			<-stalled
			if latency > 0 {
				time.Sleep(latency)
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

var _ io.Closer = (*Proxy)(nil)
