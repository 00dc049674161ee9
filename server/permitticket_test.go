package server

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/polyroot/polyroot/internal/ticket"
	"github.com/polyroot/polyroot/internal/wire"
)

// TestPermitTicketWindow: within one window the same permit request gets the same
// ticket, which the DTAs answer from their records (no new issuance, no new log
// entries); another number of days, or the next window, gets another. The ticket
// keeps at least three quarters of its life.
func TestPermitTicketWindow(t *testing.T) {
	var ahead atomic.Int64
	e := newEnv(t, 3600)
	h := e.start(t, t.TempDir(), false, func(c *Config) {
		c.Now = func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
	})
	c := h.enrol(t, wire.EnrolmentRequest{ID: "peggy@example.test"}, "1234")
	res := h.login(t, c, "1234", loginOpts{})
	if res.status != 200 {
		t.Fatalf("login: %d %s", res.status, res.body)
	}
	permits := func(days int) wire.PermitTicket {
		t.Helper()
		var pt wire.PermitTicket
		if st, body := do(t, h.http, "POST", h.url+"/v1/permits", res.fin.AccessToken, wire.PermitRequest{Days: days}, &pt); st != 200 {
			t.Fatalf("permits: %d %s", st, body)
		}
		return pt
	}
	first := permits(3)
	tk, err := ticket.Verify(first.Ticket, e.d.Bundle.RegistrarPublicKey(), e.d.Bundle.Domain, ticket.KindPermit, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if left := time.Until(tk.NotAfter); left < 3*time.Hour/4 {
		t.Fatalf("the ticket has %v left, want at least 3/4 of an hour", left)
	}
	if again := permits(3); again.Ticket != first.Ticket {
		t.Fatal("the same request within the window got another ticket")
	}
	if other := permits(2); other.Ticket == first.Ticket {
		t.Fatal("another number of days got the same ticket")
	}
	if err := c.fetchPermits(t, e, first.Ticket); err != nil {
		t.Fatal(err)
	}
	if err := c.fetchPermits(t, e, first.Ticket); err != nil {
		t.Fatalf("the same ticket again (the DTAs' records answer it): %v", err)
	}
	ahead.Store(int64(permitWindow))
	if next := permits(3); next.Ticket == first.Ticket {
		t.Fatal("the next window got the same ticket")
	}
}
