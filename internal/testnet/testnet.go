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

// A Relay forwards TCP connections from its loopback address to a target until Cut,
// and again after Restore.
type Relay struct {
	Addr   string // host:port to dial instead of the target
	target string

	mu    sync.Mutex
	cut   bool
	conns []net.Conn
}

// NewRelay starts a relay to target (host:port) on a free loopback port.
func NewRelay(t testing.TB, target string) *Relay {
	t.Helper()
	l, err := freeport.Listen()
	if err != nil {
		t.Fatal(err)
	}
	r := &Relay{Addr: l.Addr().String(), target: target}
	t.Cleanup(func() { l.Close(); r.Cut() })
	go r.serve(l)
	return r
}

// serve keeps the listener for the relay's whole life, cut or not: a port released
// during a cut could be taken by any other process on the machine before Restore.
func (r *Relay) serve(l net.Listener) {
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
		if r.cut {
			r.mu.Unlock()
			in.Close()
			out.Close()
			continue
		}
		r.conns = append(r.conns, in, out)
		r.mu.Unlock()
		splice(in, out)
	}
}

// Cut closes every relayed connection and, until Restore, every new one as soon as it
// is accepted: the target is out of reach.
func (r *Relay) Cut() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cut = true
	for _, c := range r.conns {
		c.Close()
	}
	r.conns = nil
}

// Restore carries new connections to the target again after Cut.
func (r *Relay) Restore() {
	r.mu.Lock()
	r.cut = false
	r.mu.Unlock()
}

// splice copies both ways between two connections and closes both once either side
// is done.
func splice(a, b net.Conn) {
	go func() { io.Copy(b, a); b.Close(); a.Close() }()
	go func() { io.Copy(a, b); a.Close(); b.Close() }()
}
