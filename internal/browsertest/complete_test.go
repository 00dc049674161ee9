package browsertest

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/polyroot/polyroot/server/middleware"
)

// fakeComplete stands in for the OpenID Provider's POST /login/complete: it records
// what the page posts and answers a redirect, or an error for one request ID.
type fakeComplete struct {
	mu   sync.Mutex
	got  []map[string]string
	next string // the redirect
}

func (f *fakeComplete) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body map[string]string
	if r.Header.Get("Content-Type") != "application/json" || json.NewDecoder(r.Body).Decode(&body) != nil {
		answer(w, http.StatusBadRequest, apiError{"bad_request", "want a JSON object of strings"})
		return
	}
	f.mu.Lock()
	f.got = append(f.got, body)
	f.mu.Unlock()
	if body["auth_request_id"] == "req-stale" {
		answer(w, http.StatusBadRequest, apiError{"login_expired", "the application's login request has expired; start again from the application"})
		return
	}
	answer(w, http.StatusOK, map[string]string{"redirect": f.next})
}

// TestBrowserLoginCompletesAuthRequest checks the page's side of the OpenID Provider's
// login: with ?authRequestID the page posts the request ID and the fresh access token
// to /login/complete and follows the redirect it answers; an error answer is shown.
// (The provider itself is stood in for; its own tests and the code flow to the example
// relying party cover it.)
func TestBrowserLoginCompletesAuthRequest(t *testing.T) {
	st := StartStack(t)
	fc := &fakeComplete{next: st.URL + "/app/done?state=xyz"}
	st.Handle("POST /login/complete", fc)
	st.Handle("GET /app/done", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte("<!doctype html><title>done</title><p id=done>back in the app</p>"))
	}))
	b := newBrowser(t)
	const id, pin = "dave@browser.example.test", "161803"
	enrolInBrowser(t, b, st, id, pin)

	b.navigate(st.URL + "/login?authRequestID=req-123")
	b.waitScreen("screen-pin", time.Minute)
	b.typePIN(pin)
	deadline := time.Now().Add(loginTimeout)
	for eval[string](b, 10*time.Second, `location.pathname`) != "/app/done" {
		if time.Now().After(deadline) {
			t.Fatalf("the page did not follow the redirect; it shows %+v", eval[screen](b, 10*time.Second, screenJS))
		}
		time.Sleep(50 * time.Millisecond)
	}
	fc.mu.Lock()
	got := slices.Clone(fc.got)
	fc.mu.Unlock()
	if len(got) != 1 || got[0]["auth_request_id"] != "req-123" || got[0]["access_token"] == "" || len(got[0]) != 2 {
		t.Fatalf("/login/complete got %v, want one {auth_request_id: req-123, access_token}", got)
	}
	claims := verifyToken(t, st, got[0]["access_token"])
	if claims.Subject != id || !slices.Contains(claims.AMR, middleware.MethodMPin) || slices.Contains(claims.AMR, middleware.MethodChannelBound) {
		t.Errorf("the access token says sub %q amr %v, want %s, mpin and no tls-cb", claims.Subject, claims.AMR, id)
	}
	if claims.AuthRequest != "req-123" {
		t.Errorf("the access token is for auth request %q, want the page's req-123", claims.AuthRequest)
	}

	// An error answer is shown, with the provider's message.
	b.navigate(st.URL + "/login?authRequestID=req-stale")
	b.waitScreen("screen-pin", time.Minute)
	b.typePIN(pin)
	var s screen
	deadline = time.Now().Add(loginTimeout)
	for s = eval[screen](b, 10*time.Second, screenJS); s.ID != "screen-error"; s = eval[screen](b, 10*time.Second, screenJS) {
		if time.Now().After(deadline) {
			t.Fatalf("after a refused completion the page shows %+v, want screen-error", s)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(s.Message, "expired") {
		t.Errorf("the error screen says %q, want the provider's message", s.Message)
	}
	checkNoPIN(t, b, pin)
}

// verifyToken checks an access token as an app backend does (the server's JWKS, the
// middleware) and returns its claims.
func verifyToken(t *testing.T, st *Stack, token string) *middleware.Claims {
	t.Helper()
	keys, err := middleware.FetchKeys(context.Background(), nil, st.URL)
	if err != nil {
		t.Fatal(err)
	}
	var got *middleware.Claims
	h := middleware.New(keys, st.Domain.Name, st.Domain.Name)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = middleware.ClaimsFrom(r.Context())
	}))
	req := httptest.NewRequest(http.MethodGet, "/app", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || got == nil {
		t.Fatalf("the middleware refuses the page's access token: %d %s", rec.Code, rec.Body)
	}
	return got
}
