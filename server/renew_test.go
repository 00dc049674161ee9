package server

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/pairing"
)

// renewEnv starts a TLS server of a domain with hour-long permits whose clock the test
// moves, and enrols one identity with two permit periods.
func renewEnv(t *testing.T, id string) (*env, *harness, *tclient, *clock) {
	t.Helper()
	e := newEnv(t, 3600)
	clk := &clock{}
	h := e.start(t, t.TempDir(), true, func(c *Config) { c.Now = clk.now })
	h.singleConnTLS()
	c := h.enrol(t, wire.EnrolmentRequest{ID: id, PermitDays: 2}, "1234")
	return e, h, c, clk
}

func TestRenewal(t *testing.T) {
	e, h, c, clk := renewEnv(t, "alice")
	// Ten hours later every permit is past: a login is impossible, a renewal is not.
	clk.advance(10 * time.Hour)
	cur := pairing.Domain{PermitPeriod: 3600}.Slot(clk.now())
	old := c.pkg.LastSlot
	if res := h.login(t, c, "1234", loginOpts{slot: &old}); res.status != 409 {
		t.Fatalf("login with the last permit: %d %s", res.status, res.body)
	}
	// Days 3 asks for more than the enrolment's PermitDays (2): the registrar's bound.
	res := h.login(t, c, "1234", loginOpts{renew: true, days: 3})
	if res.status != 200 {
		t.Fatalf("renewal: %d %s", res.status, res.body)
	}
	// The client checked the server's tag (h.login fails the test otherwise).
	pt := res.fin.Permit
	if res.key == nil || res.fin.ID != "alice" || pt == nil || pt.FirstSlot != cur || pt.LastSlot != cur+1 {
		t.Fatalf("renewal answer: %s", res.body)
	}
	if res.fin.AccessToken != "" || bytes.Contains(res.body, []byte("access_token")) || bytes.Contains(res.body, []byte("expires_at")) {
		t.Fatalf("a renewal got an access token: %s", res.body)
	}
	if err := c.fetchPermits(t, e, pt.Ticket); err != nil {
		t.Fatal(err)
	}
	res = h.login(t, c, "1234", loginOpts{slot: &cur})
	if res.status != 200 || res.fin.AccessToken == "" || res.fin.Permit != nil {
		t.Fatalf("login with the renewed permit: %d %s", res.status, res.body)
	}
	// Days 0: the enrolment's PermitDays.
	res = h.login(t, c, "1234", loginOpts{renew: true})
	if res.status != 200 || res.fin.Permit.LastSlot != res.fin.Permit.FirstSlot+1 {
		t.Fatalf("renewal with the default days: %d %s", res.status, res.body)
	}
	checkNoSecrets(t, e, h, "1234")
}

// unblockBy resets id's failure count through the admin API.
func (h *harness) unblockBy(t *testing.T, id string) {
	t.Helper()
	if st, body := do(t, h.http, "POST", h.url+"/v1/admin/unblock", testAdmin, wire.IdentityRequest{ID: id}, nil); st != 200 {
		t.Fatalf("unblock: %d %s", st, body)
	}
}

func TestRenewalLockout(t *testing.T) {
	_, h, c, _ := renewEnv(t, "bob")
	renew := loginOpts{renew: true}
	var bodies [][]byte
	// Wrong PINs in renewals and logins count together, with the same answers.
	for i, o := range []loginOpts{renew, {}, renew} {
		res := h.login(t, c, "9999", o)
		if want := 2 - i; res.status != 401 || res.failure.Code != "login_failed" || res.failure.TriesLeft != want || res.fin.Permit != nil {
			t.Fatalf("wrong PIN %d: %d %s, want tries_left %d", i, res.status, res.body, want)
		}
		bodies = append(bodies, res.body)
	}
	for _, o := range []loginOpts{renew, {}} {
		if res := h.login(t, c, "1234", o); res.status != 401 || res.failure.TriesLeft != 0 {
			t.Fatalf("blocked, right PIN: %d %s", res.status, res.body)
		}
	}
	h.unblockBy(t, "bob")
	if res := h.login(t, c, "1234", renew); res.status != 200 {
		t.Fatalf("after unblock: %d %s", res.status, res.body)
	}
	// The renewal's success reset the count.
	if res := h.login(t, c, "0000", loginOpts{}); res.failure.TriesLeft != 2 || !bytes.Equal(res.body, bodies[0]) {
		t.Fatalf("after a successful renewal: %s", res.body)
	}
	// A channel binding mismatch is not counted.
	for range 3 {
		res := h.login(t, c, "1234", loginOpts{renew: true, binding: bytes.Repeat([]byte{7}, 32)})
		if res.status != 401 || !strings.Contains(string(res.body), "channel_binding_mismatch") {
			t.Fatalf("renewal on another channel: %d %s", res.status, res.body)
		}
	}
	if res := h.login(t, c, "1234", renew); res.status != 200 {
		t.Fatalf("binding mismatches were counted: %d %s", res.status, res.body)
	}
}

func TestRenewalRefused(t *testing.T) {
	_, h, c, clk := renewEnv(t, "carol")
	// Unknown identity: the same answer as a wrong PIN.
	ghost := *c
	ghost.id = pairing.IDHash{4, 5, 6}
	wrong := h.login(t, c, "9999", loginOpts{renew: true})
	if res := h.login(t, &ghost, "1234", loginOpts{renew: true}); res.status != 401 || !bytes.Equal(res.body, wrong.body) {
		t.Fatalf("unknown identity: %d %s, want %s", res.status, res.body, wrong.body)
	}
	h.unblockBy(t, "carol")
	// Revoked.
	if st, body := do(t, h.http, "POST", h.url+"/v1/admin/revoke", testAdmin, wire.IdentityRequest{ID: "carol"}, nil); st != 200 {
		t.Fatalf("revoke: %d %s", st, body)
	}
	if res := h.login(t, c, "1234", loginOpts{renew: true}); res.status != 401 || !bytes.Equal(res.body, wrong.body) {
		t.Fatalf("revoked: %d %s", res.status, res.body)
	}
	// Expired temporary identity.
	tmp := h.enrol(t, wire.EnrolmentRequest{ID: "dave", TTL: 60}, "1234")
	if res := h.login(t, tmp, "1234", loginOpts{renew: true}); res.status != 200 || res.fin.Permit == nil {
		t.Fatalf("temporary identity in time: %d %s", res.status, res.body)
	}
	clk.advance(time.Minute)
	if res := h.login(t, tmp, "1234", loginOpts{renew: true}); res.status != 401 || !bytes.Equal(res.body, wrong.body) {
		t.Fatalf("expired: %d %s", res.status, res.body)
	}
}

// A renewal never gets an access token, a login never a permit ticket, and the one's
// pass 1 is no use for the other.
func TestRenewalPurposes(t *testing.T) {
	_, h, c, _ := renewEnv(t, "erin")
	// A renewal's pass 1 (A' = A, slot 0) presented as a login: slot 0 is not current.
	if res := h.login(t, c, "1234", loginOpts{renew: true, purpose: wire.PurposeLogin}); res.status != 409 {
		t.Fatalf("renewal pass 1 as a login: %d %s", res.status, res.body)
	}
	// A login's pass 1 presented as a renewal: refused at pass 1.
	if res := h.login(t, c, "1234", loginOpts{purpose: wire.PurposeRenew}); res.status != 400 || !strings.Contains(string(res.body), "slot 0") {
		t.Fatalf("login pass 1 as a renewal: %d %s", res.status, res.body)
	}
	// A login says "login" or nothing; it gets a token and no permit ticket.
	if res := h.login(t, c, "1234", loginOpts{purpose: wire.PurposeLogin}); res.status != 200 || res.fin.AccessToken == "" || res.fin.Permit != nil {
		t.Fatalf("login: %d %s", res.status, res.body)
	}
	// Bad requests, none of them counted.
	for name, req := range map[string]any{
		"unknown purpose":   map[string]any{"pass1": []byte{1}, "purpose": "token"},
		"days of a login":   map[string]any{"pass1": []byte{1}, "days": 2},
		"too many days":     map[string]any{"pass1": []byte{1}, "purpose": "renew", "days": maxPermitDays + 1},
		"negative days":     map[string]any{"pass1": []byte{1}, "purpose": "renew", "days": -1},
		"malformed renewal": map[string]any{"pass1": []byte{1}, "purpose": "renew"},
	} {
		st, body := do(t, h.http, "POST", h.url+"/v1/login/start", "", req, nil)
		var f wire.LoginFailure
		json.Unmarshal(body, &f)
		if st != 400 || f.Code != "bad_request" {
			t.Errorf("%s: %d %s", name, st, body)
		}
	}
	if res := h.login(t, c, "0000", loginOpts{renew: true}); res.failure.TriesLeft != 2 {
		t.Fatalf("bad requests were counted: %s", res.body)
	}
}

func TestRenewalWithoutPermits(t *testing.T) {
	e := newEnv(t, 0)
	h := e.start(t, t.TempDir(), false)
	c := h.enrol(t, wire.EnrolmentRequest{ID: "frank"}, "1234")
	res := h.login(t, c, "1234", loginOpts{renew: true})
	if res.status != 400 || !strings.Contains(string(res.body), "no_permits") {
		t.Fatalf("renewal in a domain without permits: %d %s", res.status, res.body)
	}
}
