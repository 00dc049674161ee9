package client

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/polyroot/polyroot/internal/ticket"
	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/pairing"
)

// tenPeriods is far enough ahead that every permit fetched at enrolment (three) is past.
const tenPeriods = 10 * testPeriod * time.Second

func later() time.Time { return time.Now().Add(tenPeriods) }

func TestRenewPermits(t *testing.T) {
	e := newEnv(t)
	pin := []byte("4921")
	e.enroll(t, "alice@example.com", pin)
	ctx := context.Background()
	e.setServerClock(tenPeriods)
	c := e.open(t, WithNow(later))
	_, err := c.Login(ctx, e.url, pin)
	if !errors.Is(err, ErrPermitExpired) || !strings.Contains(err.Error(), "permits renew") {
		t.Fatalf("login without a current permit: %v", err)
	}
	if err := c.RenewPermits(ctx, e.url, pin, 2); err != nil {
		t.Fatal(err)
	}
	st := c.Status()
	if !st.CurrentPermit || len(st.Permits) != 2 || st.Permits[0].Slot != c.domain.Slot(later()) {
		t.Fatalf("after renewal: %+v", st)
	}
	s, err := c.Login(ctx, e.url, pin)
	if err != nil {
		t.Fatalf("login after renewal: %v", err)
	}
	if s.ID != "alice@example.com" || s.AccessToken == "" {
		t.Fatalf("session %+v", s)
	}
	// The permits were stored: a fresh Open has them.
	if st := e.open(t, WithNow(later)).Status(); !st.CurrentPermit {
		t.Fatalf("reopened: %+v", st)
	}
	// Days 0: the enrolment's default (three).
	if err := c.RenewPermits(ctx, e.url, pin, 0); err != nil {
		t.Fatal(err)
	}
	if st := c.Status(); len(st.Permits) != 3 {
		t.Fatalf("after a default renewal: %+v", st)
	}
	if err := c.RenewPermits(ctx, e.url, pin, 31); err == nil {
		t.Fatal("renewal for 31 periods")
	}
}

func TestRenewPermitsDevice(t *testing.T) {
	e := newEnv(t)
	e.enroll(t, "sensor-0042", nil)
	e.setServerClock(tenPeriods)
	c := e.open(t, WithNow(later))
	ctx := context.Background()
	if err := c.RenewPermits(ctx, e.url, []byte("1234"), 1); err == nil {
		t.Fatal("a device renewed with a PIN")
	}
	if err := c.RenewPermits(ctx, e.url, nil, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Login(ctx, e.url, nil); err != nil {
		t.Fatal(err)
	}
}

// Wrong PINs in renewals count toward the lockout with logins, with the same errors.
func TestRenewPermitsLockout(t *testing.T) {
	e := newEnv(t)
	pin := []byte("4921")
	c := e.enroll(t, "bob@example.com", pin)
	ctx := context.Background()
	var wp *WrongPINError
	if err := c.RenewPermits(ctx, e.url, []byte("0000"), 1); !errors.As(err, &wp) || wp.TriesLeft != 2 {
		t.Fatalf("wrong PIN in a renewal: %v", err)
	}
	if _, err := c.Login(ctx, e.url, []byte("0000")); !errors.As(err, &wp) || wp.TriesLeft != 1 {
		t.Fatalf("wrong PIN in a login: %v", err)
	}
	if err := c.RenewPermits(ctx, e.url, []byte("0000"), 1); !errors.Is(err, ErrBlocked) {
		t.Fatalf("third wrong PIN, in a renewal: %v", err)
	}
	if err := c.RenewPermits(ctx, e.url, pin, 1); !errors.Is(err, ErrBlocked) {
		t.Fatalf("renewal while blocked: %v", err)
	}
	if _, err := c.Login(ctx, e.url, pin); !errors.Is(err, ErrBlocked) {
		t.Fatalf("login while blocked: %v", err)
	}
	e.admin(t, "/v1/admin/unblock", wire.IdentityRequest{ID: "bob@example.com"}, nil)
	if err := c.RenewPermits(ctx, e.url, pin, 1); err != nil {
		t.Fatalf("after unblock: %v", err)
	}
}

func TestRenewPermitsRevoked(t *testing.T) {
	ctx := context.Background()
	pin := []byte("1357")
	// Revoked at this server: refused like a wrong PIN, nothing stored.
	t.Run("at-the-server", func(t *testing.T) {
		e := newEnv(t)
		c := e.enroll(t, "frank@example.com", pin)
		e.admin(t, "/v1/admin/revoke", wire.IdentityRequest{ID: "frank@example.com"}, nil)
		before := c.Status()
		if err := c.RenewPermits(ctx, e.url, pin, 2); !errors.Is(err, ErrWrongPIN) {
			t.Fatalf("got %v", err)
		}
		if after := c.Status(); len(after.Permits) != len(before.Permits) {
			t.Fatal("a refused renewal changed the permits")
		}
	})
	// Revoked at the DTAs only (another server instance's registrar): this server
	// still answers the renewal, and every DTA refuses the permit ticket.
	t.Run("at-the-DTAs", func(t *testing.T) {
		e := newEnv(t)
		c := e.enroll(t, "frank@example.com", pin)
		revoke, err := ticket.Sign(ticket.Ticket{Domain: e.d.Name, Kind: ticket.KindRevoke, IDHash: c.Status().IDHash,
			NotAfter: time.Now().Add(time.Hour)}, e.d.Registrar)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range e.d.DTAs {
			var r wire.DTAResponse
			if _, err := postJSON(ctx, e.dtaHTTP, x.URL+"/v1/revocations", "", wire.DTARequest{Ticket: revoke}, &r); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.RenewPermits(ctx, e.url, pin, 2); !errors.Is(err, ErrRevoked) {
			t.Fatalf("got %v", err)
		}
	})
}

// A renewal session gets a permit ticket and never an access token.
func TestRenewalNoAccessToken(t *testing.T) {
	e := newEnv(t)
	pin := []byte("4921")
	c := e.enroll(t, "carol@example.com", pin)
	pc := &pairing.Client{Domain: pairing.Domain{Name: c.domain.Name}, IDHash: c.id, Token: c.token}
	fr, key, err := c.exchange(context.Background(), e.url, pc, pin, wire.StartRequest{Purpose: wire.PurposeRenew}, "")
	if err != nil {
		t.Fatal(err)
	}
	if fr.AccessToken != "" || !fr.ExpiresAt.IsZero() || fr.Permit == nil || len(key) != 32 {
		t.Fatalf("renewal answer %+v", fr)
	}
	// The same renewal pass 1 offered as a login is refused: slot 0 is not current.
	pc = &pairing.Client{Domain: pairing.Domain{Name: c.domain.Name}, IDHash: c.id, Token: c.token}
	if _, _, err := c.exchange(context.Background(), e.url, pc, pin, wire.StartRequest{}, ""); !errors.Is(err, ErrPermitExpired) {
		t.Fatalf("renewal pass 1 as a login: %v", err)
	}
}

func TestRenewPermitsImpostor(t *testing.T) {
	e := newEnv(t)
	pin := []byte("4921")
	c := e.enroll(t, "dave@example.com", pin)
	before := c.Status()
	evil := newImpostor(t, e)
	if err := c.RenewPermits(context.Background(), evil, pin, 2); !errors.Is(err, ErrServerNotAuthentic) {
		t.Fatalf("got %v", err)
	}
	if after := c.Status(); len(after.Permits) != len(before.Permits) || after.Permits[0] != before.Permits[0] {
		t.Fatal("the impostor's answer changed the permits")
	}
}

func TestRenewPermitsInterception(t *testing.T) {
	e := newEnv(t)
	pin := []byte("4921")
	e.enroll(t, "erin@example.com", pin)
	proxyURL, ca := interceptingProxy(t, e.hs)
	e.roots.AddCert(ca)
	c := e.open(t)
	if err := c.RenewPermits(context.Background(), proxyURL, pin, 1); !errors.Is(err, ErrPossibleInterception) {
		t.Fatalf("through the proxy: %v", err)
	}
	if err := c.RenewPermits(context.Background(), e.url, pin, 1); err != nil {
		t.Fatalf("direct: %v", err)
	}
}
