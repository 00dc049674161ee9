package oidcop

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// memStore is a Store in memory, for the package's own tests (the auth server's two
// stores pass server's store suite).
type memStore struct {
	mu sync.Mutex
	m  map[string]memEntry
}

type memEntry struct {
	v   []byte
	exp time.Time
}

func (s *memStore) CreateOIDC(key string, value []byte, expires, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.m[key]; ok && e.exp.After(now) {
		return ErrExists
	}
	s.m[key] = memEntry{value, expires}
	return nil
}

func (s *memStore) PutOIDC(key string, value []byte, expires time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = memEntry{value, expires}
	return nil
}

func (s *memStore) GetOIDC(key string, now time.Time) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.m[key]; ok && e.exp.After(now) {
		return e.v, nil
	}
	return nil, ErrNotFound
}

func (s *memStore) TakeOIDC(key string, now time.Time) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[key]
	delete(s.m, key)
	if !ok || !e.exp.After(now) {
		return nil, ErrNotFound
	}
	return e.v, nil
}

// testProvider is a provider whose logins are the tokens "fresh-<n>@<auth request>"
// (now, for that auth request), "fresh-<n>" (now, for none) and "old@<auth request>"
// (3 minutes ago); anything else is not a token.
func testProvider(t testing.TB) *Provider {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(nil)
	p, err := New(Config{Issuer: "https://auth.example/oidc", LoginURL: "https://auth.example/login", SigningKey: key,
		Store: &memStore{m: map[string]memEntry{}},
		Authenticate: func(tok string, now time.Time) (*Login, error) {
			jti, authRequest, _ := strings.Cut(tok, "@")
			switch {
			case strings.HasPrefix(jti, "fresh-"):
				return &Login{Subject: "alice", TokenID: jti, AMR: []string{"mpin", "pin"}, AuthTime: now, AuthRequest: authRequest}, nil
			case jti == "old":
				return &Login{Subject: "alice", TokenID: jti, AuthTime: now.Add(-3 * time.Minute), AuthRequest: authRequest}, nil
			}
			return nil, errors.New("not a token")
		},
		Clients: []Client{{ID: "shop", AuthMethod: AuthNone, RedirectURIs: []string{"https://shop.example/cb"}}}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *Provider) newAuthRequest(t testing.TB) string {
	t.Helper()
	a, err := p.storage.CreateAuthRequest(t.Context(), &oidc.AuthRequest{ClientID: "shop", RedirectURI: "https://shop.example/cb",
		Scopes: []string{"openid"}, ResponseType: oidc.ResponseTypeCode, CodeChallenge: "x", CodeChallengeMethod: oidc.CodeChallengeMethodS256}, "")
	if err != nil {
		t.Fatal(err)
	}
	return a.GetID()
}

// complete posts body to CompleteLogin from a browser holding the cookies of the
// auth requests browserOf (those it started).
func complete(p *Provider, body string, browserOf ...string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	r := httptest.NewRequest("POST", "/login/complete", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	for _, id := range browserOf {
		r.AddCookie(&http.Cookie{Name: p.browserCookieName(id), Value: p.browserCookieValue(id)})
	}
	p.CompleteLogin(w, r)
	return w
}

func TestCompleteLogin(t *testing.T) {
	p := testProvider(t)
	body := func(id, tok string) string {
		b, _ := json.Marshal(CompleteRequest{AuthRequestID: id, AccessToken: tok})
		return string(b)
	}
	done := p.newAuthRequest(t)
	if w := complete(p, body(done, "fresh-1@"+done), done); w.Code != 200 || !strings.Contains(w.Body.String(), "/oidc/authorize/callback?id="+done) {
		t.Fatalf("ok/fresh-login: %d %s", w.Code, w.Body)
	}
	other := p.newAuthRequest(t)
	for _, tc := range []struct {
		name, id, token string
		browserOf       []string
	}{
		{"fail/request-done", done, "fresh-2@" + done, []string{done}},
		{"fail/token-spent", other, "fresh-1@" + other, []string{other}},
		{"fail/stale-login", other, "old@" + other, []string{other}},
		{"fail/not-a-token", other, "garbage", []string{other}},
		{"fail/unknown-request", "nope", "fresh-3@nope", []string{"nope"}},
		// A token from a login made for no auth request (an app's), or for another one.
		{"fail/token-for-no-request", other, "fresh-4", []string{other}},
		{"fail/token-for-another-request", other, "fresh-5@" + done, []string{other}},
		// The login page of someone else's auth request: another browser's cookies.
		{"fail/other-browser", other, "fresh-6@" + other, nil},
		{"fail/cookie-of-another-request", other, "fresh-7@" + other, []string{done}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if w := complete(p, body(tc.id, tc.token), tc.browserOf...); w.Code == 200 {
				t.Fatalf("accepted: %s", w.Body)
			}
		})
	}
	for name, raw := range map[string]string{
		"fail/not-json":      "{",
		"fail/unknown-field": `{"auth_request_id":"x","access_token":"fresh-8@x","extra":1}`,
	} {
		if w := complete(p, raw, "x"); w.Code == 200 {
			t.Fatalf("%s: accepted: %s", name, w.Body)
		}
	}
	if w := complete(p, body(other, "fresh-9@"+other), other); w.Code != 200 {
		t.Fatalf("ok/after-refusals: %d %s", w.Code, w.Body)
	}
	// The refusals of a login are one answer, whatever the reason.
	fresh := p.newAuthRequest(t)
	a, b := complete(p, body("nope", "fresh-10@nope"), "nope"), complete(p, body(fresh, "garbage"), fresh)
	if a.Code != http.StatusUnauthorized || !bytes.Equal(a.Body.Bytes(), b.Body.Bytes()) {
		t.Fatalf("refusals differ: %d %s / %d %s", a.Code, a.Body, b.Code, b.Body)
	}
}

func TestCreateAuthRequestNeedsPKCE(t *testing.T) {
	p := testProvider(t)
	for _, m := range []oidc.CodeChallengeMethod{"", oidc.CodeChallengeMethodPlain} {
		_, err := p.storage.CreateAuthRequest(t.Context(), &oidc.AuthRequest{ClientID: "shop", RedirectURI: "https://shop.example/cb",
			ResponseType: oidc.ResponseTypeCode, CodeChallenge: "x", CodeChallengeMethod: m}, "")
		if err == nil {
			t.Fatalf("method %q accepted", m)
		}
	}
}

// FuzzCompleteLogin: no body makes CompleteLogin panic or accept without a fresh
// login for a pending request.
func FuzzCompleteLogin(f *testing.F) {
	f.Add(`{"auth_request_id":"x","access_token":"fresh-1@x"}`)
	f.Add(`{"auth_request_id":"","access_token":""}`)
	f.Add(`[]`)
	p := testProvider(f)
	f.Fuzz(func(t *testing.T, body string) {
		var req CompleteRequest
		json.Unmarshal([]byte(body), &req)
		if w := complete(p, body, req.AuthRequestID); w.Code == 200 {
			if !strings.HasPrefix(req.AccessToken, "fresh-") || !strings.HasSuffix(req.AccessToken, "@"+req.AuthRequestID) {
				t.Fatalf("accepted %q", body)
			}
		}
	})
}

func TestRequester(t *testing.T) {
	p := testProvider(t)
	id := p.newAuthRequest(t)
	if host, ok := p.Requester(id); !ok || host != "shop.example" {
		t.Fatalf("ok/pending: %q %v", host, ok)
	}
	for name, id := range map[string]string{
		"fail/unknown": strings.Repeat("ab", 16),
		"fail/short":   "nope",
		"fail/long":    strings.Repeat("a", 1<<16),
	} {
		if host, ok := p.Requester(id); ok {
			t.Errorf("%s: %q", name, host)
		}
	}
	b, _ := json.Marshal(CompleteRequest{AuthRequestID: id, AccessToken: "fresh-1@" + id})
	if w := complete(p, string(b), id); w.Code != 200 {
		t.Fatalf("complete: %d %s", w.Code, w.Body)
	}
	if host, ok := p.Requester(id); ok {
		t.Errorf("fail/done: %q", host)
	}
}

// TestBrowserCookie: the authorize endpoint sets the auth request's cookie with what a
// browser needs to keep it to this host and to https (the __Host- prefix: Secure,
// Path=/, no Domain), HttpOnly and SameSite=Lax (it must reach the login page after
// the relying party's redirect); the callback deletes it.
func TestBrowserCookie(t *testing.T) {
	p := testProvider(t)
	q := url.Values{"client_id": {"shop"}, "redirect_uri": {"https://shop.example/cb"}, "response_type": {"code"},
		"scope": {"openid"}, "code_challenge": {strings.Repeat("a", 43)}, "code_challenge_method": {"S256"}, "state": {"s"}}
	w := httptest.NewRecorder()
	p.Handler().ServeHTTP(w, httptest.NewRequest("GET", "https://auth.example/oidc/authorize?"+q.Encode(), nil))
	loc, _ := url.Parse(w.Header().Get("Location"))
	id := loc.Query().Get("authRequestID")
	cookies := w.Result().Cookies()
	if w.Code != http.StatusFound || id == "" || len(cookies) != 1 {
		t.Fatalf("authorize: %d, Location %q, cookies %v", w.Code, loc, w.Header()["Set-Cookie"])
	}
	c := cookies[0]
	if c.Name != "__Host-polyroot-authreq-"+id || !c.Secure || !c.HttpOnly || c.Path != "/" || c.Domain != "" ||
		c.SameSite != http.SameSiteLaxMode || c.MaxAge != 600 {
		t.Fatalf("the cookie: %s", w.Header().Get("Set-Cookie"))
	}

	b, _ := json.Marshal(CompleteRequest{AuthRequestID: id, AccessToken: "fresh-1@" + id})
	if w := complete(p, string(b), id); w.Code != 200 {
		t.Fatalf("complete: %d %s", w.Code, w.Body)
	}
	r := httptest.NewRequest("GET", "https://auth.example/oidc/authorize/callback?id="+id, nil)
	r.AddCookie(c)
	w = httptest.NewRecorder()
	p.Handler().ServeHTTP(w, r)
	loc, _ = url.Parse(w.Header().Get("Location"))
	gone := w.Result().Cookies()
	if w.Code != http.StatusFound || loc.Query().Get("code") == "" || len(gone) != 1 || gone[0].Name != c.Name || gone[0].MaxAge >= 0 {
		t.Fatalf("callback: %d, Location %q, cookies %v", w.Code, loc, w.Header()["Set-Cookie"])
	}
	// A browser that kept the cookie anyway gets no second code.
	w = httptest.NewRecorder()
	p.Handler().ServeHTTP(w, r)
	if loc, _ := url.Parse(w.Header().Get("Location")); loc != nil && loc.Query().Get("code") != "" {
		t.Fatalf("a second code: %d %s", w.Code, loc)
	}
}

// TestCompleteSpendsForeignToken: a token presented from another browser than the one
// that started the auth request is spent although refused, so it cannot complete the
// request later from the starting browser either.
func TestCompleteSpendsForeignToken(t *testing.T) {
	p := testProvider(t)
	id := p.newAuthRequest(t)
	b, _ := json.Marshal(CompleteRequest{AuthRequestID: id, AccessToken: "fresh-1@" + id})
	if w := complete(p, string(b)); w.Code == 200 {
		t.Fatal("completed from another browser")
	}
	if w := complete(p, string(b), id); w.Code == 200 {
		t.Fatal("the token refused from another browser completed the request later")
	}
}
