package oidcop

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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

// testChallenge is a well-formed PKCE S256 code challenge.
var testChallenge = strings.Repeat("a", 43)

// testSlots hands newAuthRequest's cookies their slots in turn.
var testSlots atomic.Int32

// newAuthRequest creates an auth request of the client "shop" as the authorization
// endpoint does, and returns its ID and the cookie that holds it.
func (p *Provider) newAuthRequest(t testing.TB) (string, *http.Cookie) {
	t.Helper()
	var created createdRequest
	ctx := context.WithValue(t.Context(), createdRequestKey{}, &created)
	a, err := p.storage.CreateAuthRequest(ctx, &oidc.AuthRequest{ClientID: "shop", RedirectURI: "https://shop.example/cb",
		Scopes: []string{"openid"}, ResponseType: oidc.ResponseTypeCode, CodeChallenge: testChallenge, CodeChallengeMethod: oidc.CodeChallengeMethodS256}, "")
	if err != nil || created.id != a.GetID() {
		t.Fatalf("CreateAuthRequest: %v (created %q)", err, created.id)
	}
	return a.GetID(), p.sealer.cookie(int(testSlots.Add(1))%requestSlots, created.sealed, 600)
}

// complete posts body to CompleteLogin from a browser holding cookies.
func complete(p *Provider, body string, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	r := httptest.NewRequest("POST", "/login/complete", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	for _, c := range cookies {
		r.AddCookie(c)
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
	done, doneCookie := p.newAuthRequest(t)
	if w := complete(p, body(done, "fresh-1@"+done), doneCookie); w.Code != 200 || !strings.Contains(w.Body.String(), "/oidc/authorize/callback?id="+done) {
		t.Fatalf("ok/fresh-login: %d %s", w.Code, w.Body)
	}
	other, otherCookie := p.newAuthRequest(t)
	nope := strings.Repeat("ab", 16)
	for _, tc := range []struct {
		name, id, token string
		cookies         []*http.Cookie
	}{
		{"fail/request-done", done, "fresh-2@" + done, []*http.Cookie{doneCookie}},
		{"fail/token-spent", other, "fresh-1@" + other, []*http.Cookie{otherCookie}},
		{"fail/stale-login", other, "old@" + other, []*http.Cookie{otherCookie}},
		{"fail/not-a-token", other, "garbage", []*http.Cookie{otherCookie}},
		{"fail/unknown-request", nope, "fresh-3@" + nope, []*http.Cookie{otherCookie}},
		// A token from a login made for no auth request (an app's), or for another one.
		{"fail/token-for-no-request", other, "fresh-4", []*http.Cookie{otherCookie}},
		{"fail/token-for-another-request", other, "fresh-5@" + done, []*http.Cookie{otherCookie}},
		// The login page of someone else's auth request: another browser's cookies.
		{"fail/other-browser", other, "fresh-6@" + other, nil},
		{"fail/cookie-of-another-request", other, "fresh-7@" + other, []*http.Cookie{doneCookie}},
		{"fail/sealed-request-of-another-id", other, "fresh-8@" + other, []*http.Cookie{p.sealer.cookie(0, other+doneCookie.Value[len(done):], 600)}},
		{"fail/forged-cookie", other, "fresh-9@" + other, []*http.Cookie{p.sealer.cookie(0, other+"."+strings.Repeat("A", 400), 600)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if w := complete(p, body(tc.id, tc.token), tc.cookies...); w.Code == 200 {
				t.Fatalf("accepted: %s", w.Body)
			}
		})
	}
	for name, raw := range map[string]string{
		"fail/not-json":      "{",
		"fail/unknown-field": `{"auth_request_id":"x","access_token":"fresh-10@x","extra":1}`,
	} {
		if w := complete(p, raw, otherCookie); w.Code == 200 {
			t.Fatalf("%s: accepted: %s", name, w.Body)
		}
	}
	if w := complete(p, body(other, "fresh-11@"+other), otherCookie); w.Code != 200 {
		t.Fatalf("ok/after-refusals: %d %s", w.Code, w.Body)
	}
	// The refusals of a login are one answer, whatever the reason.
	fresh, freshCookie := p.newAuthRequest(t)
	a, b := complete(p, body(nope, "fresh-12@"+nope)), complete(p, body(fresh, "garbage"), freshCookie)
	if a.Code != http.StatusUnauthorized || !bytes.Equal(a.Body.Bytes(), b.Body.Bytes()) {
		t.Fatalf("refusals differ: %d %s / %d %s", a.Code, a.Body, b.Code, b.Body)
	}
}

func TestCreateAuthRequestChecks(t *testing.T) {
	p := testProvider(t)
	for _, tc := range []struct {
		name             string
		method           oidc.CodeChallengeMethod
		challenge, state string
	}{
		{"fail/no-method", "", testChallenge, ""},
		{"fail/plain", oidc.CodeChallengeMethodPlain, testChallenge, ""},
		{"fail/short-challenge", oidc.CodeChallengeMethodS256, "x", ""},
		{"fail/long-challenge", oidc.CodeChallengeMethodS256, testChallenge + "a", ""},
		{"fail/challenge-not-base64url", oidc.CodeChallengeMethodS256, strings.Repeat("+", 43), ""},
		{"fail/state-too-large", oidc.CodeChallengeMethodS256, testChallenge, strings.Repeat("s", maxState+1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := p.storage.CreateAuthRequest(t.Context(), &oidc.AuthRequest{ClientID: "shop", RedirectURI: "https://shop.example/cb",
				ResponseType: oidc.ResponseTypeCode, CodeChallenge: tc.challenge, CodeChallengeMethod: tc.method, State: tc.state}, "")
			if err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// TestAuthorizeStoresNothing: an authorization request, from anyone, writes nothing
// to the store (its request is in the browser's cookie); its cookie opens until the
// request's lifetime ends, and a request body is bounded.
func TestAuthorizeStoresNothing(t *testing.T) {
	p := testProvider(t)
	q := url.Values{"client_id": {"shop"}, "redirect_uri": {"https://shop.example/cb"}, "response_type": {"code"},
		"scope": {"openid"}, "code_challenge": {testChallenge}, "code_challenge_method": {"S256"}, "state": {"s"}}
	for range 3 {
		w := httptest.NewRecorder()
		p.Handler().ServeHTTP(w, httptest.NewRequest("GET", "https://auth.example/oidc/authorize?"+q.Encode(), nil))
		if w.Code != http.StatusFound {
			t.Fatalf("authorize: %d %s", w.Code, w.Body)
		}
	}
	if n := len(p.cfg.Store.(*memStore).m); n != 0 {
		t.Fatalf("%d entries stored by authorization requests", n)
	}
	// A browser never holds more than requestSlots auth-request cookies, the largest
	// of which fit in the server's header limit: a new request takes a free slot, else
	// the oldest request's, and one without cookies (a cross-site POST) any slot.
	q.Set("state", strings.Repeat("s", maxState))
	q.Set("nonce", strings.Repeat("n", maxNonce))
	jar := map[string]*http.Cookie{}
	var ids []string
	authorize := func(withCookies bool) {
		t.Helper()
		w := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "https://auth.example/oidc/authorize?"+q.Encode(), nil)
		for _, c := range jar {
			if withCookies {
				r.AddCookie(c)
			}
		}
		p.Handler().ServeHTTP(w, r)
		set := w.Result().Cookies()
		if w.Code != http.StatusFound || len(set) != 1 || !strings.HasPrefix(set[0].Name, "__Host-"+browserCookiePrefix) {
			t.Fatalf("authorize with %d cookies: %d %v", len(jar), w.Code, w.Header()["Set-Cookie"])
		}
		jar[set[0].Name] = set[0]
		loc, _ := url.Parse(w.Header().Get("Location"))
		ids = append(ids, loc.Query().Get("authRequestID"))
	}
	for range requestSlots + 2 {
		authorize(true)
	}
	if len(jar) != requestSlots {
		t.Fatalf("%d auth-request cookies after %d requests, want %d", len(jar), requestSlots+2, requestSlots)
	}
	header := 0
	for _, c := range jar {
		header += len(c.Name) + len(c.Value) + 2
	}
	if header > 16<<10 {
		t.Fatalf("%d pending auth requests of the largest size hold %d bytes of cookies", requestSlots, header)
	}
	browser := httptest.NewRequest("GET", "/login", nil)
	for _, c := range jar {
		browser.AddCookie(c)
	}
	for n, id := range ids {
		if _, _, ok := p.sealer.open(browser, id); ok != (n >= 2) {
			t.Fatalf("request %d of %d pending: %v (the two oldest make way)", n+1, len(ids), ok)
		}
	}
	slotsOf := map[string]bool{}
	for range 3 * requestSlots {
		before := maps.Clone(jar)
		authorize(false)
		for name, c := range jar {
			if before[name] != c {
				slotsOf[name] = true
			}
		}
	}
	if len(jar) != requestSlots || len(slotsOf) < 2 {
		t.Fatalf("%d auth-request cookies after requests without cookies (want %d), in %d slots (want them spread)", len(jar), requestSlots, len(slotsOf))
	}

	id, c := p.newAuthRequest(t)
	r := httptest.NewRequest("GET", "/login?authRequestID="+id, nil)
	r.AddCookie(c)
	if _, _, ok := p.sealer.open(r, id); !ok {
		t.Fatal("ok/fresh: the cookie does not open")
	}
	now := p.sealer.now
	p.sealer.now = func() time.Time { return now().Add(p.cfg.AuthRequestTTL) }
	if _, _, ok := p.sealer.open(r, id); ok {
		t.Fatal("fail/expired: the cookie of an expired request opens")
	}
	p.sealer.now = now

	for _, path := range []string{"/oidc/oauth/token", "/oidc/authorize", "/oidc/revoke"} {
		w := httptest.NewRecorder()
		body := &countingReader{r: strings.NewReader("client_id=shop&state=" + strings.Repeat("s", 1<<20))}
		r := httptest.NewRequest("POST", "https://auth.example"+path, body)
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		p.Handler().ServeHTTP(w, r)
		if w.Code < 400 || w.Code >= 500 || body.n > maxRequestBody+1 {
			t.Fatalf("%s with a 1 MB body: %d %s, %d bytes read", path, w.Code, w.Body, body.n)
		}
	}
}

// countingReader counts the bytes read from r.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += n
	return n, err
}

// TestRequestSlots: a new request takes a slot whose cookie holds no live request
// (garbage, expired) before the oldest live one; a cookie of the same name set
// elsewhere hides no request.
func TestRequestSlots(t *testing.T) {
	p := testProvider(t)
	browser := func(cookies ...*http.Cookie) *http.Request {
		r := httptest.NewRequest("GET", "https://auth.example/oidc/authorize", nil)
		for _, c := range cookies {
			r.AddCookie(c)
		}
		return r
	}
	var live []*http.Cookie
	var ids []string
	for slot := range requestSlots {
		id, c := p.newAuthRequest(t)
		c.Name = p.sealer.cookieName(slot)
		live, ids = append(live, c), append(ids, id)
	}
	if got := p.sealer.freeSlot(browser(live...)); got != 0 {
		t.Fatalf("ok/oldest: slot %d, want 0", got)
	}
	for _, tc := range []struct {
		name  string
		value string
	}{
		{"ok/garbage", "x"},
		{"ok/forged", ids[3] + "." + strings.Repeat("A", 400)},
		{"ok/another-id", ids[0] + live[3].Value[len(ids[3]):]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cookies := slices.Clone(live)
			cookies[3] = p.sealer.cookie(3, tc.value, 600)
			if got := p.sealer.freeSlot(browser(cookies...)); got != 3 {
				t.Fatalf("slot %d, want 3 (its cookie holds no live request)", got)
			}
		})
	}
	expired := slices.Clone(live)
	now := p.cfg.Now
	p.cfg.Now = func() time.Time { return now().Add(p.cfg.AuthRequestTTL - time.Second) }
	_, fresh := p.newAuthRequest(t) // the others expire a second after it was made
	p.cfg.Now = now
	p.sealer.now = func() time.Time { return now().Add(p.cfg.AuthRequestTTL) }
	for slot := range requestSlots - 1 {
		fresh.Name = p.sealer.cookieName(slot)
		expired[slot] = &http.Cookie{Name: fresh.Name, Value: fresh.Value}
	}
	if got := p.sealer.freeSlot(browser(expired...)); got != requestSlots-1 {
		t.Fatalf("ok/expired: slot %d, want %d", got, requestSlots-1)
	}
	p.sealer.now = now

	// Another cookie of the name before the request's own (another path, plain http).
	junk := &http.Cookie{Name: live[2].Name, Value: ids[2] + ".AAAA"}
	if _, slot, ok := p.sealer.open(browser(junk, live[2]), ids[2]); !ok || slot != 2 {
		t.Fatalf("a request behind another cookie of its name: slot %d, %v", slot, ok)
	}
}

// FuzzRequestCookie: no cookie value opens as an auth request but the one sealed for
// it (or panics), and what is sealed opens as itself.
func FuzzRequestCookie(f *testing.F) {
	p := testProvider(f)
	id, c := p.newAuthRequest(f)
	f.Add(c.Value)
	f.Add("")
	f.Add(strings.Repeat("A", 40))
	f.Fuzz(func(t *testing.T, value string) {
		r := httptest.NewRequest("GET", "/login", nil)
		r.AddCookie(&http.Cookie{Name: c.Name, Value: value})
		a, _, ok := p.sealer.open(r, id)
		if ok != (value == c.Value) || (ok && (a.ID != id || a.CodeChallenge != testChallenge)) {
			t.Fatalf("open(%q) = %+v, %v", value, a, ok)
		}
	})
}

// FuzzCompleteLogin: no body makes CompleteLogin panic or accept without a fresh
// login for the pending request.
func FuzzCompleteLogin(f *testing.F) {
	p := testProvider(f)
	id, c := p.newAuthRequest(f)
	f.Add(`{"auth_request_id":"` + id + `","access_token":"fresh-1@` + id + `"}`)
	f.Add(`{"auth_request_id":"","access_token":""}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, body string) {
		var req CompleteRequest
		json.Unmarshal([]byte(body), &req)
		if w := complete(p, body, c); w.Code == 200 {
			if req.AuthRequestID != id || !strings.HasPrefix(req.AccessToken, "fresh-") || !strings.HasSuffix(req.AccessToken, "@"+id) {
				t.Fatalf("accepted %q", body)
			}
		}
	})
}

func TestRequester(t *testing.T) {
	p := testProvider(t)
	id, c := p.newAuthRequest(t)
	page := func(id string, cookies ...*http.Cookie) *http.Request {
		r := httptest.NewRequest("GET", "/login?authRequestID="+url.QueryEscape(id), nil)
		for _, c := range cookies {
			r.AddCookie(c)
		}
		return r
	}
	if host, ok := p.Requester(page(id, c), id); !ok || host != "shop.example" {
		t.Fatalf("ok/pending: %q %v", host, ok)
	}
	for name, r := range map[string]*http.Request{
		"fail/no-cookie": page(id),
		"fail/unknown":   page(strings.Repeat("ab", 16), c),
		"fail/short":     page("nope", c),
		"fail/long":      page(strings.Repeat("a", 1<<16), c),
	} {
		if host, ok := p.Requester(r, r.URL.Query().Get("authRequestID")); ok {
			t.Errorf("%s: %q", name, host)
		}
	}
	b, _ := json.Marshal(CompleteRequest{AuthRequestID: id, AccessToken: "fresh-1@" + id})
	if w := complete(p, string(b), c); w.Code != 200 {
		t.Fatalf("complete: %d %s", w.Code, w.Body)
	}
	if host, ok := p.Requester(page(id, c), id); ok {
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
		"scope": {"openid"}, "code_challenge": {testChallenge}, "code_challenge_method": {"S256"}, "state": {"s"}}
	w := httptest.NewRecorder()
	p.Handler().ServeHTTP(w, httptest.NewRequest("GET", "https://auth.example/oidc/authorize?"+q.Encode(), nil))
	loc, _ := url.Parse(w.Header().Get("Location"))
	id := loc.Query().Get("authRequestID")
	cookies := w.Result().Cookies()
	if w.Code != http.StatusFound || id == "" || len(cookies) != 1 {
		t.Fatalf("authorize: %d, Location %q, cookies %v", w.Code, loc, w.Header()["Set-Cookie"])
	}
	c := cookies[0]
	if !strings.HasPrefix(c.Name, "__Host-polyroot-authreq-") || !strings.HasPrefix(c.Value, id+".") || !c.Secure || !c.HttpOnly || c.Path != "/" || c.Domain != "" ||
		c.SameSite != http.SameSiteLaxMode || c.MaxAge != 600 {
		t.Fatalf("the cookie: %s", w.Header().Get("Set-Cookie"))
	}

	// A callback before the login completed (someone sent the browser there) issues no
	// code and leaves the sign-in in progress.
	r := httptest.NewRequest("GET", "https://auth.example/oidc/authorize/callback?id="+id, nil)
	r.AddCookie(c)
	w = httptest.NewRecorder()
	p.Handler().ServeHTTP(w, r)
	if w.Code != http.StatusConflict || w.Header().Get("Location") != "" || len(w.Result().Cookies()) != 0 {
		t.Fatalf("an early callback: %d, Location %q, cookies %v", w.Code, w.Header().Get("Location"), w.Header()["Set-Cookie"])
	}

	b, _ := json.Marshal(CompleteRequest{AuthRequestID: id, AccessToken: "fresh-1@" + id})
	if w := complete(p, string(b), c); w.Code != 200 {
		t.Fatalf("complete: %d %s", w.Code, w.Body)
	}
	w = httptest.NewRecorder()
	p.Handler().ServeHTTP(w, r)
	loc, _ = url.Parse(w.Header().Get("Location"))
	gone := w.Result().Cookies()
	if w.Code != http.StatusFound || loc.Query().Get("code") == "" || len(gone) != 1 || gone[0].Name != c.Name || gone[0].MaxAge >= 0 {
		t.Fatalf("callback: %d, Location %q, cookies %v", w.Code, loc, w.Header()["Set-Cookie"])
	}
	// A browser that kept the cookie anyway gets no second code, nor, once the code
	// was exchanged (the library deletes the request), completes the request again.
	w = httptest.NewRecorder()
	p.Handler().ServeHTTP(w, r)
	if loc, _ := url.Parse(w.Header().Get("Location")); loc != nil && loc.Query().Get("code") != "" {
		t.Fatalf("a second code: %d %s", w.Code, loc)
	}
	if err := p.storage.DeleteAuthRequest(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	b, _ = json.Marshal(CompleteRequest{AuthRequestID: id, AccessToken: "fresh-2@" + id})
	if w := complete(p, string(b), c); w.Code == 200 {
		t.Fatalf("the replayed cookie of an exchanged request completed it again: %s", w.Body)
	}
	if _, ok := p.Requester(r, id); ok {
		t.Fatal("the login page names an exchanged request")
	}
}

// TestCompleteSpendsForeignToken: a token presented from another browser than the one
// that started the auth request is spent although refused, so it cannot complete the
// request later from the starting browser either.
func TestCompleteSpendsForeignToken(t *testing.T) {
	p := testProvider(t)
	id, c := p.newAuthRequest(t)
	b, _ := json.Marshal(CompleteRequest{AuthRequestID: id, AccessToken: "fresh-1@" + id})
	if w := complete(p, string(b)); w.Code == 200 {
		t.Fatal("completed from another browser")
	}
	if w := complete(p, string(b), c); w.Code == 200 {
		t.Fatal("the token refused from another browser completed the request later")
	}
}
