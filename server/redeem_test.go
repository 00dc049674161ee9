package server

import (
	"crypto/hmac"
	"encoding/hex"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/polyroot/polyroot/internal/ticket"
	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/pairing"
)

// TestRedeemAgain: the same redemption sent again (its answer lost to a crash or the
// network) gets the same answer, tickets included; a redemption for any other key is
// refused, and so is the same one once the identity is revoked or the answer's tickets
// have expired, when the pruner deletes the used code. A code not yet used stays.
func TestRedeemAgain(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	h := newEnv(t, 3600).start(t, t.TempDir(), false, func(c *Config) { c.Now = clock })
	create := func(id string) wire.EnrolmentCreated {
		t.Helper()
		var created wire.EnrolmentCreated
		if st, body := do(t, h.http, "POST", h.url+"/v1/admin/enrolments", testAdmin, wire.EnrolmentRequest{ID: id}, &created); st != 200 {
			t.Fatalf("create %s: %d %s", id, st, body)
		}
		return created
	}
	redeem := func(req *wire.RedeemRequest, status int) *wire.EnrolPackage {
		t.Helper()
		var pkg wire.EnrolPackage
		st, body := do(t, h.http, "POST", h.url+"/v1/enrol", "", req, &pkg)
		if st != status || (st == http.StatusNotFound && !strings.Contains(string(body), "unknown_code")) {
			t.Fatalf("redeem: %d %s, want %d", st, body, status)
		}
		return &pkg
	}

	carol, dave, erin := create("carol"), create("dave"), create("erin")
	req := h.redeemRequest(t, carol.Code)
	first := redeem(req, 200)
	if again := redeem(req, 200); !reflect.DeepEqual(first, again) || first.ClientTicket == "" || first.PermitTicket == "" {
		t.Fatalf("the same redemption again: another answer:\n%+v\n%+v", first, again)
	}
	redeem(h.redeemRequest(t, carol.Code), 404)

	daveReq := h.redeemRequest(t, dave.Code)
	redeem(daveReq, 200)
	if st, body := do(t, h.http, "POST", h.url+"/v1/admin/revoke", testAdmin, wire.IdentityRequest{IDHash: dave.IDHash}, nil); st != 200 {
		t.Fatalf("revoke: %d %s", st, body)
	}
	redeem(daveReq, 404)

	// After the tickets expire: refused, and the pruner deletes the used codes only.
	mu.Lock()
	now = now.Add(h.srv.cfg.TicketTTL)
	mu.Unlock()
	redeem(req, 404)
	if n, err := h.srv.store.pruneCodes(clock()); err != nil || n != 2 {
		t.Fatalf("pruned %d codes (%v), want the 2 used ones", n, err)
	}
	redeem(h.redeemRequest(t, erin.Code), 200)
}

// TestRedeemPermitKey: a client that sends a permit key gets a client ticket for its
// client key and permit tickets, at redemption and after, for its permit key, under a
// package MAC and a proof that cover both; the same code for the same client key with
// another permit key is refused, and so is a permit key that is the client key or not
// 32 bytes. A client that sends one key gets both kinds of ticket for it.
func TestRedeemPermitKey(t *testing.T) {
	h := newEnv(t, 3600).start(t, t.TempDir(), false)
	create := func(id string) wire.EnrolmentCreated {
		t.Helper()
		var created wire.EnrolmentCreated
		if st, body := do(t, h.http, "POST", h.url+"/v1/admin/enrolments", testAdmin, wire.EnrolmentRequest{ID: id}, &created); st != 200 {
			t.Fatalf("create %s: %d %s", id, st, body)
		}
		return created
	}
	keys := func() (client, permit []byte) {
		client, _, err := wire.NewSealKey()
		if err != nil {
			t.Fatal(err)
		}
		permit, _, err = wire.NewSealKey()
		if err != nil {
			t.Fatal(err)
		}
		return client, permit
	}
	sealKeyOf := func(tk, kind string) string {
		t.Helper()
		v, err := ticket.Verify(tk, h.e.d.Bundle.RegistrarPublicKey(), h.e.d.Name, kind, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return v.SealKey
	}

	alice := create("alice")
	clientKey, permitKey := keys()
	for name, req := range map[string]*wire.RedeemRequest{
		"fail/permit-key-is-client-key": {ClientKey: clientKey, PermitKey: clientKey},
		"fail/permit-key-short":         {ClientKey: clientKey, PermitKey: permitKey[:31]},
	} {
		full, err := wire.NewRedeemRequest(alice.Code, h.e.d.Name, req.ClientKey, req.PermitKey)
		if err != nil {
			t.Fatal(err)
		}
		if st, body := do(t, h.http, "POST", h.url+"/v1/enrol", "", full, nil); st != http.StatusBadRequest {
			t.Fatalf("%s: %d %s", name, st, body)
		}
	}
	req, err := wire.NewRedeemRequest(alice.Code, h.e.d.Name, clientKey, permitKey)
	if err != nil {
		t.Fatal(err)
	}
	var pkg wire.EnrolPackage
	if st, body := do(t, h.http, "POST", h.url+"/v1/enrol", "", req, &pkg); st != 200 {
		t.Fatalf("redeem: %d %s", st, body)
	}
	_, codeKey := wire.CodeSecrets(alice.Code)
	if !hmac.Equal(pkg.MAC, wire.PackageMAC(codeKey, &pkg, clientKey, permitKey)) || hmac.Equal(pkg.MAC, wire.PackageMAC(codeKey, &pkg, clientKey, nil)) {
		t.Fatal("the package MAC does not cover the permit key")
	}
	if sealKeyOf(pkg.ClientTicket, ticket.KindClient) != hex.EncodeToString(clientKey) ||
		sealKeyOf(pkg.PermitTicket, ticket.KindPermit) != hex.EncodeToString(permitKey) {
		t.Fatal("the tickets do not name the client key and the permit key")
	}
	other := *req
	_, other.PermitKey = keys()
	if st, body := do(t, h.http, "POST", h.url+"/v1/enrol", "", &other, nil); st != http.StatusNotFound {
		t.Fatalf("the used code for another permit key: %d %s", st, body)
	}
	var id pairing.IDHash
	hex.Decode(id[:], []byte(pkg.IDHash))
	e, err := h.srv.store.enrolment(id)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := h.srv.permitTicket(id, e, 0, time.Now()); err != nil || sealKeyOf(pt.Ticket, ticket.KindPermit) != hex.EncodeToString(permitKey) {
		t.Fatalf("a later permit ticket: %v", err)
	}

	bob := create("bob")
	oneKey, _ := keys()
	legacy, err := wire.NewRedeemRequest(bob.Code, h.e.d.Name, oneKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st, body := do(t, h.http, "POST", h.url+"/v1/enrol", "", legacy, &pkg); st != 200 {
		t.Fatalf("redeem with one key: %d %s", st, body)
	}
	_, bobKey := wire.CodeSecrets(bob.Code)
	if sealKeyOf(pkg.PermitTicket, ticket.KindPermit) != hex.EncodeToString(oneKey) || !hmac.Equal(pkg.MAC, wire.PackageMAC(bobKey, &pkg, oneKey, nil)) {
		t.Fatal("one key: the permit ticket does not name it, or the MAC is not the one-key MAC")
	}
}
