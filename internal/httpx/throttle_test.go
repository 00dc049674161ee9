package httpx

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// fakeClock is a settable clock for the throttle log.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestThrottledRequestsSampled: a flood from one address makes one log line a minute,
// not one per request, and every throttled request is counted.
func TestThrottledRequestsSampled(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	throttled := NewThrottledCounter("test")
	limit := NewRateLimiter(0.001, 1, logger).CountThrottled(throttled)
	h := logRequests(logger, limit.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})), newThrottleLog(clock.now), newThrottleLog(clock.now))
	send := func(addr string, n int) (statuses map[int]int) {
		statuses = map[int]int{}
		for range n {
			r := httptest.NewRequest(http.MethodGet, "/v1/record", nil)
			r.RemoteAddr = net.JoinHostPort(addr, "40000")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			statuses[w.Code]++
		}
		return statuses
	}
	lines := func() []map[string]any {
		var out []map[string]any
		for _, l := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
			if len(l) == 0 {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal(l, &m); err != nil {
				t.Fatalf("log line %q: %v", l, err)
			}
			out = append(out, m)
		}
		return out
	}

	if st := send("192.0.2.1", 1000); st[200] != 1 || st[429] != 999 {
		t.Fatalf("statuses %v", st)
	}
	ls := lines()
	if len(ls) != 1 || ls[0]["msg"] != "request throttled" || ls[0]["client"] != "192.0.2.1" || ls[0]["throttled_unlogged"] != 0.0 || ls[0]["level"] != "INFO" {
		t.Fatalf("after 999 throttled requests the log has %d lines: %s", len(ls), buf.Bytes())
	}
	send("2001:db8::1", 10) // another address: its own line
	if ls = lines(); len(ls) != 2 || ls[1]["client"] != "2001:db8::1" {
		t.Fatalf("second address: %s", buf.Bytes())
	}
	clock.add(30 * time.Second)
	send("192.0.2.1", 5)
	if ls = lines(); len(ls) != 2 {
		t.Fatalf("within the minute: %s", buf.Bytes())
	}
	clock.add(30 * time.Second)
	send("192.0.2.1", 1)
	ls = lines()
	if len(ls) != 3 || ls[2]["client"] != "192.0.2.1" || ls[2]["throttled_unlogged"] != 998.0+5 {
		t.Fatalf("a minute later: %s", buf.Bytes())
	}
	if got := counterValue(t, throttled); got != 999+9+5+1 {
		t.Fatalf("counter %v, want %d", got, 999+9+5+1)
	}
}

// TestClientErrorsSampled: requests that fail for the client's fault (an unknown
// route with a long path, say) are logged at most once a minute per address, their
// path cut short, while every server error is logged.
func TestClientErrorsSampled(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	h := logRequests(logger, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		NotFound(logger).ServeHTTP(w, r)
	}), newThrottleLog(clock.now), newThrottleLog(clock.now))
	send := func(addr, path string, n int) {
		for range n {
			r := httptest.NewRequest(http.MethodGet, path, nil)
			r.RemoteAddr = net.JoinHostPort(addr, "40000")
			h.ServeHTTP(httptest.NewRecorder(), r)
		}
	}
	long := "/x/" + strings.Repeat("A", 8000)
	send("192.0.2.1", long, 300)
	send("192.0.2.2", "/y", 3)
	send("192.0.2.1", "/fail", 2)
	clock.add(ThrottleLogInterval)
	send("192.0.2.1", "/z", 1)
	var got []string
	for _, l := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		got = append(got, fmt.Sprintf("%v %v %v %v %v", m["msg"], m["client"], m["status"], len(m["path"].(string)), m["failed_unlogged"]))
	}
	want := []string{
		"request failed 192.0.2.1 404 259 0", // 256 bytes and "…"
		"request failed 192.0.2.2 404 2 0",
		"request <nil> 500 5 <nil>",
		"request <nil> 500 5 <nil>",
		"request failed 192.0.2.1 404 2 299",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("log lines\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if buf.Len() > 4096 {
		t.Fatalf("%d bytes of log", buf.Len())
	}
}

// TestThrottleLogBounded: however many addresses are throttled within a minute, the
// lines are bounded (the addresses beyond the table share one sample).
func TestThrottleLogBounded(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	tl := newThrottleLog(clock.now)
	logged := 0
	for i := range 3 * maxThrottleAddrs {
		for range 3 {
			if _, ok := tl.admit(fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&255, i&255)); ok {
				logged++
			}
		}
	}
	if logged != maxThrottleAddrs+1 || len(tl.addrs) != maxThrottleAddrs {
		t.Fatalf("%d lines, %d addresses remembered", logged, len(tl.addrs))
	}
	clock.add(ThrottleLogInterval)
	if n, ok := tl.admit("192.0.2.9"); !ok || n != 0 { // old entries are forgotten to make room
		t.Fatalf("a new address after a minute: %d %v", n, ok)
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 1 {
		t.Fatalf("gather: %v", err)
	}
	return mfs[0].GetMetric()[0].GetCounter().GetValue()
}
