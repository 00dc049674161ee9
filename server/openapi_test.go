package server

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/polyroot/polyroot/internal/openapitest"
	"github.com/polyroot/polyroot/internal/wire"
)

// TestOpenAPIRoutes compares the route table with openapi.yaml both ways: a route the
// document lacks fails, and so does a documented operation that no route serves.
func TestOpenAPIRoutes(t *testing.T) {
	doc := openapitest.Load(t, openAPI)
	h := newEnv(t, 0).start(t, t.TempDir(), false)
	openapitest.CheckRoutes(t, h.srv.routes(), doc)
}

// TestOpenAPIResponses runs a server and checks real answers of every kind, successes
// and errors, against the responses openapi.yaml documents for them; and that the
// server serves the committed document.
func TestOpenAPIResponses(t *testing.T) {
	doc := openapitest.Load(t, openAPI)
	committed, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, 3600)
	h := e.start(t, t.TempDir(), false, func(c *Config) { c.DTAProbeInterval = 50 * time.Millisecond }, withIntrospection)
	v := openapitest.NewValidator(t, doc)
	h.http = v.Client(h.http.Transport)
	expect := func(method, path, bearer string, in any, status int) []byte {
		t.Helper()
		got, body := do(t, h.http, method, h.url+path, bearer, in, nil)
		if got != status {
			t.Fatalf("%s %s: got %d %s, want %d", method, path, got, body, status)
		}
		return body
	}
	raw := func(method, path, contentType string, body []byte, status int) {
		t.Helper()
		req, _ := http.NewRequest(method, h.url+path, bytes.NewReader(body))
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		resp, err := h.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != status {
			t.Fatalf("%s %s: got %d %s, want %d", method, path, resp.StatusCode, b, status)
		}
	}

	if served := expect("GET", "/v1/openapi.yaml", "", nil, 200); !bytes.Equal(served, committed) {
		t.Error("GET /v1/openapi.yaml is not the committed openapi.yaml")
	}
	expect("GET", "/v1/bundle", "", nil, 200)
	expect("HEAD", "/v1/bundle", "", nil, 200)
	expect("GET", "/.well-known/jwks.json", "", nil, 200)
	expect("GET", "/livez", "", nil, 200)

	// Registrar and enrolment.
	c := h.enrol(t, wire.EnrolmentRequest{ID: "quinn@example.test", TTL: 86400}, "1234")
	expect("POST", "/v1/admin/enrolments", "", wire.EnrolmentRequest{ID: "x"}, 401)
	expect("POST", "/v1/admin/enrolments", testAdmin, wire.EnrolmentRequest{}, 400)
	expect("POST", "/v1/admin/enrolments", testAdmin, map[string]any{"id": "x", "admin": true}, 400)
	raw("POST", "/v1/enrol", "text/plain", []byte(`{"code":"x"}`), 415)
	raw("POST", "/v1/enrol", "application/json", bytes.Repeat([]byte(" "), 17<<10), 413)
	expect("POST", "/v1/enrol", "", h.redeemRequest(t, strings.Repeat("A", 20)), 404)
	expect("POST", "/v1/admin/unblock", testAdmin, wire.IdentityRequest{ID: "quinn@example.test"}, 200)
	expect("POST", "/v1/admin/unblock", testAdmin, wire.IdentityRequest{ID: "nobody"}, 404)
	expect("POST", "/v1/admin/revoke", testAdmin, wire.IdentityRequest{IDHash: "zz"}, 400)

	// Logins, renewals and permits.
	res := h.login(t, c, "1234", loginOpts{})
	if res.status != 200 {
		t.Fatalf("login: %d %s", res.status, res.body)
	}
	expect("POST", "/v1/permits", res.fin.AccessToken, wire.PermitRequest{Days: 2}, 200)
	expect("POST", "/v1/permits", res.fin.AccessToken, wire.PermitRequest{Days: 99}, 400)
	expect("POST", "/v1/permits", "", wire.PermitRequest{}, 401)

	// Token revocation and introspection.
	introspect := func(bearer, contentType, body string, status int) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, h.url+"/v1/token/introspect", strings.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := h.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != status {
			t.Fatalf("POST /v1/token/introspect: got %d %s, want %d", resp.StatusCode, b, status)
		}
	}
	form := "application/x-www-form-urlencoded"
	introspect(testIntrospection, form, "token="+res.fin.AccessToken+"&token_type_hint=access_token", 200)
	introspect(testIntrospection, "application/json", `{"token":"`+res.fin.AccessToken+`"}`, 200)
	introspect("", form, "token=x", 401)
	introspect(testIntrospection, form, "token_type_hint=access_token", 400)
	introspect(testIntrospection, "text/plain", "token=x", 415)
	expect("POST", "/v1/admin/tokens/revoke", testAdmin, wire.TokenRevokeRequest{JTI: "jti-of-another-token"}, 200)
	expect("POST", "/v1/admin/tokens/revoke", testAdmin, wire.TokenRevokeRequest{JTI: "two words"}, 400)
	expect("POST", "/v1/admin/tokens/revoke", "", wire.TokenRevokeRequest{JTI: "x"}, 401)
	if res := h.login(t, c, "1234", loginOpts{renew: true, days: 2}); res.status != 200 {
		t.Fatalf("renewal: %d %s", res.status, res.body)
	}
	if res := h.login(t, c, "9999", loginOpts{}); res.status != 401 || res.failure.Code != "login_failed" {
		t.Fatalf("wrong PIN: %d %s", res.status, res.body)
	}
	if res := h.login(t, c, "1234", loginOpts{binding: bytes.Repeat([]byte{1}, 32)}); res.status != 401 ||
		!strings.Contains(string(res.body), "channel_binding_mismatch") {
		t.Fatalf("other channel: %d %s", res.status, res.body)
	}
	future := c.pkg.LastSlot
	if res := h.login(t, c, "1234", loginOpts{slot: &future}); res.status != 409 {
		t.Fatalf("a future slot: %d %s", res.status, res.body)
	}
	expect("POST", "/v1/login/start", "", wire.StartRequest{Pass1: []byte("short")}, 400)
	raw("POST", "/v1/login/start", "application/json", bytes.Repeat([]byte(" "), 5<<10), 413)
	expect("POST", "/v1/login/finish", "", wire.FinishRequest{Pass2: make([]byte, 96)}, 400)

	// Revocation: the DTAs are told; afterwards the token no longer gets permits.
	expect("POST", "/v1/admin/revoke", testAdmin, wire.IdentityRequest{ID: "quinn@example.test"}, 200)
	expect("POST", "/v1/permits", res.fin.AccessToken, wire.PermitRequest{}, 403)

	expect("GET", "/readyz", "", nil, 200)
	h.srv.ready.Store(false)
	expect("GET", "/readyz", "", nil, 503)
	h.srv.ready.Store(true)

	// A DTA down: /readyz degraded (200), and what needs every DTA answers 503.
	e.d.DTAs[1].Stop()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(string(expect("GET", "/readyz", "", nil, 200)), "degraded"); {
		if time.Now().After(deadline) {
			t.Fatal("/readyz not degraded within 10 s of stopping DTA 2")
		}
		time.Sleep(20 * time.Millisecond)
	}
	var created wire.EnrolmentCreated
	do(t, h.http, "POST", h.url+"/v1/admin/enrolments", testAdmin, wire.EnrolmentRequest{ID: "rita@example.test"}, &created)
	expect("POST", "/v1/enrol", "", h.redeemRequest(t, created.Code), 503)
	expect("POST", "/v1/permits", res.fin.AccessToken, wire.PermitRequest{}, 503)
	if res := h.login(t, c, "1234", loginOpts{renew: true}); res.status != 503 {
		t.Fatalf("renewal with DTA 2 down: %d %s", res.status, res.body)
	}
	e.d.DTAs[1].Start()

	// The rate limit, on a second server with a low one.
	h2 := e.start(t, t.TempDir(), false, func(c *Config) { c.RatePerSecond, c.RateBurst = 0.5, 1 })
	h2.http = v.Client(h2.http.Transport)
	limited := false
	for i := 0; i < 5 && !limited; i++ {
		st, _ := do(t, h2.http, "GET", h2.url+"/.well-known/jwks.json", "", nil, nil)
		limited = st == http.StatusTooManyRequests
	}
	if !limited {
		t.Fatal("5 requests at once were not rate limited at 0.5/s")
	}

	v.RequireSeen(
		"GET /v1/openapi.yaml 200", "GET /v1/bundle 200", "GET /.well-known/jwks.json 200", "GET /.well-known/jwks.json 429",
		"GET /livez 200", "GET /readyz 200", "GET /readyz 503",
		"POST /v1/enrol 503", "POST /v1/permits 503", "POST /v1/login/start 503",
		"POST /v1/admin/enrolments 200", "POST /v1/admin/enrolments 400", "POST /v1/admin/enrolments 401",
		"POST /v1/enrol 200", "POST /v1/enrol 404", "POST /v1/enrol 413", "POST /v1/enrol 415",
		"POST /v1/admin/unblock 200", "POST /v1/admin/unblock 404", "POST /v1/admin/revoke 200", "POST /v1/admin/revoke 400",
		"POST /v1/login/start 200", "POST /v1/login/start 400", "POST /v1/login/start 409", "POST /v1/login/start 413",
		"POST /v1/login/finish 200", "POST /v1/login/finish 400", "POST /v1/login/finish 401",
		"POST /v1/permits 200", "POST /v1/permits 400", "POST /v1/permits 401", "POST /v1/permits 403",
		"POST /v1/token/introspect 200", "POST /v1/token/introspect 400", "POST /v1/token/introspect 401", "POST /v1/token/introspect 415",
		"POST /v1/admin/tokens/revoke 200", "POST /v1/admin/tokens/revoke 400", "POST /v1/admin/tokens/revoke 401",
	)
}
