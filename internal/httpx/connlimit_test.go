package httpx

import (
	"bytes"
	"log/slog"
	"net"
	"testing"
)

// fakeListener hands out the connections queued in conns.
type fakeListener struct {
	net.Listener
	conns chan net.Conn
}

func (l *fakeListener) Accept() (net.Conn, error) {
	c, ok := <-l.conns
	if !ok {
		return nil, net.ErrClosed
	}
	return c, nil
}

// peerConn is one end of a pipe that claims to come from addr.
type peerConn struct {
	net.Conn
	addr   net.Addr
	closed bool
}

func (c *peerConn) RemoteAddr() net.Addr { return c.addr }
func (c *peerConn) Close() error         { c.closed = true; return c.Conn.Close() }

func peer(t *testing.T, ip string) *peerConn {
	a, _ := net.Pipe()
	t.Cleanup(func() { a.Close() })
	return &peerConn{Conn: a, addr: &net.TCPAddr{IP: net.ParseIP(ip), Port: 40000}}
}

// TestPerClientConnectionLimit: a client past its bound has its new connections
// closed at once, other clients and loopback peers are not held up, and a closed
// connection (closed twice, even) frees exactly one slot.
func TestPerClientConnectionLimit(t *testing.T) {
	fl := &fakeListener{conns: make(chan net.Conn, 16)}
	var logged bytes.Buffer
	refused := NewRefusedConnectionsCounter("test")
	l := limitPerClient(fl, 2, 3, refused, slog.New(slog.NewJSONHandler(&logged, nil)))
	// accept queues c and then a sentinel: Accept returns c, or the sentinel when it
	// refused c.
	accept := func(c *peerConn) (net.Conn, bool) {
		t.Helper()
		fl.conns <- c
		fl.conns <- peer(t, "198.51.100.9")
		got, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		if got.RemoteAddr() != c.addr {
			got.Close()
			return nil, false
		}
		sentinel, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		sentinel.Close()
		return got, true
	}
	a1, ok1 := accept(peer(t, "192.0.2.1"))
	_, ok2 := accept(peer(t, "192.0.2.1"))
	third := peer(t, "192.0.2.1")
	_, ok3 := accept(third)
	if !ok1 || !ok2 || ok3 || !third.closed {
		t.Fatalf("accepted %v %v %v; third closed %v", ok1, ok2, ok3, third.closed)
	}
	if _, ok := accept(peer(t, "2001:db8::1")); !ok {
		t.Fatal("another client was refused")
	}
	if _, ok := accept(peer(t, "2001:db8::2")); !ok {
		t.Fatal("a second connection of an IPv6 /64 was refused")
	}
	if _, ok := accept(peer(t, "2001:db8::3")); ok {
		t.Fatal("a third connection of one IPv6 /64 was accepted")
	}
	if _, ok := accept(peer(t, "2001:db8:0:1::1")); !ok {
		t.Fatal("another /64 of the /48 was refused below the /48's bound")
	}
	if _, ok := accept(peer(t, "2001:db8:0:2::1")); ok {
		t.Fatal("a fourth connection of one IPv6 /48 was accepted")
	}
	for range 5 {
		if _, ok := accept(peer(t, "127.0.0.1")); !ok {
			t.Fatal("a loopback peer was refused")
		}
	}
	a1.Close()
	a1.Close()
	if _, ok := accept(peer(t, "192.0.2.1")); !ok {
		t.Fatal("a slot freed by Close was not given back")
	}
	if _, ok := accept(peer(t, "192.0.2.1")); ok {
		t.Fatal("a second Close gave back a second slot")
	}
	// Four refused (192.0.2.1 twice, the /64 once, the /48 once): all counted, one line
	// per client.
	if got := counterValue(t, refused); got != 4 {
		t.Fatalf("%v connections counted refused, want 4", got)
	}
	if n := bytes.Count(logged.Bytes(), []byte("\n")); n != 3 || !bytes.Contains(logged.Bytes(), []byte(`"client":"192.0.2.1"`)) {
		t.Fatalf("log of the refusals:\n%s", logged.Bytes())
	}
}
