// Package testnet holds the network pieces that tests put between real services on
// loopback, to play what sits between them in production:
//
//   - a Relay forwards TCP connections to one address until it is Cut, as a network
//     path that fails and comes back (a chain RPC endpoint out of reach);
//   - a ReadyProxy routes TCP connections only to the backends whose /readyz answers
//     200, polling it, as a load balancer or an orchestrator's readiness probe does.
//
// Both work at the TCP level, so TLS goes end to end through them (a login's channel
// binding is that of the client's connection to the backend). Everything is closed
// when the test ends. Not for production use.
package testnet

import (
	"io"
	"net"
	"sync"
	"testing"

	"github.com/polyroot/polyroot/internal/freeport"
)

// A Relay forwards TCP connections from its loopback address to a target until Cut;
// Restore listens again on the same address.
type Relay struct {
	Addr   string // host:port to dial instead of the target
	t      testing.TB
	target string

	mu    sync.Mutex
	l     net.Listener
	conns []net.Conn
}

// NewRelay starts a relay to target (host:port) on a free loopback port.
func NewRelay(t testing.TB, target string) *Relay {
	t.Helper()
	// Below the ephemeral range: Restore listens on the same port again after a cut,
	// and no outgoing connection can have taken it meanwhile.
	l, err := freeport.Listen()
	if err != nil {
		t.Fatal(err)
	}
	r := &Relay{t: t, Addr: l.Addr().String(), target: target}
	r.serve(l)
	t.Cleanup(r.Cut)
	return r
}

func (r *Relay) serve(l net.Listener) {
	r.mu.Lock()
	r.l = l
	r.mu.Unlock()
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", r.target)
			if err != nil {
				in.Close()
				continue
			}
			r.mu.Lock()
			r.conns = append(r.conns, in, out)
			r.mu.Unlock()
			splice(in, out)
		}
	}()
}

// Cut closes the listener and every relayed connection: the target is out of reach
// (connections are refused) until Restore.
func (r *Relay) Cut() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.l != nil {
		r.l.Close()
		r.l = nil
	}
	for _, c := range r.conns {
		c.Close()
	}
	r.conns = nil
}

// Restore listens on the relay's address again after Cut.
func (r *Relay) Restore() {
	r.t.Helper()
	l, err := net.Listen("tcp", r.Addr)
	if err != nil {
		r.t.Fatal(err)
	}
	r.serve(l)
}

// splice copies both ways between two connections and closes both once either side
// is done.
func splice(a, b net.Conn) {
	go func() { io.Copy(b, a); b.Close(); a.Close() }()
	go func() { io.Copy(a, b); a.Close(); b.Close() }()
}
