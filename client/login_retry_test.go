package client

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// connChanger serves the auth server over HTTP/1.1 and TLS, and can close the
// connection after pass 1 (so that pass 2 travels on a new TLS connection with another
// binding), drop pass 2 unanswered, or lose the answer to a pass 2 the server checked.
type connChanger struct {
	closeAfterStart atomic.Int32 // this many pass-1 answers close their connection
	dropFinish      atomic.Int32 // this many pass 2s are dropped without an answer
	loseAnswer      atomic.Int32 // this many answers to pass 2 are lost after the check
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
			if cc.loseAnswer.Add(-1) >= 0 {
				h.ServeHTTP(httptest.NewRecorder(), r)
				conn, _, err := http.NewResponseController(w).Hijack()
				if err == nil {
					conn.Close()
				}
				return
			}
		}
		h.ServeHTTP(w, r)
	}))
	hs.StartTLS() // HTTP/1.1 only: "Connection: close" ends the connection
	t.Cleanup(hs.Close)
	e.roots.AddCert(hs.Certificate())
	cc.url = hs.URL
	return cc
}

// TestLoginRetry: a login is tried again only when pass 2 was refused as
// channel_binding_mismatch on a changed connection, never after login_failed or a
// pass 2 sent without an answer, so a wrong PIN counts once on the server whatever
// happens to the connection; a second changed connection is a possible interception.
// errAnswerLost stands for the error of a pass 2 whose answer was lost.
var errAnswerLost = errors.New("the answer to the login was lost")

func TestLoginRetry(t *testing.T) {
	pin := []byte("4921")
	ctx := context.Background()
	cases := []struct {
		name                                string
		pin                                 []byte
		closeAfterStart, dropP2, loseAnswer int32
		wantStarts, wantP2                  int32
		wantErr                             error // if not a wrong PIN or nil
		wantTriesLeft                       int   // for a wrong PIN: what the server says after it
	}{
		{name: "fail/wrong-pin-connection-change-counted-once", pin: []byte("0000"), closeAfterStart: 1, wantStarts: 1, wantP2: 1, wantTriesLeft: 2},
		{name: "fail/wrong-pin-every-connection-changes", pin: []byte("0000"), closeAfterStart: 5, wantStarts: 1, wantP2: 1, wantTriesLeft: 2},
		{name: "fail/wrong-pin-same-connection", pin: []byte("0000"), wantStarts: 1, wantP2: 1, wantTriesLeft: 2},
		{name: "ok/right-pin-connection-change-retried", pin: pin, closeAfterStart: 1, wantStarts: 2, wantP2: 2},
		{name: "fail/right-pin-every-connection-changes", pin: pin, closeAfterStart: 5, wantStarts: 2, wantP2: 2, wantErr: ErrPossibleInterception},
		{name: "fail/pass-2-unanswered-not-retried", pin: pin, dropP2: 1, wantStarts: 1, wantP2: 0, wantErr: errAnswerLost},
		{name: "fail/wrong-pin-answer-lost-counted-once", pin: []byte("0000"), loseAnswer: 1, wantStarts: 1, wantP2: 1, wantErr: errAnswerLost, wantTriesLeft: 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.enroll(t, "alice@example.com", pin)
			cc := newConnChanger(t, e)
			c := e.open(t)
			cc.closeAfterStart.Store(tc.closeAfterStart)
			cc.dropFinish.Store(tc.dropP2)
			cc.loseAnswer.Store(tc.loseAnswer)
			_, err := c.Login(ctx, cc.url, tc.pin)
			switch {
			case tc.wantErr == errAnswerLost:
				if err == nil || !strings.Contains(err.Error(), "the answer to the login was lost") {
					t.Fatalf("got %v, want the answer to the login lost", err)
				}
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("got %v, want %v", err, tc.wantErr)
				}
			case tc.wantTriesLeft == 0:
				if err != nil {
					t.Fatalf("login: %v", err)
				}
			default:
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
