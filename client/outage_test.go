package client

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/polyroot/polyroot/internal/testnet"
	"github.com/polyroot/polyroot/server"
)

// serverLog collects the auth server's log lines in a test.
type serverLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *serverLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *serverLog) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// TestLoginsOutliveDTAs: every DTA of the domain stops, and the auth server, behind a
// load balancer that routes only to instances whose /readyz is 200, stays in rotation:
// its /readyz is 200 "degraded" naming the DTAs; enrolled clients go on logging in
// for as long as their permits last; enrolment and permits fail at once with a 503
// "dta_unavailable" naming the DTAs, without using up the code. When the DTAs come
// back everything recovers by itself, with nothing restarted: the refused code
// enrols, permits come, /readyz is "ready" again.
func TestLoginsOutliveDTAs(t *testing.T) {
	logs := &serverLog{}
	e := newEnv(t, func(c *server.Config) {
		c.DTAProbeInterval = 50 * time.Millisecond
		c.Logger = slog.New(slog.NewTextHandler(logs, nil))
	})
	lb := testnet.NewReadyProxy(t, e.serverHTTP(), 20*time.Millisecond, e.url)
	ctx := context.Background()
	pin := []byte("4921")
	// The clients' clock is the server's, which the test moves across permit periods.
	open := func(dir string) *Client {
		c, err := Open(dir, WithServerClient(e.serverHTTP()), WithDTAClient(e.dtaHTTP), WithNow(e.serverNow))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	alice := open(e.dir)
	if err := alice.Enroll(ctx, lb.URL, e.enrolment(t, "alice@example.com", false), pin, false); err != nil {
		t.Fatal(err)
	}
	bobDir := t.TempDir()
	if err := Bootstrap(ctx, bobDir, e.d.WriteBundle(t.TempDir()), e.d.Fingerprint); err != nil {
		t.Fatal(err)
	}
	bob := open(bobDir)
	bobCode := e.enrolment(t, "bob@example.com", false)

	readyz := func() (int, string) {
		t.Helper()
		resp, err := e.serverHTTP().Get(lb.URL + "/readyz")
		if err != nil {
			t.Fatalf("readyz through the proxy: %v (%+v)", err, lb.Backends())
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	await := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 10 s", what)
			}
		}
	}
	metrics := func() string {
		rec := httptest.NewRecorder()
		e.srv.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		return rec.Body.String()
	}
	wantUnavailable := func(what string, err error) {
		t.Helper()
		var api *APIError
		if !errors.As(err, &api) || api.Status != http.StatusServiceUnavailable || api.Code != "dta_unavailable" ||
			!strings.HasPrefix(api.Message, "DTA 1 unreachable, DTA 2 unreachable, DTA 3 unreachable: ") || api.RetryAfter <= 0 {
			t.Fatalf("%s with every DTA down: %v, want a 503 dta_unavailable naming the DTAs", what, err)
		}
	}

	for _, x := range e.d.DTAs {
		x.Stop()
	}
	var code int
	var body string
	want := `"status":"degraded","checks":{"dtas":"degraded: DTA 1 unreachable, DTA 2 unreachable, DTA 3 unreachable: `
	await("degraded naming every DTA", func() bool { code, body = readyz(); return strings.Contains(body, want) })
	if code != http.StatusOK || !strings.Contains(body, `"keys":"ok"`) {
		t.Fatalf("readyz with every DTA down: %d %s", code, body)
	}

	// Logins need no DTA: they go on, in every permit period the client holds.
	for period := range 3 {
		e.setServerClock(time.Duration(period) * testPeriod * time.Second)
		for range 2 {
			s, err := alice.Login(ctx, lb.URL, pin)
			if err != nil {
				t.Fatalf("login in permit period +%d with every DTA down: %v", period, err)
			}
			if period == 0 {
				e.verifyToken(t, s.AccessToken)
			}
		}
	}
	// Past the last permit, a renewal needs the DTAs: refused at once, nothing counted.
	e.setServerClock(3 * testPeriod * time.Second)
	if _, err := alice.Login(ctx, lb.URL, pin); !errors.Is(err, ErrPermitExpired) {
		t.Fatalf("login past the last permit: %v, want ErrPermitExpired", err)
	}
	wantUnavailable("a renewal", alice.RenewPermits(ctx, lb.URL, pin, 0))
	e.setServerClock(0)

	// Enrolment and permits need every DTA: refused at once, naming them.
	wantUnavailable("enrolment", bob.Enroll(ctx, lb.URL, bobCode, pin, false))
	if bob.Status().Enrolled {
		t.Fatal("bob is enrolled without the DTAs")
	}
	s, err := alice.Login(ctx, lb.URL, pin)
	if err != nil {
		t.Fatal(err)
	}
	wantUnavailable("permits", alice.RefreshPermits(ctx, lb.URL, s.AccessToken, 0))

	if st := lb.Backends()[0]; !st.InRotation || st.Left != 0 {
		t.Fatalf("the load balancer took the server out of rotation: %+v", st)
	}
	if m := metrics(); !strings.Contains(m, `polyroot_server_dependency_up{dependency="dtas"} 0`) ||
		!strings.Contains(m, `polyroot_server_dependency_up{dependency="keys"} 1`) {
		t.Fatalf("dependency gauges with every DTA down:\n%s", m)
	}

	// The DTAs come back: everything recovers by itself.
	for _, x := range e.d.DTAs {
		x.Start()
	}
	await("ready again", func() bool { code, body = readyz(); return strings.Contains(body, `"status":"ready"`) })
	if err := bob.Enroll(ctx, lb.URL, bobCode, pin, false); err != nil {
		t.Fatalf("enrolment with the code refused during the outage: %v", err)
	}
	if _, err := bob.Login(ctx, lb.URL, pin); err != nil {
		t.Fatalf("bob's login: %v", err)
	}
	if s, err = alice.Login(ctx, lb.URL, pin); err != nil {
		t.Fatal(err)
	}
	if err := alice.RefreshPermits(ctx, lb.URL, s.AccessToken, 0); err != nil {
		t.Fatalf("permits after the DTAs came back: %v", err)
	}
	if m := metrics(); !strings.Contains(m, `polyroot_server_dependency_up{dependency="dtas"} 1`) {
		t.Fatalf("dependency gauge after the DTAs came back:\n%s", m)
	}
	out := logs.String()
	if strings.Count(out, "degraded: a dependency is unavailable") != 1 || strings.Count(out, "dependency available again") != 1 {
		t.Fatalf("want one log line when the server became degraded and one when it recovered:\n%s", out)
	}
	if st := lb.Backends()[0]; st.Left != 0 {
		t.Fatalf("the server left the rotation: %+v", st)
	}
}
