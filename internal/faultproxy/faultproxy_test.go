package faultproxy

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"
)

// echo starts a line echo server.
func echo(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return lis.Addr().String()
}

// roundTrip sends a line and returns the echo and how long it took.
func roundTrip(t *testing.T, c net.Conn, r *bufio.Reader) (string, time.Duration, error) {
	t.Helper()
	start := time.Now()
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return "", 0, err
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	line, err := r.ReadString('\n')
	return line, time.Since(start), err
}

func TestProxy(t *testing.T) {
	p, err := Start(echo(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	if line, _, err := roundTrip(t, c, r); err != nil || line != "ping\n" {
		t.Fatalf("through the proxy: %q, %v", line, err)
	}

	p.SetLatency(100 * time.Millisecond)
	if _, took, err := roundTrip(t, c, r); err != nil || took < 200*time.Millisecond {
		t.Errorf("with 100ms latency each way the round trip took %v, %v", took, err)
	}
	p.SetLatency(0)

	p.Stall()
	done := make(chan error, 1)
	go func() { _, _, err := roundTrip(t, c, r); done <- err }()
	select {
	case err := <-done:
		t.Fatalf("a stalled proxy answered: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	p.Resume()
	if err := <-done; err != nil {
		t.Fatalf("after Resume: %v", err)
	}

	p.Cut()
	if _, _, err := roundTrip(t, c, r); err == nil {
		t.Error("a cut connection still works")
	}

	p.Refuse(true)
	c2, err := net.Dial("tcp", p.Addr())
	if err == nil {
		r2 := bufio.NewReader(c2)
		if _, _, err := roundTrip(t, c2, r2); err == nil {
			t.Error("a refused connection works")
		}
		c2.Close()
	}
	p.Refuse(false)
	c3, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if line, _, err := roundTrip(t, c3, bufio.NewReader(c3)); err != nil || line != "ping\n" {
		t.Fatalf("after Refuse(false): %q, %v", line, err)
	}
}
