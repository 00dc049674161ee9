package dta

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/polyroot/polyroot/internal/ticket"
	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/pairing"
)

// checkShares verifies each DTA's answer (promise, entry, DLEQ proof) and returns the
// combined point.
func (d *domain) checkShares(responses []*wire.DTAResponse, base *pairing.G1, kind string, slot uint64, id pairing.IDHash) *pairing.G1 {
	t := d.t
	t.Helper()
	var issued []pairing.IssuedShare
	var idx []uint32
	var parts []*pairing.G1
	for _, r := range responses {
		rec, _ := d.bundle.Find(r.DTA)
		pub, _ := rec.PublicKey()
		commit, _ := rec.CommitmentPoint()
		var sh *wire.DTAShare
		for i := range r.Shares {
			if r.Shares[i].Slot == slot {
				sh = &r.Shares[i]
			}
		}
		if sh == nil {
			t.Fatalf("DTA %d: no share for slot %d", r.DTA, slot)
		}
		if err := sh.Promise.Verify(pub, sh.Entry); err != nil || sh.Promise.Origin != rec.LogOrigin {
			t.Fatalf("DTA %d: promise: %v", r.DTA, err)
		}
		e, err := wire.ParseEntry(sh.Entry)
		if err != nil {
			t.Fatal(err)
		}
		if e.Kind != kind || e.DTA != r.DTA || e.Subject != wire.Subject(id) || e.Slot != slot {
			t.Fatalf("DTA %d: entry %+v does not describe the share", r.DTA, e)
		}
		S, proof := openClientShare(t, sh)
		issued = append(issued, pairing.IssuedShare{Index: r.DTA, Commitment: commit, Share: S, Proof: proof})
		idx, parts = append(idx, r.DTA), append(parts, S)
	}
	if err := pairing.VerifyShares(base, issued, func(i uint32) []byte { return pairing.ShareContext(testDomain, i, kind, slot) }); err != nil {
		t.Fatal(err)
	}
	sum, err := pairing.Combine(pairing.Additive, idx, parts)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// TestEnrolProvisionLogin is the whole issuance path over HTTP: three DTAs issue a
// client key, permits and the server key; the shares verify and combine; a login with
// them succeeds and a wrong PIN fails.
func TestEnrolProvisionLogin(t *testing.T) {
	d := newDomain(t, 3, 3600)
	id := newID(t, "alice@example.com")
	slot := pairing.Domain{Name: testDomain, PermitPeriod: 3600}.Slot(d.now)

	clientTk := d.ticket(ticket.KindClient, id)
	permitTk := d.ticket(ticket.KindPermit, id, func(tk *ticket.Ticket) { tk.FirstSlot, tk.LastSlot = slot, slot+2 })
	serverTk := d.ticket(ticket.KindServer, id)

	var clients, permits []*wire.DTAResponse
	var sQ *pairing.G2
	for _, nd := range d.dtas {
		clients = append(clients, d.issue(nd, "/v1/shares/client", clientTk))
		p := d.issue(nd, "/v1/shares/permit", permitTk)
		if len(p.Shares) != 3 {
			t.Fatalf("DTA %d: %d permits for 3 slots", nd.index, len(p.Shares))
		}
		permits = append(permits, p)
		s := d.issue(nd, "/v1/shares/server", serverTk)
		share, err := pairing.DecodeG2(openShare(t, &s.Shares[0]))
		if err != nil {
			t.Fatal(err)
		}
		rec, _ := d.bundle.Find(nd.index)
		commit, _ := rec.CommitmentPoint()
		if err := pairing.VerifyServerShare(commit, share); err != nil {
			t.Fatalf("DTA %d server share: %v", nd.index, err)
		}
		if sQ == nil {
			sQ = share
		} else {
			sQ = sQ.Add(share)
		}
	}
	sA := d.checkShares(clients, pairing.IdentityPoint(id), "client", 0, id)
	var permit *pairing.G1
	for k := slot; k <= slot+2; k++ {
		p := d.checkShares(permits, pairing.PermitPoint(id, k, 3600), "permit", k, id)
		if k == slot {
			permit = p
		}
	}

	dom := pairing.Domain{Name: testDomain, PermitPeriod: 3600}
	key, err := pairing.NewServerKey(sQ)
	if err != nil {
		t.Fatal(err)
	}
	v := &pairing.Verifier{Domain: dom, Key: key}
	c := &pairing.Client{Domain: dom, IDHash: id, Token: pairing.ExtractPIN(testDomain, id, sA, []byte("2468")), Permit: permit, Slot: slot}
	for _, tc := range []struct {
		pin  string
		want bool
	}{{"2468", true}, {"2469", false}} {
		cs, p1, _ := c.Start(nil, []byte(tc.pin))
		ss, ch, err := v.Challenge(nil, p1, d.now)
		if err != nil {
			t.Fatal(err)
		}
		p2, _ := cs.Respond(ch, nil)
		fin, _, err := ss.Finish(p2, nil)
		if (err == nil) != tc.want {
			t.Fatalf("PIN %s: %v", tc.pin, err)
		}
		if err == nil {
			if _, err := cs.Finish(fin); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestTickets(t *testing.T) {
	d := newDomain(t, 1, 3600)
	nd := d.dtas[0]
	id := newID(t, "bob@example.com")
	other := newDomain(t, 1, 3600)
	cases := []struct {
		name, path, ticket string
		status             int
		code               string
	}{
		{"fail/expired", "/v1/shares/client", d.ticket(ticket.KindClient, id, func(tk *ticket.Ticket) { tk.NotAfter = d.now.Add(-time.Second) }), 401, "expired_ticket"},
		{"fail/forged", "/v1/shares/client", other.ticket(ticket.KindClient, id), 401, "invalid_ticket"},
		{"fail/wrong-kind", "/v1/shares/permit", d.ticket(ticket.KindClient, id), 400, "wrong_kind"},
		{"fail/other-domain", "/v1/shares/client", d.ticket(ticket.KindClient, id, func(tk *ticket.Ticket) { tk.Domain = "api.example.org" }), 403, "wrong_domain"},
		{"fail/garbage-ticket", "/v1/shares/client", "abc.def.ghi", 401, "invalid_ticket"},
		{"fail/low-order-seal-key", "/v1/shares/server", d.ticket(ticket.KindServer, id, func(tk *ticket.Ticket) { tk.SealKey = strings.Repeat("00", 32) }), 400, "bad_seal_key"},
		{"fail/low-order-client-key", "/v1/shares/client", d.ticket(ticket.KindClient, id, func(tk *ticket.Ticket) { tk.SealKey = strings.Repeat("00", 32) }), 400, "bad_seal_key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, e := post(t, nd.url, tc.path, "application/json", ticketBody(tc.ticket))
			if code != tc.status || e["code"] != tc.code {
				t.Fatalf("got %d %v, want %d %s", code, e, tc.status, tc.code)
			}
		})
	}
}

func TestRetryAndNonceReuse(t *testing.T) {
	d := newDomain(t, 1, 3600)
	nd := d.dtas[0]
	id := newID(t, "carol@example.com")
	tk := d.ticket(ticket.KindClient, id)
	first := d.issue(nd, "/v1/shares/client", tk)
	size := logSize(t, nd)
	again := d.issue(nd, "/v1/shares/client", tk)
	if !bytes.Equal(first.Shares[0].Sealed, again.Shares[0].Sealed) || !bytes.Equal(first.Shares[0].Entry, again.Shares[0].Entry) ||
		first.Shares[0].Promise.Index != again.Shares[0].Promise.Index {
		t.Fatal("a retry gave a different share or entry")
	}
	if got := logSize(t, nd); got != size {
		t.Fatalf("a retry grew the log from %d to %d", size, got)
	}
	// Another ticket with the same nonce is refused.
	var nonce string
	parsed, _ := ticket.Verify(tk, d.bundle.RegistrarPublicKey(), testDomain, ticket.KindClient, d.now)
	nonce = parsed.Nonce
	reuse := d.ticket(ticket.KindClient, newID(t, "mallory@example.com"), func(t *ticket.Ticket) { t.Nonce = nonce })
	if code, _, e := post(t, nd.url, "/v1/shares/client", "application/json", ticketBody(reuse)); code != http.StatusConflict || e["code"] != "nonce_reused" {
		t.Fatalf("got %d %v", code, e)
	}
	// Restarted, the DTA still knows the nonce, and the retry still gives the same entry.
	d.stop(nd)
	d.start(nd)
	if code, _, e := post(t, nd.url, "/v1/shares/client", "application/json", ticketBody(reuse)); code != http.StatusConflict {
		t.Fatalf("after restart: got %d %v", code, e)
	}
	after := d.issue(nd, "/v1/shares/client", tk)
	if after.Shares[0].Promise.Index != first.Shares[0].Promise.Index || logSize(t, nd) != size {
		t.Fatal("after restart the retry made a new entry")
	}
}

func TestRevocation(t *testing.T) {
	d := newDomain(t, 2, 3600)
	id := newID(t, "dave@example.com")
	for _, nd := range d.dtas {
		d.issue(nd, "/v1/shares/client", d.ticket(ticket.KindClient, id))
		r := d.issue(nd, "/v1/revocations", d.ticket(ticket.KindRevoke, id))
		e, err := wire.ParseEntry(r.Shares[0].Entry)
		if err != nil || e.Kind != wire.KindRevoke {
			t.Fatalf("revocation entry %+v, %v", e, err)
		}
	}
	check := func() {
		for _, nd := range d.dtas {
			for _, path := range []string{"/v1/shares/permit", "/v1/shares/client"} {
				kind := ticket.KindPermit
				if path == "/v1/shares/client" {
					kind = ticket.KindClient
				}
				code, _, e := post(t, nd.url, path, "application/json", ticketBody(d.ticket(kind, id)))
				if code != http.StatusForbidden || e["code"] != "revoked" {
					t.Fatalf("DTA %d %s for a revoked identity: %d %v", nd.index, path, code, e)
				}
			}
		}
	}
	check()
	d.stop(d.dtas[0])
	d.start(d.dtas[0])
	check()
}

func logSize(t *testing.T, nd *node) uint64 {
	t.Helper()
	n, err := nd.svc.log.Size(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return n
}
