package server

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/polyroot/polyroot/internal/httpx"
	"github.com/polyroot/polyroot/internal/testbin"
	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/server/middleware"
)

const testIntrospection = "introspection-token-0123456789"

func withIntrospection(c *Config) { c.IntrospectionToken = testIntrospection }

// introspect asks h about tok as RFC 7662 does (a form), with bearer as the caller's
// credential, and returns the status and the raw answer.
func introspect(t testing.TB, h *harness, bearer, tok string) (int, []byte) {
	t.Helper()
	return introspectBody(t, h, bearer, "application/x-www-form-urlencoded", []byte(url.Values{"token": {tok}}.Encode()))
}

func introspectBody(t testing.TB, h *harness, bearer, contentType string, body []byte) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.url+"/v1/token/introspect", bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := h.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == 200 && resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("introspection answered without Cache-Control no-store")
	}
	return resp.StatusCode, b
}

// active introspects tok on h and returns the answer, failing unless it is a 200.
func active(t testing.TB, h *harness, tok string) wire.Introspection {
	t.Helper()
	st, body := introspect(t, h, testIntrospection, tok)
	if st != 200 {
		t.Fatalf("introspection: %d %s", st, body)
	}
	var in wire.Introspection
	if err := json.Unmarshal(body, &in); err != nil {
		t.Fatal(err)
	}
	if !in.Active && string(body) != "{\"active\":false}\n" {
		t.Fatalf("an inactive token's answer says more than active false: %s", body)
	}
	return in
}

// loginToken logs c in on h and returns the access token and its jti.
func loginToken(t testing.TB, h *harness, c *tclient, pin string) (tok, jti string) {
	t.Helper()
	res := h.login(t, c, pin, loginOpts{})
	if res.status != 200 || res.fin.AccessToken == "" {
		t.Fatalf("login: %d %s", res.status, res.body)
	}
	c2, err := middleware.NewKeySet(h.srv.TokenPublicKey()).Verify(res.fin.AccessToken, h.e.d.Name, h.e.d.Name, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return res.fin.AccessToken, c2.ID
}

func revokeJTI(t testing.TB, h *harness, jti string) (int, []byte) {
	t.Helper()
	return do(t, h.http, "POST", h.url+"/v1/admin/tokens/revoke", testAdmin, wire.TokenRevokeRequest{JTI: jti}, nil)
}

// TestTokenRevocation: a token revoked by its jti, or with its identity, is inactive at
// introspection and refused at /v1/permits, also after a restart; other tokens are not
// touched; a blocked identity's tokens stay active; the middleware's Introspector sees
// a revocation at once with its cache off.
func TestTokenRevocation(t *testing.T) {
	e := newEnv(t, 3600)
	h := e.start(t, t.TempDir(), false, withIntrospection)
	alice := h.enrol(t, wire.EnrolmentRequest{ID: "alice"}, "1234")
	tok1, jti1 := loginToken(t, h, alice, "1234")
	tok2, _ := loginToken(t, h, alice, "1234")
	permits := func(tok string) int {
		st, _ := do(t, h.http, "POST", h.url+"/v1/permits", tok, wire.PermitRequest{Days: 1}, nil)
		return st
	}

	t.Run("ok/active", func(t *testing.T) {
		in := active(t, h, tok1)
		if !in.Active || in.Sub != "alice" || in.JTI != jti1 || in.IDHash != alice.pkg.IDHash ||
			in.Exp-in.Iat != int64((15*time.Minute).Seconds()) || time.Since(time.Unix(in.Iat, 0)) > time.Minute {
			t.Fatalf("introspection of a fresh token: %+v", in)
		}
		st, body := introspectBody(t, h, testIntrospection, "application/json", []byte(`{"token":"`+tok1+`","token_type_hint":"access_token"}`))
		if st != 200 || !strings.Contains(string(body), `"active":true`) {
			t.Fatalf("introspection as JSON: %d %s", st, body)
		}
		if st := permits(tok1); st != 200 {
			t.Fatalf("permits with an active token: %d", st)
		}
	})
	t.Run("ok/revoked-jti", func(t *testing.T) {
		var res wire.TokenRevokeResult
		if st, body := do(t, h.http, "POST", h.url+"/v1/admin/tokens/revoke", testAdmin, wire.TokenRevokeRequest{JTI: jti1}, &res); st != 200 ||
			res.JTI != jti1 || time.Until(res.RevokedUntil) < 24*time.Hour {
			t.Fatalf("revoke the token: %d %s", st, body)
		}
		if in := active(t, h, tok1); in.Active {
			t.Fatalf("a revoked token is active: %+v", in)
		}
		if st := permits(tok1); st != 401 {
			t.Fatalf("permits with a revoked token: %d, want 401", st)
		}
		if in := active(t, h, tok2); !in.Active || permits(tok2) != 200 {
			t.Fatal("revoking one token revoked another of the same identity")
		}
		if st, body := revokeJTI(t, h, jti1); st != 200 {
			t.Fatalf("revoking again: %d %s", st, body)
		}
	})
	h.restart(t) // in the test, not a subtest: the restarted server lives as long as h
	if in := active(t, h, tok1); in.Active {
		t.Fatal("a revoked token is active after a restart")
	}
	t.Run("ok/unknown-jti-recorded", func(t *testing.T) {
		if st, body := revokeJTI(t, h, "no-such-token"); st != 200 {
			t.Fatalf("an unknown jti: %d %s", st, body)
		}
		if r, err := h.srv.store.tokenRevoked("no-such-token"); err != nil || !r {
			t.Fatalf("the unknown jti is not recorded: %v %v", r, err)
		}
	})
	t.Run("fail/bad-jti", func(t *testing.T) {
		for _, jti := range []string{"", "a b", strings.Repeat("x", 129), "é"} {
			if st, body := revokeJTI(t, h, jti); st != 400 || !strings.Contains(string(body), "bad_request") {
				t.Fatalf("jti %q: %d %s", jti, st, body)
			}
		}
		if st, _ := do(t, h.http, "POST", h.url+"/v1/admin/tokens/revoke", "", wire.TokenRevokeRequest{JTI: "x"}, nil); st != 401 {
			t.Fatalf("without the admin token: %d", st)
		}
		if st, _ := do(t, h.http, "POST", h.url+"/v1/admin/tokens/revoke", testIntrospection, wire.TokenRevokeRequest{JTI: "x"}, nil); st != 401 {
			t.Fatalf("with the introspection token: %d", st)
		}
	})
	t.Run("ok/revoked-identity", func(t *testing.T) {
		bob := h.enrol(t, wire.EnrolmentRequest{ID: "bob"}, "1234")
		old1, _ := loginToken(t, h, bob, "1234")
		old2, _ := loginToken(t, h, bob, "1234")
		if st, body := do(t, h.http, "POST", h.url+"/v1/admin/revoke", testAdmin, wire.IdentityRequest{ID: "bob"}, nil); st != 200 {
			t.Fatalf("revoke bob: %d %s", st, body)
		}
		for _, tok := range []string{old1, old2} {
			if in := active(t, h, tok); in.Active {
				t.Fatal("a token of a revoked identity is active")
			}
		}
		again := h.enrol(t, wire.EnrolmentRequest{ID: "bob"}, "5678")
		fresh, _ := loginToken(t, h, again, "5678")
		if in := active(t, h, fresh); !in.Active || in.Sub != "bob" || in.IDHash != again.pkg.IDHash {
			t.Fatalf("a new enrolment's token: %+v", in)
		}
		if in := active(t, h, tok2); !in.Active {
			t.Fatal("revoking bob revoked alice's token")
		}
	})
	t.Run("ok/blocked-identity-stays-active", func(t *testing.T) {
		carol := h.enrol(t, wire.EnrolmentRequest{ID: "carol"}, "1234")
		tok, _ := loginToken(t, h, carol, "1234")
		for range 3 {
			h.login(t, carol, "0000", loginOpts{})
		}
		if res := h.login(t, carol, "1234", loginOpts{}); res.status != 401 {
			t.Fatalf("carol is not blocked: %d", res.status)
		}
		if in := active(t, h, tok); !in.Active {
			t.Fatal("a blocked identity's token is inactive")
		}
	})
	t.Run("fail/invalid-tokens", func(t *testing.T) {
		now := time.Now()
		expired, _, _, err := h.srv.issueToken("alice", alice.id, nil, "", now.Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		claims := middleware.Claims{IDHash: alice.pkg.IDHash, RegisteredClaims: jwt.RegisteredClaims{
			Issuer: e.d.Name, Subject: "alice", Audience: jwt.ClaimStrings{e.d.Name},
			ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute)), IssuedAt: jwt.NewNumericDate(now)}}
		noJTI, _ := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims).SignedString(h.srv.cfg.TokenKey)
		_, other, _ := ed25519.GenerateKey(nil)
		claims.ID = "x"
		foreign, _ := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims).SignedString(other)
		claims.IDHash = strings.Repeat("00", 32)
		unknownID, _ := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims).SignedString(h.srv.cfg.TokenKey)
		for name, tok := range map[string]string{"garbage": "not-a-token", "expired": expired, "without-jti": noJTI,
			"other-key": foreign, "unknown-identity": unknownID, "too-long": tok2 + strings.Repeat("A", 5000)} {
			if in := active(t, h, tok); in.Active {
				t.Fatalf("%s: active", name)
			}
		}
	})
	t.Run("ok/middleware-introspector", func(t *testing.T) {
		in := middleware.NewIntrospector(h.url, testIntrospection, h.http, -1)
		app := middleware.NewWithConfig(middleware.Config{Keys: middleware.NewKeySet(h.srv.TokenPublicKey()),
			Audience: e.d.Name, Issuer: e.d.Name, Revoked: in.Revoked})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
		call := func(tok string) int {
			req, _ := http.NewRequest("GET", "/api", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			rec := httptest.NewRecorder()
			app.ServeHTTP(rec, req)
			return rec.Code
		}
		tok, jti := loginToken(t, h, alice, "1234")
		if st := call(tok); st != 200 {
			t.Fatalf("an active token: %d", st)
		}
		revokeJTI(t, h, jti)
		if st := call(tok); st != 401 {
			t.Fatalf("a revoked token through the Introspector: %d", st)
		}
	})
	for _, secret := range []string{tok1, tok2, testIntrospection} {
		if strings.Contains(logBuf.String(), secret) {
			t.Fatal("a token is in the server's log")
		}
	}
}

// TestIntrospectionAuth: the endpoint is 404 while the server has no introspection
// token, 401 without the right one (the admin token is not it), and refuses malformed
// requests without quoting them; the configuration is checked.
func TestIntrospectionAuth(t *testing.T) {
	e := newEnv(t, 0)
	off := e.start(t, t.TempDir(), false)
	for _, bearer := range []string{"", testIntrospection, testAdmin} {
		if st, body := introspect(t, off, bearer, "x"); st != 404 || !strings.Contains(string(body), "not_found") {
			t.Fatalf("introspection off, bearer %q: %d %s", bearer, st, body)
		}
	}
	h := e.start(t, t.TempDir(), false, withIntrospection)
	for _, bearer := range []string{"", "wrong-token-0123456789abcdef", testAdmin, testIntrospection + "x", testIntrospection[:20]} {
		if st, body := introspect(t, h, bearer, "x"); st != 401 || !strings.Contains(string(body), "unauthorized") {
			t.Fatalf("bearer %q: %d %s", bearer, st, body)
		}
	}
	if st, body := introspect(t, h, testIntrospection, "x"); st != 200 || string(body) != "{\"active\":false}\n" {
		t.Fatalf("the right bearer: %d %s", st, body)
	}
	const secret = "eyJzZWNyZXQtdG9rZW4"
	for _, tc := range []struct {
		name, contentType, body string
		status                  int
	}{
		{"fail/text-plain", "text/plain", "token=" + secret, 415},
		{"fail/no-content-type", "", "token=" + secret, 415},
		{"fail/no-token", "application/x-www-form-urlencoded", "token_type_hint=access_token", 400},
		{"fail/token-twice", "application/x-www-form-urlencoded", "token=" + secret + "&token=" + secret, 400},
		{"fail/bad-form", "application/x-www-form-urlencoded", "token=" + secret + "%zz", 400},
		{"fail/json-unknown-field", "application/json", `{"token":"` + secret + `","x":1}`, 400},
		{"fail/json-not-string", "application/json", `{"token":12345678901234567890}`, 400},
		{"fail/too-large", "application/x-www-form-urlencoded", "token=" + strings.Repeat("A", 17<<10), 413},
		{"ok/extra-form-parameters", "application/x-www-form-urlencoded", "token=" + secret + "&token_type_hint=access_token&foo=bar", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, body := introspectBody(t, h, testIntrospection, tc.contentType, []byte(tc.body))
			if st != tc.status || strings.Contains(string(body), secret) {
				t.Fatalf("%d %s, want %d without the token", st, body, tc.status)
			}
		})
	}
	for _, bad := range []string{"short", testAdmin} {
		cfg := e.config(t.TempDir(), h.tokenKey)
		cfg.IntrospectionToken = bad
		if _, err := New(t.Context(), cfg); err == nil || strings.Contains(err.Error(), bad) {
			t.Fatalf("introspection token %q: %v", bad, err)
		}
	}
}

// TestOIDCPostgres: TestOIDCTokenLifecycle on the PostgreSQL store (a logout's key once
// held a NUL, which PostgreSQL's text refuses: userinfo failed for every token and no
// logout was recorded).
func TestOIDCPostgres(t *testing.T) {
	pg := testbin.StartPostgres(t)
	url := pg.CreateDatabase(t)
	var ahead atomic.Int64
	o := newOIDCEnv(t, func(c *Config) {
		c.Store, c.DatabaseURL, c.Migrate = "postgres", url, true
		c.Now = func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
	})
	checkTokenLifecycle(t, o, &ahead)
}

// TestPostgresTokenRevocationReplicas: two in-process replicas on one PostgreSQL
// database: a token revoked on one, by its jti or with its identity, is inactive on
// the other at once and refused at its /v1/permits; the pruner's store call deletes
// the record once it has ended.
func TestPostgresTokenRevocationReplicas(t *testing.T) {
	pg := testbin.StartPostgres(t)
	url := pg.CreateDatabase(t)
	e := newEnv(t, 3600)
	_, tokenKey, _ := ed25519.GenerateKey(nil)
	onPostgres := func(c *Config) {
		c.Store, c.DatabaseURL, c.Migrate, c.TokenKey = "postgres", url, true, tokenKey
		c.IntrospectionToken = testIntrospection
	}
	a := e.start(t, t.TempDir(), false, onPostgres)
	b := e.start(t, t.TempDir(), false, onPostgres)
	alice := a.enrol(t, wire.EnrolmentRequest{ID: "alice"}, "1234")
	tok1, jti1 := loginToken(t, a, alice, "1234")
	tok2, _ := loginToken(t, b, alice, "1234")
	for _, h := range []*harness{a, b} {
		if in := active(t, h, tok1); !in.Active {
			t.Fatal("a fresh token is inactive on a replica")
		}
	}
	if st, body := revokeJTI(t, a, jti1); st != 200 {
		t.Fatalf("revoke on a: %d %s", st, body)
	}
	if in := active(t, b, tok1); in.Active {
		t.Fatal("revoked on one replica, active on the other")
	}
	if st, _ := do(t, b.http, "POST", b.url+"/v1/permits", tok1, wire.PermitRequest{Days: 1}, nil); st != 401 {
		t.Fatalf("permits on the other replica with a revoked token: %d", st)
	}
	if in := active(t, a, tok2); !in.Active {
		t.Fatal("another token of the identity is inactive")
	}
	if st, body := do(t, b.http, "POST", b.url+"/v1/admin/revoke", testAdmin, wire.IdentityRequest{ID: "alice"}, nil); st != 200 {
		t.Fatalf("revoke alice on b: %d %s", st, body)
	}
	if in := active(t, a, tok2); in.Active {
		t.Fatal("the identity revoked on one replica, its token active on the other")
	}
	if n, err := a.srv.store.pruneRevokedTokens(time.Now()); err != nil || n != 0 {
		t.Fatalf("pruned %d, %v before the end", n, err)
	}
	if n, err := b.srv.store.pruneRevokedTokens(time.Now().Add(25 * time.Hour)); err != nil || n != 1 {
		t.Fatalf("pruned %d, %v after the end, want 1", n, err)
	}
}

// FuzzIntrospectionRequest: the introspection body decoder never panics, answers
// only a token or a 4xx *httpx.Error, agrees with url.ParseQuery and encoding/json on
// the token, and never quotes the token in an error.
func FuzzIntrospectionRequest(f *testing.F) {
	for _, s := range [][2]string{
		{"application/x-www-form-urlencoded", "token=abc.def.ghi"},
		{"application/x-www-form-urlencoded", "token=a&token=b"},
		{"application/x-www-form-urlencoded; charset=utf-8", "token_type_hint=x&token=%41"},
		{"application/x-www-form-urlencoded", "token=%zz"},
		{"application/json", `{"token":"abc"}`},
		{"application/json", `{"token":"abc","token_type_hint":"access_token"}`},
		{"application/json", `{"token":"abc","token":"def"}`},
		{"text/plain", "token=abc"},
		{"", ""},
	} {
		f.Add(s[0], []byte(s[1]))
	}
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		tok, err := decodeIntrospectionRequest(contentType, body)
		if err != nil {
			var he *httpx.Error
			if !errors.As(err, &he) || he.Status/100 != 4 || tok != "" {
				t.Fatalf("error %v (%T), token %q", err, err, tok)
			}
			// The token a lenient reader finds is not in the message (unless the body
			// has it twice: as a field name too, which a message may name).
			var lenient struct{ Token string }
			json.Unmarshal(body, &lenient)
			form, _ := url.ParseQuery(string(body))
			for _, secret := range append(form["token"], lenient.Token) {
				if len(secret) >= 8 && strings.Count(string(body), secret) <= 1 && strings.Contains(he.Message, secret) {
					t.Fatalf("the error quotes the token: %s", he.Message)
				}
			}
			return
		}
		if tok == "" {
			t.Fatal("no error and no token")
		}
		if mt, _, _ := mime.ParseMediaType(contentType); mt == "application/json" {
			var req wire.IntrospectionRequest
			if json.Unmarshal(body, &req) != nil || req.Token != tok {
				t.Fatalf("JSON token %q, encoding/json reads %q", tok, req.Token)
			}
		} else if form, err := url.ParseQuery(string(body)); err != nil || len(form["token"]) != 1 || form["token"][0] != tok {
			t.Fatalf("form token %q, url.ParseQuery reads %v (%v)", tok, form["token"], err)
		}
	})
}
