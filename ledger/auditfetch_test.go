package ledger

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testPacer is a pacer with short backoffs, for a server that needs no Retry-After.
func testPacer(cfg AuditConfig) *auditPacer {
	if cfg.Workers == 0 {
		cfg.Workers = 4
	}
	p := newAuditPacer(&http.Client{Timeout: 5 * time.Second}, cfg)
	p.backoffBase, p.backoffMax = time.Millisecond, 10*time.Millisecond
	return p
}

func pacerGet(p *auditPacer, u string) (string, error) {
	resp, err := p.client().Get(u)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// TestAuditPacerRetryAfter: a 429 with Retry-After holds back every request to that
// DTA until it has passed, not only the one refused; then they all succeed.
func TestAuditPacerRetryAfter(t *testing.T) {
	var (
		mu       sync.Mutex
		refused  time.Time
		arrivals []time.Time
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if refused.IsZero() {
			refused = time.Now()
			w.Header().Set("Retry-After", "1")
			http.Error(w, `{"code":"rate_limited"}`, http.StatusTooManyRequests)
			return
		}
		arrivals = append(arrivals, time.Now())
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	p := testPacer(AuditConfig{})
	var statuses []int
	p.onRetry = func(status int, reason string, wait time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		statuses = append(statuses, status)
		if wait < time.Second || !strings.Contains(reason, "429 Too Many Requests") {
			t.Errorf("retry after %v (%s), want at least 1s for a 429", wait, reason)
		}
	}
	first := make(chan error, 1)
	go func() {
		body, err := pacerGet(p, srv.URL)
		if err == nil && body != "ok" {
			err = errors.New(body)
		}
		first <- err
	}()
	time.Sleep(200 * time.Millisecond) // the first is refused and waits
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if body, err := pacerGet(p, srv.URL); err != nil || body != "ok" {
				t.Errorf("%q, %v", body, err)
			}
		})
	}
	wg.Wait()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(arrivals) != 4 || len(statuses) != 1 || statuses[0] != 429 {
		t.Fatalf("%d requests served, retries %v; want 4 and one after a 429", len(arrivals), statuses)
	}
	for _, a := range arrivals {
		if d := a.Sub(refused); d < time.Second {
			t.Fatalf("a request reached the DTA %v after its 429 with Retry-After 1", d)
		}
	}
	if p.throttled.Load() != 1 || p.retries.Load() != 1 || p.waited.Load() < int64(time.Second) {
		t.Fatalf("throttled %d, retries %d, waited %v", p.throttled.Load(), p.retries.Load(), time.Duration(p.waited.Load()))
	}
}

// TestAuditPacerBounds: retries are bounded, a Retry-After beyond MaxRetryAfter is not
// waited for, and what cannot succeed by trying again is not retried.
func TestAuditPacerBounds(t *testing.T) {
	var served atomic.Int32
	handler := func(status int, retryAfter string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			served.Add(1)
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			w.WriteHeader(status)
		})
	}
	for _, tc := range []struct {
		name       string
		h          http.Handler
		maxRetries int
		tries      int32
		want       string // in the error; "" for a plain answer of that status
	}{
		{"always 429", handler(429, "0"), 3, 4, "the DTA answered 429 Too Many Requests; gave up after 4 tries"},
		{"503 without Retry-After", handler(503, ""), 2, 3, "the DTA answered 503 Service Unavailable; gave up after 3 tries"},
		{"502", handler(502, ""), 1, 2, "the DTA answered 502 Bad Gateway; gave up after 2 tries"},
		{"no retries", handler(429, "0"), -1, 1, "the DTA answered 429 Too Many Requests; gave up after 1 try (0s waited)"},
		{"Retry-After too long", handler(429, "3600"), 3, 1, "asking to wait 1h0m0s: longer than the auditor waits (2m0s)"},
		{"Retry-After date too long", handler(429, time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)), 3, 1, "longer than the auditor waits"},
		{"404 is an answer", handler(404, ""), 3, 1, ""},
		{"500 is an answer", handler(500, ""), 3, 1, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			served.Store(0)
			srv := httptest.NewServer(tc.h)
			defer srv.Close()
			p := testPacer(AuditConfig{MaxRetries: tc.maxRetries})
			resp, err := p.client().Get(srv.URL)
			switch {
			case tc.want == "" && err == nil:
				resp.Body.Close()
			case tc.want == "" || err == nil || !strings.Contains(err.Error(), tc.want):
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
			if got := served.Load(); got != tc.tries {
				t.Fatalf("%d tries, want %d", got, tc.tries)
			}
		})
	}

	// A refused connection is not retried: the DTA is down, and the audit says so at once.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	p := testPacer(AuditConfig{})
	if _, err := pacerGet(p, "http://"+addr+"/checkpoint"); err == nil || p.retries.Load() != 0 {
		t.Fatalf("refused connection: %v after %d retries", err, p.retries.Load())
	}

	// A cancelled audit stops waiting.
	srv := httptest.NewServer(handler(429, "60"))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	start := time.Now()
	if _, err := p.client().Do(req); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("cancelled while waiting: %v after %v", err, time.Since(start))
	}
}

// TestAuditPacerConnectionCut: a connection closed before the answer is retried.
func TestAuditPacerConnectionCut(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	p := testPacer(AuditConfig{})
	if body, err := pacerGet(p, srv.URL); err != nil || body != "ok" || p.retries.Load() != 1 || p.throttled.Load() != 0 {
		t.Fatalf("%q, %v, %d retries", body, err, p.retries.Load())
	}
}

// TestAuditPacerWindow: a refusal halves the requests in flight (at least one); as many
// answers without refusal as the window holds widen it by one, up to Workers.
func TestAuditPacerWindow(t *testing.T) {
	p := testPacer(AuditConfig{Workers: 8})
	ctx := context.Background()
	step := func(refused bool) {
		if err := p.acquire(ctx); err != nil {
			t.Fatal(err)
		}
		p.release(refused, 0)
	}
	for _, want := range []int{4, 2, 1, 1} {
		step(true)
		if p.window != want {
			t.Fatalf("window %d after a refusal, want %d", p.window, want)
		}
	}
	step(false)
	if p.window != 2 {
		t.Fatalf("window %d after 1 answer at 1, want 2", p.window)
	}
	for range 2 + 3 + 4 + 5 + 6 + 7 + 8 {
		step(false)
	}
	if p.window != 8 || p.inFlight != 0 {
		t.Fatalf("window %d (in flight %d), want back to 8", p.window, p.inFlight)
	}
	// A window of 1 lets one request at a time through.
	p.window = 1
	if err := p.acquire(ctx); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := p.acquire(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a second request in a window of 1: %v", err)
	}
	p.release(false, 0)
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"0": 0, "7": 7 * time.Second,
		now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second,
		now.Add(-time.Hour).Format(http.TimeFormat):       0,
	} {
		if got, ok := retryAfter(v, now); !ok || got != want {
			t.Errorf("Retry-After %q: %v %v, want %v", v, got, ok, want)
		}
	}
	for _, v := range []string{"", "soon", "-1", "1.5"} {
		if _, ok := retryAfter(v, now); ok {
			t.Errorf("Retry-After %q parsed", v)
		}
	}
}
