package testnet

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"
)

// A ReadyProxy is a load balancer for tests: it accepts TCP connections on a loopback
// address and hands each to the next backend in rotation (round robin); a backend is
// in rotation while its /readyz answers 200, polled every interval. With none in
// rotation a connection is closed at once, as a balancer with no healthy target
// does. When a backend leaves rotation its connections are closed too, stricter than
// most balancers (which let them drain), so that a test through the proxy cannot pass
// on a kept-alive connection to an instance that said it is not ready.
type ReadyProxy struct {
	Addr string // host:port of the proxy
	URL  string // the backends' scheme and Addr: what clients are given

	t        testing.TB
	client   *http.Client
	backends []*backend
	l        net.Listener
	stop     context.CancelFunc
	done     chan struct{}

	mu   sync.Mutex
	next int
}

// backend is one instance behind the proxy.
type backend struct {
	url, addr string

	mu     sync.Mutex
	ready  bool
	left   int // times it left rotation
	routed int // connections handed to it
	conns  map[net.Conn]bool
}

// NewReadyProxy starts a proxy in front of the backends, given by their base URLs
// (all of one scheme), polling base+"/readyz" with client every interval. It returns
// after the first poll, so the rotation is known from the start.
func NewReadyProxy(t testing.TB, client *http.Client, interval time.Duration, backendURLs ...string) *ReadyProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &ReadyProxy{Addr: l.Addr().String(), t: t, client: client, l: l, done: make(chan struct{})}
	for _, raw := range backendURLs {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			t.Fatalf("testnet: backend URL %q", raw)
		}
		if p.URL == "" {
			p.URL = u.Scheme + "://" + p.Addr
		}
		p.backends = append(p.backends, &backend{url: raw, addr: u.Host, conns: map[net.Conn]bool{}})
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.stop = cancel
	p.poll(ctx)
	go func() {
		defer close(p.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				p.poll(ctx)
			}
		}
	}()
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// poll asks every backend's /readyz once and updates the rotation.
func (p *ReadyProxy) poll(ctx context.Context) {
	var wg sync.WaitGroup
	for _, b := range p.backends {
		wg.Go(func() {
			ready := p.readyz(ctx, b.url)
			if ctx.Err() != nil {
				return
			}
			b.mu.Lock()
			defer b.mu.Unlock()
			if ready == b.ready {
				return
			}
			b.ready = ready
			if ready {
				p.t.Logf("testnet: %s joins the rotation", b.url)
				return
			}
			b.left++
			p.t.Logf("testnet: %s leaves the rotation (its /readyz is not 200); closing its %d connections", b.url, len(b.conns))
			for c := range b.conns {
				c.Close()
			}
		})
	}
	wg.Wait()
}

// readyz reports whether base's /readyz answers 200 within two seconds.
func (p *ReadyProxy) readyz(ctx context.Context, base string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
	if err != nil {
		return false
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode == http.StatusOK
}

func (p *ReadyProxy) accept() {
	for {
		in, err := p.l.Accept()
		if err != nil {
			return
		}
		go p.route(in)
	}
}

// route hands one connection to the next backend in rotation.
func (p *ReadyProxy) route(in net.Conn) {
	p.mu.Lock()
	start := p.next
	p.next++
	p.mu.Unlock()
	for i := range p.backends {
		b := p.backends[(start+i)%len(p.backends)]
		b.mu.Lock()
		ready := b.ready
		b.mu.Unlock()
		if !ready {
			continue
		}
		out, err := net.Dial("tcp", b.addr)
		if err != nil {
			continue // gone since the last poll: try the next one
		}
		b.mu.Lock()
		if !b.ready { // left the rotation while dialling
			b.mu.Unlock()
			out.Close()
			continue
		}
		b.routed++
		b.conns[in], b.conns[out] = true, true
		b.mu.Unlock()
		go func() { io.Copy(out, in); out.Close(); in.Close(); b.forget(in, out) }()
		go func() { io.Copy(in, out); in.Close(); out.Close() }()
		return
	}
	in.Close() // no backend in rotation
}

func (b *backend) forget(conns ...net.Conn) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range conns {
		delete(b.conns, c)
	}
}

func (p *ReadyProxy) close() {
	p.l.Close()
	p.stop()
	<-p.done
	for _, b := range p.backends {
		b.mu.Lock()
		for c := range b.conns {
			c.Close()
		}
		b.mu.Unlock()
	}
}

// A BackendState is what the proxy knows of one backend.
type BackendState struct {
	URL        string
	InRotation bool // its last /readyz answered 200
	Left       int  // times it left the rotation since the proxy started
	Routed     int  // connections handed to it
	Current    int  // connections open through the proxy now
}

// Backends returns the state of every backend, in the order given to NewReadyProxy.
func (p *ReadyProxy) Backends() []BackendState {
	out := make([]BackendState, len(p.backends))
	for i, b := range p.backends {
		b.mu.Lock()
		out[i] = BackendState{URL: b.url, InRotation: b.ready, Left: b.left, Routed: b.routed, Current: len(b.conns) / 2}
		b.mu.Unlock()
	}
	return out
}
