package httpx

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
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
	h := logRequests(logger, limit.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})), newThrottleLog(clock.now))
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
