package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"testing"
	"time"

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
