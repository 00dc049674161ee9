package browsertest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/polyroot/polyroot/internal/testbin"
	"github.com/polyroot/polyroot/internal/testdomain"
	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/server"
)

// testAdmin is the auth server's admin token in the browser tests.
const testAdmin = "browser-admin-token-0123456789"

// testPeriod is the permit period of the test domains (one hour).
const testPeriod = 3600

// A Stack is the whole login stack of a browser test, behind one origin URL
// (http://127.0.0.1:port, a secure context for the page): the auth server with its
// API and its login pages (internal/webui, with the WebAssembly client built for the
// test as Config.WebDir), and the domain's DTAs on their own loopback origins. In
// front of the server sits a mux that can send the login API elsewhere (RouteLogin)
// and take more routes (Handle).
type Stack struct {
	Domain *testdomain.Domain
	Server *server.Server
	Config server.Config
	// URL is the page's origin, the auth server as the browser sees it.
	URL string

	mux   *http.ServeMux
	front *httptest.Server
	login atomic.Pointer[http.Handler] // where /v1/login/* goes; nil: the auth server
}

// A StackOption adjusts the auth server's configuration before it starts; origin is
// the page's origin (http://127.0.0.1:port), already listening, e.g. for the OpenID
// Provider's issuer.
type StackOption func(origin string, cfg *server.Config)

// StartStack starts a domain of three DTAs, its auth server (opts adjust its
// configuration) and the login pages, with the WebAssembly client built for the test
// binary. Everything stops when the test ends.
func StartStack(t *testing.T, opts ...StackOption) *Stack {
	t.Helper()
	testbin.Chromium(t) // skip (or fail under make test) before building anything
	wasm := wasmDir(t)
	s := &Stack{mux: http.NewServeMux()}
	s.front = httptest.NewUnstartedServer(s.mux) // listens already: its URL is known
	s.URL = "http://" + s.front.Listener.Addr().String()
	t.Cleanup(s.front.Close)
	d := testdomain.New(t, "browser.example.test", 3, testPeriod)
	sQ, err := server.Provision(context.Background(), d.Bundle, d.Registrar, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, tokenKey, _ := ed25519.GenerateKey(nil)
	cfg := server.Config{Bundle: d.Bundle, BundleFile: d.BundleFile, RegistrarKey: d.Registrar, ServerKey: sQ,
		TokenKey: tokenKey, AdminToken: testAdmin, DataDir: t.TempDir(), RatePerSecond: 1e6, RateBurst: 1e6,
		WebDir: wasm}
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	for _, o := range opts {
		o(s.URL, &cfg)
	}
	srv, err := server.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.front.Close() // no request in flight when the server closes
		srv.Close()
	})
	s.Domain, s.Server, s.Config = d, srv, cfg
	api := srv.Handler()
	s.mux.Handle("/", api)
	s.mux.Handle("/v1/login/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := s.login.Load(); h != nil {
			(*h).ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	}))
	s.front.Start()
	return s
}

// Handle adds a route to the stack's origin (e.g. the OpenID Provider's, until the
// server serves them), on top of the auth server's API and the login pages.
func (s *Stack) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// RouteLogin sends the origin's /v1/login/* requests to h instead of the auth server
// (nil: back to the auth server), as an attacker who controls the page's origin may.
func (s *Stack) RouteLogin(h http.Handler) {
	if h == nil {
		s.login.Store(nil)
		return
	}
	s.login.Store(&h)
}

// Enrolment creates an enrolment for id through the auth server's admin API (permits
// for seven permit periods, so that no login of a test is followed by the client's
// background renewal, which starts within three periods of the end) and returns its
// one-time code.
func (s *Stack) Enrolment(t *testing.T, id string) string {
	t.Helper()
	var created wire.EnrolmentCreated
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := postJSON(ctx, s.URL+"/v1/admin/enrolments", testAdmin, wire.EnrolmentRequest{ID: id, PermitDays: 7}, &created); err != nil {
		t.Fatalf("creating an enrolment for %s: %v", id, err)
	}
	return created.Code
}

// postJSON posts in as JSON with a bearer token and decodes a 2xx answer into out.
func postJSON(ctx context.Context, url, bearer string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: %s: %s", url, resp.Status, data)
	}
	return json.Unmarshal(data, out)
}
