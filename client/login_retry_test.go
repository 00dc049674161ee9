package client

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// connChanger serves the auth server over HTTP/1.1 and TLS, and can close the
// connection after pass 1 (so that pass 2 travels on a new TLS connection with another
// binding) or drop pass 2 unanswered.
type connChanger struct {
	closeAfterStart atomic.Int32 // this many pass-1 answers close their connection
	dropFinish      atomic.Int32 // this many pass 2s are dropped without an answer
	starts          atomic.Int32
	finishes        atomic.Int32 // pass 2s that reached the server
	url             string
}

func newConnChanger(t *testing.T, e *env) *connChanger {
	t.Helper()
	cc := &connChanger{}
	h := e.srv.Handler()
	hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/login/start":
			cc.starts.Add(1)
			if cc.closeAfterStart.Add(-1) >= 0 {
				w.Header().Set("Connection", "close")
			}
		case "/v1/login/finish":
			if cc.dropFinish.Add(-1) >= 0 {
				conn, _, err := http.NewResponseController(w).Hijack()
				if err == nil {
					conn.Close()
				}
				return
			}
			cc.finishes.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	hs.StartTLS() // HTTP/1.1 only: "Connection: close" ends the connection
	t.Cleanup(hs.Close)
	e.roots.AddCert(hs.Certificate())
	cc.url = hs.URL
	return cc
}

// TestLoginRetry: a login is tried again only when pass 2 got no answer or was refused
// as channel_binding_mismatch on a changed connection, never after login_failed, so a
// wrong PIN counts once on the server whatever happens to the connection.
func TestLoginRetry(t *testing.T) {
	pin := []byte("4921")
	ctx := context.Background()
	cases := []struct {
		name                    string
		pin                     []byte
		closeAfterStart, dropP2 int32
		wantStarts, wantP2      int32
		wantTriesLeft           int // for a wrong PIN: what the server says after it
	}{
		{name: "fail/wrong-pin-connection-change-counted-once", pin: []byte("0000"), closeAfterStart: 1, wantStarts: 1, wantP2: 1, wantTriesLeft: 2},
		{name: "fail/wrong-pin-every-connection-changes", pin: []byte("0000"), closeAfterStart: 5, wantStarts: 1, wantP2: 1, wantTriesLeft: 2},
		{name: "fail/wrong-pin-same-connection", pin: []byte("0000"), wantStarts: 1, wantP2: 1, wantTriesLeft: 2},
		{name: "ok/right-pin-connection-change-retried", pin: pin, closeAfterStart: 1, wantStarts: 2, wantP2: 2},
		{name: "ok/pass-2-unanswered-retried", pin: pin, dropP2: 1, wantStarts: 2, wantP2: 1},
		{name: "fail/wrong-pin-after-unanswered-pass-2", pin: []byte("0000"), dropP2: 1, wantStarts: 2, wantP2: 1, wantTriesLeft: 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.enroll(t, "alice@example.com", pin)
			cc := newConnChanger(t, e)
			c := e.open(t)
			cc.closeAfterStart.Store(tc.closeAfterStart)
			cc.dropFinish.Store(tc.dropP2)
			_, err := c.Login(ctx, cc.url, tc.pin)
			if tc.wantTriesLeft == 0 {
				if err != nil {
					t.Fatalf("login: %v", err)
				}
			} else {
				var wp *WrongPINError
				if !errors.As(err, &wp) || wp.TriesLeft != tc.wantTriesLeft {
					t.Fatalf("got %v, want a wrong PIN with %d tries left (one failure counted)", err, tc.wantTriesLeft)
				}
			}
			if s, f := cc.starts.Load(), cc.finishes.Load(); s != tc.wantStarts || f != tc.wantP2 {
				t.Fatalf("%d pass 1s and %d pass 2s reached the server, want %d and %d", s, f, tc.wantStarts, tc.wantP2)
			}
			if tc.wantTriesLeft != 0 {
				// The server's own count, seen on the direct connection: one more failure.
				_, err := c.Login(ctx, e.url, []byte("0000"))
				var wp *WrongPINError
				if !errors.As(err, &wp) || wp.TriesLeft != tc.wantTriesLeft-1 {
					t.Fatalf("next wrong PIN: got %v, want %d tries left", err, tc.wantTriesLeft-1)
				}
			}
		})
	}
}

// TestLoginNeedsTLS13: the client computes no channel binding on a connection below
// TLS 1.3, and says why.
func TestLoginNeedsTLS13(t *testing.T) {
	e := newEnv(t)
	pin := []byte("4921")
	e.enroll(t, "alice@example.com", pin)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: e.roots, MaxVersion: tls.VersionTLS12}
	c := e.open(t, WithServerClient(&http.Client{Transport: tr}))
	_, err := c.Login(context.Background(), e.url, pin)
	if !errors.Is(err, ErrTLSVersion) {
		t.Fatalf("login over TLS 1.2: got %v, want ErrTLSVersion", err)
	}
	// Nothing was counted: the right PIN over TLS 1.3 logs in.
	if _, err := e.open(t).Login(context.Background(), e.url, pin); err != nil {
		t.Fatal(err)
	}
}
