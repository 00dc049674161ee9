package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/pairing"
)

// readyzBody is the /readyz answer.
type readyzBody struct {
	Code    string            `json:"code"`
	Message string            `json:"message"`
	Status  string            `json:"status"`
	Checks  map[string]string `json:"checks"`
}

// TestReadinessFollowsDTAs: a stopped DTA degrades the server without taking it out
// of rotation: /readyz stays 200 with status "degraded" naming it, the DTA's and the
// dependency's gauges drop to 0, one log line says so however often /readyz is
// asked, and what needs every DTA (redeeming an enrolment code, permits, a renewal)
// answers 503 "dta_unavailable" naming it, without using up the code or counting a
// failure. Logins go on. Everything comes back by itself when the DTA restarts; a
// fatal check (keys) still answers 503 "not_ready".
func TestReadinessFollowsDTAs(t *testing.T) {
	e := newEnv(t, 3600)
	h := e.start(t, t.TempDir(), false, func(c *Config) { c.DTAProbeInterval = 50 * time.Millisecond })
	readyz := func() (int, readyzBody) {
		t.Helper()
		resp, err := h.http.Get(h.url + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var b readyzBody
		if err := json.Unmarshal(raw, &b); err != nil {
			t.Fatalf("readyz: %d %q: %v", resp.StatusCode, raw, err)
		}
		return resp.StatusCode, b
	}
	await := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 10 s", what)
			}
		}
	}
	var code int
	var body readyzBody
	await("ready with every DTA up", func() bool { code, body = readyz(); return code == http.StatusOK && body.Status == "ready" })
	if body.Checks["keys"] != "ok" || body.Checks["storage"] != "ok" || body.Checks["dtas"] != "ok" {
		t.Fatalf("readyz with every DTA up: %+v", body)
	}
	alice := h.enrol(t, wire.EnrolmentRequest{ID: "alice@example.test"}, "1234")
	var bob wire.EnrolmentCreated
	if st, b := do(t, h.http, "POST", h.url+"/v1/admin/enrolments", testAdmin, wire.EnrolmentRequest{ID: "bob@example.test"}, &bob); st != 200 {
		t.Fatalf("create enrolment: %d %s", st, b)
	}
	logStart := len(logBuf.String())

	down := e.d.DTAs[1]
	down.Stop()
	await("degraded with DTA 2 stopped", func() bool { code, body = readyz(); return body.Status == "degraded" })
	for range 5 {
		if code, body = readyz(); code != http.StatusOK || body.Status != "degraded" || body.Code != "" ||
			body.Checks["keys"] != "ok" || body.Checks["storage"] != "ok" ||
			!strings.HasPrefix(body.Checks["dtas"], "degraded: DTA 2 unreachable: ") || strings.Contains(body.Checks["dtas"], "DTA 1") {
			t.Fatalf("readyz with DTA 2 stopped: %d %+v", code, body)
		}
	}
	if strings.Contains(body.Checks["dtas"], down.URL) {
		t.Fatalf("readyz names the DTA's URL: %+v", body)
	}
	metrics := h.metrics(t)
	for _, line := range []string{`polyroot_server_dta_up{dta="1"} 1`, `polyroot_server_dta_up{dta="2"} 0`, `polyroot_server_dta_up{dta="3"} 1`,
		`polyroot_server_dependency_up{dependency="dtas"} 0`, `polyroot_server_dependency_up{dependency="keys"} 1`,
		`polyroot_server_dependency_up{dependency="storage"} 1`} {
		if !strings.Contains(metrics, line) {
			t.Errorf("metrics lack %s", line)
		}
	}
	if logs := logBuf.String()[logStart:]; strings.Count(logs, `msg="degraded: a dependency is unavailable`) != 1 ||
		!strings.Contains(logs, `dependency=dtas`) {
		t.Errorf("want one line saying the server is degraded, got:\n%s", logs)
	}

	// Logins need no DTA.
	if res := h.login(t, alice, "1234", loginOpts{}); res.status != 200 {
		t.Fatalf("login with DTA 2 stopped: %d %s", res.status, res.body)
	}
	// What needs every DTA fails fast, naming the one that is down, and uses up nothing.
	wantUnavailable := func(what string, st int, b []byte) {
		t.Helper()
		var e struct{ Code, Message string }
		json.Unmarshal(b, &e)
		if st != http.StatusServiceUnavailable || e.Code != "dta_unavailable" || !strings.HasPrefix(e.Message, "DTA 2 unreachable: ") {
			t.Fatalf("%s with DTA 2 stopped: %d %s", what, st, b)
		}
	}
	bobClient := &tclient{domain: e.d.Name}
	redeem := bobClient.redeemRequest(t, bob.Code)
	st, b := do(t, h.http, "POST", h.url+"/v1/enrol", "", redeem, nil)
	wantUnavailable("redeeming a code", st, b)
	if !strings.Contains(string(b), "the enrolment code was not used") {
		t.Fatalf("the 503 does not say the code is still valid: %s", b)
	}
	res := h.login(t, alice, "1234", loginOpts{})
	st, b = do(t, h.http, "POST", h.url+"/v1/permits", res.fin.AccessToken, wire.PermitRequest{}, nil)
	wantUnavailable("permits", st, b)
	if res := h.login(t, alice, "1234", loginOpts{renew: true}); res.status != http.StatusServiceUnavailable ||
		!strings.Contains(string(res.body), "dta_unavailable") {
		t.Fatalf("renewal with DTA 2 stopped: %d %s", res.status, res.body)
	}
	if res := h.login(t, alice, "1234", loginOpts{}); res.status != 200 {
		t.Fatalf("login after the refused renewal: %d %s", res.status, res.body)
	}

	down.Start()
	await("ready again after DTA 2 restarted", func() bool { code, body = readyz(); return code == http.StatusOK && body.Status == "ready" })
	if metrics = h.metrics(t); !strings.Contains(metrics, `polyroot_server_dta_up{dta="2"} 1`) ||
		!strings.Contains(metrics, `polyroot_server_dependency_up{dependency="dtas"} 1`) {
		t.Error("DTA 2 still down in the metrics")
	}
	logs := logBuf.String()[logStart:]
	if !strings.Contains(logs, "DTA ready again") || strings.Count(logs, `msg="dependency available again: no longer degraded" dependency=dtas`) != 1 {
		t.Errorf("want one line when the server is no longer degraded, got:\n%s", logs)
	}
	// The code refused while DTA 2 was down still redeems, and its shares come.
	var pkg wire.EnrolPackage
	if st, b := do(t, h.http, "POST", h.url+"/v1/enrol", "", redeem, &pkg); st != 200 {
		t.Fatalf("redeeming the code after DTA 2 came back: %d %s", st, b)
	}
	id, _ := pairing.NewIDHash(pkg.Domain, pkg.ID, pkg.Salt)
	e.fetch(t, "client", pkg.ClientTicket, id, bobClient.sealKey)

	// Keys and storage are fatal: without them the server answers 503 "not_ready".
	h.srv.ready.Store(false)
	if code, body = readyz(); code != http.StatusServiceUnavailable || body.Code != "not_ready" || body.Status != "not_ready" ||
		body.Message != "keys: not loaded, or the server is stopping" || body.Checks["dtas"] != "ok" {
		t.Fatalf("readyz without keys: %d %+v", code, body)
	}
	h.srv.ready.Store(true)
}

// pingStore is a state database that counts its readiness checks (ping), holds each
// until release is closed and then answers err.
type pingStore struct {
	stateStore
	pings   atomic.Int32
	release chan struct{}
	err     error
}

func (p *pingStore) ping(context.Context) error {
	p.pings.Add(1)
	<-p.release
	return p.err
}

// TestReadyzSharesStorageCheck: a flood of /readyz, at once and then one after the
// other, asks the state database once (twice if it straddles storageCheckEvery), and
// every answer is what a check of its own would have given: 200 "ready" while the
// database answers, 503 "not_ready" naming storage, also shared, while it does not.
func TestReadyzSharesStorageCheck(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		status int
		body   readyzBody
	}{
		{"ok/database-answers", nil, http.StatusOK,
			readyzBody{Status: "ready", Checks: map[string]string{"keys": "ok", "storage": "ok", "dtas": "ok"}}},
		{"fail/database-down", errors.New("connection refused"), http.StatusServiceUnavailable,
			readyzBody{Code: "not_ready", Message: "storage: the state database is not usable", Status: "not_ready",
				Checks: map[string]string{"keys": "ok", "storage": "failing: the state database is not usable", "dtas": "ok"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &pingStore{release: make(chan struct{}), err: tc.err}
			s := &Server{cfg: Config{Logger: slog.New(slog.DiscardHandler)}, store: st}
			s.probe = newDTAProbe(&bundle.Bundle{}, nil, s.cfg.Logger, nil)
			s.ready.Store(true)
			readyz := s.newReadiness()
			check := func(w *httptest.ResponseRecorder) {
				t.Helper()
				var b readyzBody
				if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil || w.Code != tc.status || b.Code != tc.body.Code ||
					b.Message != tc.body.Message || b.Status != tc.body.Status || !maps.Equal(b.Checks, tc.body.Checks) {
					t.Errorf("readyz: %d %s", w.Code, w.Body)
				}
			}
			const n = 50
			answers := make([]*httptest.ResponseRecorder, n)
			var wg sync.WaitGroup
			for i := range answers {
				answers[i] = httptest.NewRecorder()
				wg.Go(func() { readyz.ServeHTTP(answers[i], httptest.NewRequest(http.MethodGet, "/readyz", nil)) })
			}
			time.Sleep(50 * time.Millisecond) // the callers pile up behind the first check
			released := time.Now()
			close(st.release)
			wg.Wait()
			for _, w := range answers {
				check(w)
			}
			for range n {
				w := httptest.NewRecorder()
				readyz.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/readyz", nil))
				check(w)
			}
			// Once for the pile, and at most once more per storageCheckEvery since (a
			// stalled machine may take longer than one period for the rest).
			most := 2 + int32(time.Since(released)/storageCheckEvery)
			if p := st.pings.Load(); p < 1 || p > most {
				t.Fatalf("%d /readyz asked the state database %d times, want 1 to %d", 2*n, p, most)
			}
		})
	}
}

// TestSharedCheck: a sharedCheck runs again once its last result is older than its
// period, and a run does not end with the caller that started it (the others wait
// for its result).
func TestSharedCheck(t *testing.T) {
	var runs atomic.Int32
	c := &sharedCheck{every: time.Hour, timeout: time.Second, check: func(ctx context.Context) error {
		runs.Add(1)
		return ctx.Err()
	}}
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.run(gone); err != nil || runs.Load() != 1 {
		t.Fatalf("a run started by a caller that is gone: %v, %d runs", err, runs.Load())
	}
	if err := c.run(context.Background()); err != nil || runs.Load() != 1 {
		t.Fatalf("within the period: %v, %d runs", err, runs.Load())
	}
	c.mu.Lock()
	c.at = c.at.Add(-c.every) // the last result is a period old
	c.mu.Unlock()
	if err := c.run(context.Background()); err != nil || runs.Load() != 2 {
		t.Fatalf("after the period: %v, %d runs", err, runs.Load())
	}

	// A check that panics ends its run as a failure: nobody waits on it for ever.
	p := &sharedCheck{every: time.Hour, timeout: time.Second, check: func(context.Context) error { panic("boom") }}
	func() {
		defer func() { recover() }()
		p.run(context.Background())
	}()
	if err := p.run(context.Background()); err == nil {
		t.Fatal("the result of a run that panicked is not a failure")
	}
}
