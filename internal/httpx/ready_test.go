package httpx

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// lockedBuffer is a log sink that the checks' goroutines may write to.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// TestReadinessDegradedAndFatal: a failing check that Degrades leaves /readyz 200 with
// status "degraded"; a failing fatal one makes it 503 "not_ready"; every check is in
// the body, each transition is logged once however often /readyz is asked, and the
// gauge follows.
func TestReadinessDegradedAndFatal(t *testing.T) {
	var logs lockedBuffer
	var keysDown, dtasDown atomic.Bool
	check := func(b *atomic.Bool, reason string) func(context.Context) error {
		return func(context.Context) error {
			if b.Load() {
				return errors.New(reason)
			}
			return nil
		}
	}
	r := NewReadiness(slog.New(slog.NewTextHandler(&logs, nil)), "test",
		ReadinessCheck{Name: "keys", Check: check(&keysDown, "not loaded")},
		ReadinessCheck{Name: "dtas", Check: check(&dtasDown, "DTA 2 unreachable"), Degrades: true})
	reg := prometheus.NewRegistry()
	reg.MustRegister(r)

	type answer struct {
		Code    string            `json:"code"`
		Message string            `json:"message"`
		Status  string            `json:"status"`
		Checks  map[string]string `json:"checks"`
	}
	get := func() (int, answer) {
		t.Helper()
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		var a answer
		if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil || rec.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("readyz body %q (%s): %v", rec.Body, rec.Header().Get("Content-Type"), err)
		}
		return rec.Code, a
	}
	// gauge is the scraped gauge, "dependency=value" sorted by dependency.
	gauge := func() string {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil || len(mfs) != 1 || mfs[0].GetName() != "polyroot_test_dependency_up" {
			t.Fatalf("gather: %v %v", mfs, err)
		}
		var out []string
		for _, m := range mfs[0].GetMetric() {
			out = append(out, fmt.Sprintf("%s=%g", m.GetLabel()[0].GetValue(), m.GetGauge().GetValue()))
		}
		return strings.Join(out, " ")
	}

	if code, a := get(); code != 200 || a.Status != StatusReady || a.Checks["keys"] != "ok" || a.Checks["dtas"] != "ok" {
		t.Fatalf("all up: %d %+v", code, a)
	}
	if g := gauge(); g != "dtas=1 keys=1" {
		t.Fatalf("gauge all up: %s", g)
	}

	dtasDown.Store(true)
	for range 5 {
		code, a := get()
		if code != 200 || a.Status != StatusDegraded || a.Checks["dtas"] != "degraded: DTA 2 unreachable" || a.Checks["keys"] != "ok" || a.Code != "" {
			t.Fatalf("DTAs down: %d %+v", code, a)
		}
	}
	if g := gauge(); g != "dtas=0 keys=1" {
		t.Fatalf("gauge DTAs down: %s", g)
	}
	if n := strings.Count(logs.String(), "level=WARN msg=\"degraded"); n != 1 {
		t.Fatalf("%d degraded lines after five probes and a scrape, want 1:\n%s", n, logs.String())
	}

	keysDown.Store(true)
	code, a := get()
	if code != 503 || a.Code != "not_ready" || a.Message != "keys: not loaded" || a.Status != StatusNotReady ||
		a.Checks["keys"] != "failing: not loaded" || a.Checks["dtas"] != "degraded: DTA 2 unreachable" {
		t.Fatalf("keys and DTAs down: %d %+v", code, a)
	}
	keysDown.Store(false)
	dtasDown.Store(false)
	for range 3 {
		if code, a := get(); code != 200 || a.Status != StatusReady {
			t.Fatalf("all back: %d %+v", code, a)
		}
	}
	out := logs.String()
	for want, n := range map[string]int{
		`level=WARN msg="not ready`:                        1,
		`level=INFO msg="readiness check passes again"`:    1,
		`level=INFO msg="dependency available again`:       1,
		`dependency=dtas reason="DTA 2 unreachable"`:       1,
		`level=WARN msg="degraded: a dependency is unavai`: 1,
	} {
		if got := strings.Count(out, want); got != n {
			t.Errorf("%q logged %d times, want %d:\n%s", want, got, n, out)
		}
	}
}
