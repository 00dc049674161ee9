package oidcop

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
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
