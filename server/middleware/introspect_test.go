package middleware

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRevokedHook: with Config.Revoked, a verified token is passed on only when the
// hook says it is not revoked; revoked is 401, a failed check 503 (fail closed); the
// hook is not asked about tokens that do not verify.
func TestRevokedHook(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	now := time.Now()
	good := sign(t, priv, claims(now, "example.test", "example.test", time.Minute), KeyID(pub))
	expired := sign(t, priv, claims(now.Add(-time.Hour), "example.test", "example.test", time.Minute), KeyID(pub))
	var asked []string
	var answer bool
	var fail error
	app := NewWithConfig(Config{Keys: NewKeySet(pub), Audience: "example.test", Issuer: "example.test",
		Revoked: func(_ context.Context, tok string, c *Claims) (bool, error) {
			if c.ID != "jti-1" || c.Subject != "alice" {
				t.Errorf("the hook got claims %+v", c)
			}
			asked = append(asked, tok)
			return answer, fail
		}})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	call := func(tok string) (int, string) {
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		app.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	for _, tc := range []struct {
		name     string
		revoked  bool
		err      error
		tok      string
		status   int
		code     string
		hookSeen bool
	}{
		{"ok/not-revoked", false, nil, good, 200, "", true},
		{"fail/revoked", true, nil, good, 401, "invalid_token", true},
		{"fail/check-failed", false, errors.New("down"), good, 503, "revocation_unknown", true},
		{"fail/expired-not-asked", false, nil, expired, 401, "invalid_token", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			asked, answer, fail = nil, tc.revoked, tc.err
			st, body := call(tc.tok)
			if st != tc.status || (tc.code != "" && !strings.Contains(body, `"code":"`+tc.code+`"`)) {
				t.Fatalf("%d %s, want %d %s", st, body, tc.status, tc.code)
			}
			if seen := len(asked) == 1 && asked[0] == tc.tok; seen != tc.hookSeen {
				t.Fatalf("hook asked %d times", len(asked))
			}
		})
	}
}

// fakeIntrospection is an introspection endpoint whose answers the test sets.
type fakeIntrospection struct {
	mu     sync.Mutex
	calls  int
	active bool
	status int
	jti    string
}

func (f *fakeIntrospection) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if r.URL.Path != "/v1/token/introspect" || r.Method != "POST" || r.Header.Get("Authorization") != "Bearer cred-0123456789abcdef" ||
		r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" || r.FormValue("token") == "" {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if f.status != 0 {
		w.WriteHeader(f.status)
		return
	}
	if !f.active {
		w.Write([]byte(`{"active":false}`))
		return
	}
	json.NewEncoder(w).Encode(map[string]any{"active": true, "sub": "alice", "jti": f.jti})
}

// TestIntrospector: answers are cached for CacheFor (active) or until the token
// expires (inactive); a failed or odd answer is an error without the token, and is
// not cached.
func TestIntrospector(t *testing.T) {
	f := &fakeIntrospection{active: true, jti: "jti-1"}
	srv := httptest.NewServer(f)
	defer srv.Close()
	clock := time.Now()
	c := claims(clock, "example.test", "example.test", time.Minute)
	const tok = "the.access.token"
	in := NewIntrospector(srv.URL+"/", "cred-0123456789abcdef", nil, 0)
	in.now = func() time.Time { return clock }
	ask := func(t *testing.T, wantCalls int) (bool, error) {
		t.Helper()
		r, err := in.Revoked(t.Context(), tok, &c)
		if f.calls != wantCalls {
			t.Fatalf("%d calls to the server, want %d", f.calls, wantCalls)
		}
		return r, err
	}
	if r, err := ask(t, 1); r || err != nil {
		t.Fatalf("active: %v %v", r, err)
	}
	f.active = false // revoked on the server
	clock = clock.Add(DefaultCacheFor - time.Millisecond)
	if r, _ := ask(t, 1); r {
		t.Fatal("the cached answer was not used within CacheFor")
	}
	clock = clock.Add(time.Millisecond)
	if r, err := ask(t, 2); !r || err != nil {
		t.Fatalf("after CacheFor, the revocation: %v %v", r, err)
	}
	clock = clock.Add(40 * time.Second)
	if r, _ := ask(t, 2); !r {
		t.Fatal("a revocation is not cached until the token expires")
	}
	f.status = http.StatusInternalServerError
	clock = clock.Add(time.Minute) // past the token's expiry: asked again
	if _, err := ask(t, 3); err == nil || strings.Contains(err.Error(), tok) {
		t.Fatalf("a 500: %v", err)
	}
	if _, err := ask(t, 4); err == nil {
		t.Fatal("a failure was cached")
	}
	f.status, f.active, f.jti = 0, true, "another"
	if _, err := ask(t, 5); err == nil || strings.Contains(err.Error(), tok) {
		t.Fatalf("an answer about another token: %v", err)
	}
	bad := NewIntrospector(srv.URL, "wrong-credential", nil, -1)
	if _, err := bad.Revoked(t.Context(), tok, &c); err == nil || !strings.Contains(err.Error(), "HTTP 401") {
		t.Fatalf("a wrong credential: %v", err)
	}
	f.jti = "jti-1"
	noCache := NewIntrospector(srv.URL, "cred-0123456789abcdef", nil, -1)
	before := f.calls
	noCache.Revoked(t.Context(), tok, &c)
	noCache.Revoked(t.Context(), tok, &c)
	if f.calls != before+2 {
		t.Fatalf("with caching off, %d calls for 2 checks", f.calls-before)
	}
}
