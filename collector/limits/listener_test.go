package limits

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// listen returns a Listener on loopback whose accepted connections arrive
// on the channel.
func listen(t *testing.T, cfg ListenerConfig) (*Listener, <-chan net.Conn) {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := NewListener(inner, cfg)
	conns := make(chan net.Conn, 64)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(conns)
				return
			}
			conns <- c
		}
	}()
	t.Cleanup(func() {
		l.Close()
		for c := range conns {
			c.Close()
		}
	})
	return l, conns
}

// dial connects to l from the loopback address from (127.0.0.x).
func dial(t *testing.T, l net.Listener, from string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedByServer reports whether the server closed c without a word.
func closedByServer(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err := c.Read(make([]byte, 1))
	return err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
}

func TestListenerLimitsConnections(t *testing.T) {
	l, conns := listen(t, ListenerConfig{MaxConnections: 3, MaxConnectionsPerAddress: 2, MinReceiveRate: 1})
	a1, a2 := dial(t, l, "127.0.0.1"), dial(t, l, "127.0.0.1")
	s1, s2 := <-conns, <-conns
	if got := s1.(*Conn).Addr().String(); got != "127.0.0.1" {
		t.Errorf("address %s", got)
	}
	if a3 := dial(t, l, "127.0.0.1"); !closedByServer(a3) {
		t.Error("a third connection from one address was accepted")
	}
	b1 := dial(t, l, "127.0.0.2")
	<-conns
	if b2 := dial(t, l, "127.0.0.3"); !closedByServer(b2) {
		t.Error("a fourth connection was accepted")
	}
	if l.Refused() != 2 || l.Open() != 3 {
		t.Errorf("refused %d, open %d; want 2, 3", l.Refused(), l.Open())
	}
	// Closing frees the places.
	s1.Close()
	s2.Close()
	a1.Close()
	a2.Close()
	dial(t, l, "127.0.0.1")
	<-conns
	if l.Open() != 2 {
		t.Errorf("open %d after closing two and opening one, want 2", l.Open())
	}
	_ = b1
}

func TestConnMinimumRate(t *testing.T) {
	const grace = 300 * time.Millisecond
	l, conns := listen(t, ListenerConfig{MaxConnections: 10, MaxConnectionsPerAddress: 10, MinReceiveRate: 1000, ReceiveGrace: grace})
	tests := []struct {
		name     string
		every    time.Duration
		chunk    int
		wantSlow bool
	}{
		{"a byte every 100ms", 100 * time.Millisecond, 1, true},
		{"100 bytes every 50ms (2000 B/s)", 50 * time.Millisecond, 100, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := dial(t, l, "127.0.0.1")
			srv := (<-conns).(*Conn)
			defer srv.Close()
			stop := make(chan struct{})
			defer close(stop)
			go func() {
				for {
					select {
					case <-stop:
						return
					case <-time.After(tt.every):
						if _, err := client.Write(make([]byte, tt.chunk)); err != nil {
							return
						}
					}
				}
			}()
			r := srv.BeginReceive()
			if r == nil {
				t.Fatal("no room to receive")
			}
			start := time.Now()
			var err error
			for time.Since(start) < 4*grace && err == nil {
				_, err = srv.Read(make([]byte, 512))
			}
			srv.EndReceive(r)
			if slow := errors.Is(err, ErrTooSlow); slow != tt.wantSlow {
				t.Fatalf("after %v: err %v, want too slow %v", time.Since(start), err, tt.wantSlow)
			}
			if tt.wantSlow && time.Since(start) > 2*grace {
				t.Errorf("cut off after %v, want about the grace period %v", time.Since(start), grace)
			}
		})
	}
}

// TestConnRateOnlyWhileReceiving checks that an idle connection is not
// cut off, and that the server's own deadline still applies while
// receiving.
func TestConnRateOnlyWhileReceiving(t *testing.T) {
	l, conns := listen(t, ListenerConfig{MaxConnections: 10, MaxConnectionsPerAddress: 10, MinReceiveRate: 1000, ReceiveGrace: 100 * time.Millisecond})
	client := dial(t, l, "127.0.0.1")
	srv := (<-conns).(*Conn)
	defer srv.Close()
	go func() {
		time.Sleep(300 * time.Millisecond)
		client.Write([]byte("x"))
	}()
	if _, err := srv.Read(make([]byte, 1)); err != nil {
		t.Fatalf("idle read: %v", err)
	}
	srv.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	defer srv.EndReceive(srv.BeginReceive())
	// The grace is 100ms: the server's 20ms come first (however late this
	// goroutine runs, the rate deadline is set from the receive's start).
	_, err := srv.Read(make([]byte, 1))
	if !errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, ErrTooSlow) {
		t.Fatalf("err %v, want the server's own deadline", err)
	}
	if _, err := io.ReadAll(io.LimitReader(srv, 0)); err != nil {
		t.Fatal(err)
	}
}

func TestBudget(t *testing.T) {
	b := NewBudget(100)
	if !b.TryAcquire(60) || b.TryAcquire(50) || !b.TryAcquire(40) || b.TryAcquire(1) {
		t.Fatal("budget admitted the wrong requests")
	}
	if b.InUse() != 100 || b.Peak() != 100 || b.Refused() != 2 || !b.Busy(1) {
		t.Fatalf("in use %d, peak %d, refused %d", b.InUse(), b.Peak(), b.Refused())
	}
	b.Release(60)
	if b.Busy(60) || !b.Busy(61) {
		t.Fatal("Busy is wrong after a release")
	}
}

func TestEdgeConfig(t *testing.T) {
	if err := (EdgeConfig{}).Validate(4 << 20); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	if err := (EdgeConfig{MaxInflightBytes: 1 << 20}).Validate(4 << 20); err == nil {
		t.Fatal("a budget smaller than one request was accepted")
	}
	if b := (EdgeConfig{}).MemoryBound(); b <= DefaultEdgeConfig().MaxInflightBytes {
		t.Fatalf("memory bound %d", b)
	}
}

// TestConnReservesWhatItReads checks that a connection receiving holds
// in the budget what it read, not more, and is cut off when that cannot
// grow, freeing its part.
func TestConnReservesWhatItReads(t *testing.T) {
	b := NewBudget(256 << 10)
	l, conns := listen(t, ListenerConfig{MaxConnections: 10, MaxConnectionsPerAddress: 10, MinReceiveRate: 1, ReceiveGrace: time.Minute, Budget: b})
	ca, cb := dial(t, l, "127.0.0.1"), dial(t, l, "127.0.0.1")
	a, bc := (<-conns).(*Conn), (<-conns).(*Conn)
	readN := func(c *Conn, n int) error {
		buf := make([]byte, 32<<10)
		for n > 0 {
			k, err := c.Read(buf[:min(n, len(buf))])
			if err != nil {
				return err
			}
			n -= k
		}
		return nil
	}
	ra := a.BeginReceive()
	if ra == nil || b.InUse() != ReceiveReserve {
		t.Fatalf("first receive: reserved %d", b.InUse())
	}
	go ca.Write(make([]byte, 100<<10))
	if err := readN(a, 100<<10); err != nil {
		t.Fatal(err)
	}
	if got := b.InUse(); got < 100<<10 || got > 2*ReceiveReserve {
		t.Fatalf("after 100 KiB read: %d reserved", got)
	}
	rb := bc.BeginReceive()
	if rb == nil {
		t.Fatal("a second connection could not begin")
	}
	go ca.Write(make([]byte, 100<<10))
	if err := readN(a, 100<<10); !errors.Is(err, ErrReceiveBound) {
		t.Fatalf("reading past the budget: %v", err)
	}
	if got := b.InUse(); got != ReceiveReserve || l.Cut() != 1 {
		t.Fatalf("after the cut: %d reserved (want the other connection's %d), %d cut", got, ReceiveReserve, l.Cut())
	}
	a.EndReceive(ra)
	bc.EndReceive(rb)
	if got := b.InUse(); got != 0 {
		t.Fatalf("%d left reserved", got)
	}
	_ = cb
}
