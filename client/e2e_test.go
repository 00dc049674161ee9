package client

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/polyroot/polyroot/internal/wire"
)

// TestEndToEnd runs an identity's whole life against the real auth server and DTAs:
// the registrar enrols it, the client enrols with the code and logs in, is blocked by
// wrong PINs, unblocked by the registrar, and refused once revoked.
func TestEndToEnd(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	pin := []byte("4921")

	var created wire.EnrolmentCreated
	e.admin(t, "/v1/admin/enrolments", wire.EnrolmentRequest{ID: "alice@example.com"}, &created)
	c := e.open(t)
	if err := c.Enroll(ctx, e.url, created.Code, pin, false); err != nil {
		t.Fatal(err)
	}
	if st := c.Status(); !st.Enrolled || st.IDHash != created.IDHash || !st.CurrentPermit {
		t.Fatalf("status %+v", st)
	}
	if err := c.Enroll(ctx, e.url, created.Code, pin, false); err == nil {
		t.Fatal("an enrolment code was redeemed twice")
	}

	s, err := c.Login(ctx, e.url, pin)
	if err != nil {
		t.Fatal(err)
	}
	claims := e.verifyToken(t, s.AccessToken)
	if claims.Subject != "alice@example.com" || claims.IDHash != created.IDHash || s.ID != "alice@example.com" {
		t.Fatalf("session %+v, claims %+v", s, claims)
	}
	if k, ok := e.srv.SessionKey(claims.ID); !ok || len(s.SessionKey) != 32 || !bytes.Equal(k, s.SessionKey) {
		t.Fatal("the client's session key is not the server's")
	}

	for want := 2; want >= 1; want-- {
		var wp *WrongPINError
		if _, err := c.Login(ctx, e.url, []byte("0000")); !errors.As(err, &wp) || wp.TriesLeft != want {
			t.Fatalf("wrong PIN: got %v, want %d tries left", err, want)
		}
	}
	if _, err := c.Login(ctx, e.url, []byte("0000")); !errors.Is(err, ErrBlocked) {
		t.Fatalf("third wrong PIN: %v", err)
	}
	if _, err := c.Login(ctx, e.url, pin); !errors.Is(err, ErrBlocked) {
		t.Fatalf("right PIN while blocked: %v", err)
	}

	e.admin(t, "/v1/admin/unblock", wire.IdentityRequest{ID: "alice@example.com"}, nil)
	s, err = c.Login(ctx, e.url, pin)
	if err != nil {
		t.Fatalf("after unblock: %v", err)
	}
	e.verifyToken(t, s.AccessToken)

	e.admin(t, "/v1/admin/revoke", wire.IdentityRequest{IDHash: created.IDHash}, nil)
	if _, err := c.Login(ctx, e.url, pin); !errors.Is(err, ErrWrongPIN) {
		t.Fatalf("after revocation: %v", err)
	}
}
