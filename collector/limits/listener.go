package limits

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// ListenerConfig bounds the connections of one Listener.
type ListenerConfig struct {
	// MaxConnections bounds the open connections; more are closed as they
	// are accepted. Required.
	MaxConnections int
	// MaxConnectionsPerAddress bounds the open connections from one client
	// address. Required.
	MaxConnectionsPerAddress int
	// MinReceiveRate and ReceiveGrace bound how slowly a connection may
	// deliver bytes while it has a request being received (see
	// Conn.BeginReceive). MinReceiveRate is required.
	MinReceiveRate int64
	ReceiveGrace   time.Duration
	// Budget, if set, bounds what connections hold of requests being
	// received. A connection reserves ReceiveReserve when its first
	// request begins (BeginReceive fails if that does not fit), and more,
	// doubling, as it reads past its reservation the bytes since its
	// earliest request began, which bound what the server holds of their
	// partial messages however many there are; a connection whose
	// reservation cannot grow is closed (its requests fail). So a slow
	// sender holds what it sent, and the budget is never passed by more
	// than one read per connection.
	Budget *Budget
}

// Listener wraps a net.Listener with connection limits, overall and per
// client address (as netutil.LimitListener does overall), and hands out
// Conns that enforce a minimum receive rate while a request is being
// received. It is safe for concurrent use.
type Listener struct {
	net.Listener
	cfg ListenerConfig

	mu      sync.Mutex
	open    int
	perAddr map[netip.Addr]int
	conns   map[string]*Conn // by remote address

	refused atomic.Uint64
	tooSlow atomic.Uint64
	cut     atomic.Uint64
}

// ReceiveReserve is what a connection reserves of the Budget when its
// first request begins: an HTTP/2 stream's window, what a sender may send
// before the server reads.
const ReceiveReserve = 64 << 10

// NewListener returns inner with cfg's limits.
func NewListener(inner net.Listener, cfg ListenerConfig) *Listener {
	return &Listener{Listener: inner, cfg: cfg, perAddr: make(map[netip.Addr]int), conns: make(map[string]*Conn)}
}

// Accept returns the next connection within the limits; connections over
// them are closed at once.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		addr := AddrOf(c.RemoteAddr())
		l.mu.Lock()
		if l.open >= l.cfg.MaxConnections || l.perAddr[addr] >= l.cfg.MaxConnectionsPerAddress {
			l.mu.Unlock()
			l.refused.Add(1)
			_ = c.Close() // refused: nothing was read or written.
			continue
		}
		l.open++
		l.perAddr[addr]++
		lc := &Conn{Conn: c, l: l, addr: addr, key: c.RemoteAddr().String()}
		l.conns[lc.key] = lc
		l.mu.Unlock()
		return lc, nil
	}
}

// Lookup returns the open connection from remote, or nil.
func (l *Listener) Lookup(remote net.Addr) *Conn {
	if remote == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conns[remote.String()]
}

// Open returns the connections open now.
func (l *Listener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// Refused returns the connections closed at accept for a limit.
func (l *Listener) Refused() uint64 { return l.refused.Load() }

// TooSlow returns the reads cut off for MinReceiveRate.
func (l *Listener) TooSlow() uint64 { return l.tooSlow.Load() }

// Cut returns the connections closed because their reservation in the
// Budget could not grow.
func (l *Listener) Cut() uint64 { return l.cut.Load() }

func (l *Listener) closed(c *Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if l.perAddr[c.addr]--; l.perAddr[c.addr] == 0 {
		delete(l.perAddr, c.addr)
	}
	if l.conns[c.key] == c {
		delete(l.conns, c.key)
	}
}

// AddrOf returns the IP address of a TCP address (IPv4-mapped addresses
// unmapped), or the zero Addr.
func AddrOf(a net.Addr) netip.Addr {
	if tcp, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(tcp.IP)
		return ip.Unmap()
	}
	if a != nil {
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			return ap.Addr().Unmap()
		}
	}
	return netip.Addr{}
}

// ErrTooSlow is returned by a Conn's Read once a request being received
// arrives slower than the minimum rate.
var ErrTooSlow = errors.New("request arrived slower than the minimum receive rate")

// Conn is a connection accepted by a Listener. While it has requests
// being received (BeginReceive), its reads must keep up with the minimum
// rate: each receive may take ReceiveGrace plus the bytes the connection
// read since it began, at MinReceiveRate; the read deadline is the
// earliest of these, so it moves only as bytes arrive. A deadline the
// server sets itself (a handshake timeout) still applies when it is
// earlier. What it reads while receiving is reserved in the listener's
// Budget, if any (see ListenerConfig.Budget).
type Conn struct {
	net.Conn
	l    *Listener
	addr netip.Addr
	key  string

	mu        sync.Mutex
	receives  []*Receive // being received, oldest first
	read      int64      // bytes read
	reserved  int64      // reserved in the budget
	outer     time.Time  // deadline the server set
	closed    bool
	closeOnce sync.Once
}

// Receive is one request being received on a Conn.
type Receive struct {
	start time.Time
	read  int64 // the Conn's bytes read when it began
}

// Addr returns the client's IP address.
func (c *Conn) Addr() netip.Addr { return c.addr }

// BeginReceive starts enforcing the minimum rate (and reserving what is
// read) for one request, until EndReceive. It returns nil if the
// connection's first request does not fit in the budget.
func (c *Conn) BeginReceive() *Receive {
	c.mu.Lock()
	defer c.mu.Unlock()
	if b := c.l.cfg.Budget; b != nil && len(c.receives) == 0 {
		if !b.TryAcquire(ReceiveReserve) {
			return nil
		}
		c.reserved = ReceiveReserve
	}
	r := &Receive{start: time.Now(), read: c.read}
	c.receives = append(c.receives, r)
	c.applyLocked()
	return r
}

// EndReceive ends r; later calls do nothing.
func (c *Conn) EndReceive(r *Receive) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, x := range c.receives {
		if x == r {
			c.receives = append(c.receives[:i], c.receives[i+1:]...)
			break
		}
	}
	if b := c.l.cfg.Budget; b != nil {
		keep := int64(0)
		if len(c.receives) > 0 && !c.closed {
			keep = max(ReceiveReserve, c.needLocked())
		}
		if keep < c.reserved {
			b.Release(c.reserved - keep)
			c.reserved = keep
		}
	}
	c.applyLocked()
}

// needLocked is what the connection holds of its requests being
// received, at most: the bytes read since the earliest began.
func (c *Conn) needLocked() int64 {
	if len(c.receives) == 0 {
		return 0
	}
	return c.read - c.receives[0].read
}

// growLocked reserves enough for what was read, doubling; false if the
// budget has no room.
func (c *Conn) growLocked() bool {
	b := c.l.cfg.Budget
	need := c.needLocked()
	if b == nil || need <= c.reserved {
		return true
	}
	more := max(need-c.reserved, c.reserved)
	if !b.TryAcquire(more) {
		if !b.TryAcquire(need - c.reserved) {
			return false
		}
		more = need - c.reserved
	}
	c.reserved += more
	return true
}

// rateDeadlineLocked is when the earliest receive runs out of the bytes
// read since it began; zero without receives.
func (c *Conn) rateDeadlineLocked() time.Time {
	var d time.Time
	for _, r := range c.receives {
		rd := r.start.Add(c.l.cfg.ReceiveGrace + time.Duration((c.read-r.read)*int64(time.Second)/c.l.cfg.MinReceiveRate))
		if d.IsZero() || rd.Before(d) {
			d = rd
		}
	}
	return d
}

// deadlineLocked is the read deadline to apply: the server's, or the
// rate's when it is earlier.
func (c *Conn) deadlineLocked() time.Time {
	d := c.outer
	if r := c.rateDeadlineLocked(); !r.IsZero() && (d.IsZero() || r.Before(d)) {
		d = r
	}
	return d
}

func (c *Conn) applyLocked() {
	_ = c.Conn.SetReadDeadline(c.deadlineLocked()) // fails only once closed; the next read says so.
}

// ErrReceiveBound is returned by a Conn's Read when what its requests
// being received hold cannot grow within the budget; the connection is
// closed.
var ErrReceiveBound = errors.New("requests being received hold the whole receive bound")

// Read reads, reserving and extending the rate deadline by what
// arrived; a connection whose reservation cannot grow is closed.
func (c *Conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.read += int64(n)
	if len(c.receives) == 0 {
		c.mu.Unlock()
		return n, err
	}
	if n > 0 {
		if !c.growLocked() {
			c.mu.Unlock()
			c.l.cut.Add(1)
			_ = c.Close()
			return 0, ErrReceiveBound
		}
		c.applyLocked()
	}
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		// The rate's deadline, not the server's, ran out.
		if r := c.rateDeadlineLocked(); !r.IsZero() && (c.outer.IsZero() || r.Before(c.outer)) {
			c.l.tooSlow.Add(1)
			err = errors.Join(ErrTooSlow, err)
		}
	}
	c.mu.Unlock()
	return n, err
}

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.Conn.SetWriteDeadline(t)
}

// SetReadDeadline sets the server's read deadline; while a request is
// being received, the rate deadline applies when it is earlier.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.outer = t
	return c.Conn.SetReadDeadline(c.deadlineLocked())
}

// Close closes the connection and frees its place in the limits and
// what it was charged.
func (c *Conn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		if b := c.l.cfg.Budget; b != nil {
			b.Release(c.reserved)
			c.reserved = 0
		}
		c.mu.Unlock()
		c.l.closed(c)
	})
	return err
}

// CloseWrite shuts down the writing side, if the wrapped connection can
// (net/http does this before closing, so a client reads the last
// response).
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// NetConn returns the wrapped connection.
func (c *Conn) NetConn() net.Conn { return c.Conn }
