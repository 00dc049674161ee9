package httpx

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// rateLimited returns a rate limiter that allows each client one request per 1000 s
// of clock, and a function that sends a request through it from a remote address and
// returns the status.
func rateLimited(clock *fakeClock) (*RateLimiter, func(remote string) int) {
	l := NewRateLimiter(0.001, 1, slog.New(slog.DiscardHandler))
	l.now = clock.now
	h := l.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	return l, func(remote string) int {
		r := httptest.NewRequest(http.MethodGet, "/v1/bundle", nil)
		r.RemoteAddr = remote
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
}

// TestRateLimitClients: a client is an IPv4 address or an IPv6 /64, and an IPv4-mapped
// IPv6 address is its IPv4 address: the second request of each pair is refused when
// it comes from the same client as the first.
func TestRateLimitClients(t *testing.T) {
	for _, tc := range []struct {
		name, first, second string
		shared              bool
	}{
		{"shared/ipv4-other-port", "192.0.2.1:40000", "192.0.2.1:40001", true},
		{"shared/ipv6-same-64", "[2001:db8:1:2::1]:40000", "[2001:db8:1:2:ffff:ffff:ffff:ffff]:40000", true},
		{"shared/ipv4-mapped-then-ipv4", "[::ffff:192.0.2.1]:40000", "192.0.2.1:40000", true},
		{"shared/ipv4-then-ipv4-mapped", "192.0.2.1:40000", "[::ffff:192.0.2.1]:40000", true},
		{"shared/ipv6-zones", "[fe80::1%eth0]:40000", "[fe80::2]:40000", true},
		{"separate/ipv4-neighbours", "192.0.2.1:40000", "192.0.2.2:40000", false},
		{"separate/ipv6-next-64", "[2001:db8:1:2::1]:40000", "[2001:db8:1:3::1]:40000", false},
		{"separate/ipv4-mapped-neighbours", "[::ffff:192.0.2.1]:40000", "[::ffff:192.0.2.2]:40000", false},
		{"separate/ipv4-and-ipv6", "192.0.2.1:40000", "[2001:db8::c000:201]:40000", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, send := rateLimited(&fakeClock{t: time.Unix(1_800_000_000, 0)})
			if st := send(tc.first); st != http.StatusOK {
				t.Fatalf("first request: %d", st)
			}
			want := http.StatusOK
			if tc.shared {
				want = http.StatusTooManyRequests
			}
			if st := send(tc.second); st != want {
				t.Fatalf("second request: %d, want %d", st, want)
			}
		})
	}
}

// TestRateLimitBounded: a flood of new clients (each in a /48 of its own) never grows
// the limiter beyond maxRateClients buckets; the least recently used make room, so a
// client that keeps sending keeps its bucket (and stays limited) through the flood;
// and a minute without requests forgets every bucket.
func TestRateLimitBounded(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	l, send := rateLimited(clock)
	const busy = "192.0.2.1:40000"
	if st := send(busy); st != http.StatusOK {
		t.Fatalf("the busy client's first request: %d", st)
	}
	for i := range 3 * maxRateClients {
		if st := send(fmt.Sprintf("[2001:%x:%x::1]:40000", 0x1000+i>>16, i&0xffff)); st != http.StatusOK {
			t.Fatalf("flood request %d, from a new /48: %d", i, st)
		}
		if n := len(l.clients); n > maxRateClients || l.lru.Len() != n {
			t.Fatalf("after %d flood requests: %d buckets, %d in the LRU list (at most %d)", i+1, n, l.lru.Len(), maxRateClients)
		}
		if i%1000 == 0 {
			if st := send(busy); st != http.StatusTooManyRequests {
				t.Fatalf("the busy client after %d flood requests: %d, want 429", i+1, st)
			}
		}
		clock.add(time.Millisecond)
	}
	if len(l.clients) != maxRateClients {
		t.Fatalf("%d buckets after the flood, want %d", len(l.clients), maxRateClients)
	}
	clock.add(maxClientIdle + time.Second)
	send("198.51.100.1:40000")
	if len(l.clients) != 1 || l.lru.Len() != 1 {
		t.Fatalf("a minute after the flood: %d buckets, want 1", len(l.clients))
	}
}

// TestRateLimitNetwork: the /64s of one IPv6 /48 share netFactor times a client's
// burst, however many of them send and however full the table is: a source cycling
// through its /64s gets no fresh burst for each.
func TestRateLimitNetwork(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	_, send := rateLimited(clock)
	passed := 0
	for i := range 3 * maxRateClients {
		if send(fmt.Sprintf("[2001:db8:7:%x::1]:40000", i)) == http.StatusOK {
			passed++
		}
	}
	if passed != netFactor {
		t.Fatalf("%d requests from %d /64s of one /48 passed, want %d", passed, 3*maxRateClients, netFactor)
	}
	if st := send("[2001:db8:8::1]:40000"); st != http.StatusOK {
		t.Fatalf("the next /48: %d", st)
	}
}
