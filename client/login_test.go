package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/server"
)

func TestLogin(t *testing.T) {
	e := newEnv(t)
	pin := []byte("4921")
	c := e.enroll(t, "alice@example.com", pin)
	ctx := context.Background()

	s, err := c.Login(ctx, e.url, pin)
	if err != nil {
		t.Fatal(err)
	}
	if s.ID != "alice@example.com" || s.AccessToken == "" || s.ExpiresAt.IsZero() {
		t.Fatalf("session %+v", s)
	}
	if k := e.sessionKey(t, s.AccessToken); len(s.SessionKey) != 32 || !bytes.Equal(k, s.SessionKey) {
		t.Fatal("client and server session keys differ")
	}

	// Wrong PIN: the tries left count down, then the identity is blocked.
	for want := 2; want >= 1; want-- {
		_, err := c.Login(ctx, e.url, []byte("0000"))
		var wp *WrongPINError
		if !errors.Is(err, ErrWrongPIN) || !errors.As(err, &wp) || wp.TriesLeft != want {
			t.Fatalf("wrong PIN: got %v, want %d tries left", err, want)
		}
	}
	if _, err := c.Login(ctx, e.url, []byte("0000")); !errors.Is(err, ErrBlocked) {
		t.Fatalf("third wrong PIN: %v", err)
	}
	if _, err := c.Login(ctx, e.url, pin); !errors.Is(err, ErrBlocked) {
		t.Fatalf("right PIN when blocked: %v", err)
	}
}

func TestLoginImpostor(t *testing.T) {
	e := newEnv(t)
	pin := []byte("4921")
	c := e.enroll(t, "alice@example.com", pin)
	// The same routes, but holding another domain's sQ.
	evil := newImpostor(t, e)
	if _, err := c.Login(context.Background(), evil, pin); !errors.Is(err, ErrServerNotAuthentic) {
		t.Fatalf("got %v", err)
	}
	// The real server is still fine.
	if _, err := c.Login(context.Background(), e.url, pin); err != nil {
		t.Fatal(err)
	}
}

func TestLoginInterception(t *testing.T) {
	e := newEnv(t)
	pin := []byte("4921")
	e.enroll(t, "alice@example.com", pin)
	proxyURL, ca := interceptingProxy(t, e.hs)
	e.roots.AddCert(ca) // the client trusts the interceptor's CA, as with a forced root
	c := e.open(t)
	ctx := context.Background()

	_, err := c.Login(ctx, proxyURL, pin)
	if !errors.Is(err, ErrPossibleInterception) {
		t.Fatalf("through the proxy: got %v", err)
	}
	// The binding mismatch is not a PIN failure, and the direct login succeeds.
	for range 3 { // more than the lockout allows
		if _, err := c.Login(ctx, proxyURL, pin); !errors.Is(err, ErrPossibleInterception) {
			t.Fatalf("through the proxy again: got %v", err)
		}
	}
	if _, err := c.Login(ctx, e.url, pin); err != nil {
		t.Fatalf("direct: %v", err)
	}
}

func TestLoginHTTP1(t *testing.T) {
	e := newEnv(t)
	pin := []byte("4921")
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: e.roots}
	tr.ForceAttemptHTTP2 = false
	tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	c := e.enroll(t, "alice@example.com", pin, WithServerClient(&http.Client{Transport: tr}))
	for range 3 {
		if _, err := c.Login(context.Background(), e.url, pin); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPermitExpiredAndRefresh(t *testing.T) {
	// Access tokens live a day, so that the one from the first login is still valid
	// ten periods later.
	e := newEnv(t, func(c *server.Config) { c.TokenTTL = 24 * time.Hour })
	pin := []byte("4921")
	c := e.enroll(t, "alice@example.com", pin)
	ctx := context.Background()
	s, err := c.Login(ctx, e.url, pin)
	if err != nil {
		t.Fatal(err)
	}
	// Ten periods later the permits fetched at enrolment (three) are all past.
	later := func() time.Time { return time.Now().Add(10 * testPeriod * time.Second) }
	c = e.open(t, WithNow(later))
	if _, err := c.Login(ctx, e.url, pin); !errors.Is(err, ErrPermitExpired) {
		t.Fatalf("got %v", err)
	}
	if c.Status().CurrentPermit {
		t.Fatal("status claims a current permit")
	}
	e.setServerClock(10 * testPeriod * time.Second)
	if err := c.RefreshPermits(ctx, e.url, s.AccessToken, 2); err != nil {
		t.Fatal(err)
	}
	st := c.Status()
	if !st.CurrentPermit || len(st.Permits) != 2 {
		t.Fatalf("after refresh: %+v", st)
	}
	if _, err := c.Login(ctx, e.url, pin); err != nil {
		t.Fatal(err)
	}
	if err := c.RefreshPermits(ctx, e.url, "not-a-token", 2); err == nil {
		t.Fatal("refresh with a bad access token")
	}
}

func TestLoginPermitSlotRefused(t *testing.T) {
	e := newEnv(t)
	pin := []byte("4921")
	c := e.enroll(t, "alice@example.com", pin)
	// The server's clock is two periods ahead: it refuses the client's slot.
	e.setServerClock(2 * testPeriod * time.Second)
	if _, err := c.Login(context.Background(), e.url, pin); !errors.Is(err, ErrPermitExpired) {
		t.Fatalf("got %v", err)
	}
}

// TestLoginDowngrade: a TLS interceptor the device trusts tries to take a bound login
// off its channel. Its plain-http side marks pass 1 "unbound" before it relays it, so
// that the server's session expects no binding; if the client then used none either
// (its pass-1 answer came without TLS), the tags would agree and the interceptor would
// hold the victim's access token. Every way must end in an error, with no token.
func TestLoginDowngrade(t *testing.T) {
	e := newEnv(t)
	pin := []byte("4921")
	e.enroll(t, "alice@example.com", pin)
	upstream := e.hs.Client()
	var tokens atomic.Int32 // access tokens the interceptor saw
	relay := func(markUnbound bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			if markUnbound && r.URL.Path == "/v1/login/start" {
				var req map[string]any
				json.Unmarshal(b, &req)
				req["unbound"] = true
				b, _ = json.Marshal(req)
			}
			resp, err := upstream.Post(e.url+r.URL.Path, "application/json", bytes.NewReader(b))
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			defer resp.Body.Close()
			out, _ := io.ReadAll(resp.Body)
			var fr wire.FinishResponse
			if json.Unmarshal(out, &fr) == nil && fr.AccessToken != "" {
				tokens.Add(1)
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(resp.StatusCode)
			w.Write(out)
		}
	}
	plain := httptest.NewServer(relay(true))
	t.Cleanup(plain.Close)
	interceptor := func(h http.Handler) string {
		ca, cert := newCA(t)
		p := httptest.NewUnstartedServer(h)
		p.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		p.StartTLS()
		t.Cleanup(p.Close)
		e.roots.AddCert(ca) // trusted, as a forced root is
		return p.URL
	}
	ctx := context.Background()

	t.Run("fail/unbound-injected", func(t *testing.T) {
		_, err := e.open(t).Login(ctx, interceptor(relay(true)), pin)
		if !errors.Is(err, ErrPossibleInterception) {
			t.Fatalf("got %v, want ErrPossibleInterception", err)
		}
	})
	t.Run("fail/redirect-to-http", func(t *testing.T) {
		u := interceptor(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/v1/login/start" {
				http.Redirect(w, r, plain.URL+r.URL.Path, http.StatusTemporaryRedirect)
				return
			}
			relay(false)(w, r)
		}))
		_, err := e.open(t).Login(ctx, u, pin)
		if !errors.Is(err, ErrRedirect) {
			t.Fatalf("got %v, want ErrRedirect", err)
		}
	})
	t.Run("fail/answer-without-tls", func(t *testing.T) {
		// A transport that carries https requests over plain http (to the
		// interceptor's plain side): the answer to pass 1 has no TLS.
		hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			r = r.Clone(r.Context())
			r.URL.Scheme, r.URL.Host = "http", plain.Listener.Addr().String()
			return http.DefaultTransport.RoundTrip(r)
		})}
		_, err := e.open(t, WithServerClient(hc)).Login(ctx, e.url, pin)
		if !errors.Is(err, ErrPossibleInterception) {
			t.Fatalf("got %v, want ErrPossibleInterception", err)
		}
	})
	if n := tokens.Load(); n != 0 {
		t.Fatalf("the interceptor saw %d access tokens", n)
	}
	if _, err := e.open(t).Login(ctx, e.url, pin); err != nil {
		t.Fatalf("direct login afterwards: %v", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
