package ledger

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/polyroot/polyroot/dta"
	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/internal/testdomain"
	"github.com/polyroot/polyroot/internal/ticket"
)

// TestAuditKeyEntries: the DTAs of a threshold domain whose bundle names its transcript
// log a key entry at start; the audit lists it per DTA (serial, transcript hash, C_i)
// among the issuances and is OK; audited against a bundle naming another transcript,
// every DTA's log lacks its key entry, a problem.
func TestAuditKeyEntries(t *testing.T) {
	d := testdomain.NewThreshold(t, "audit-key.example.com", 2, 3, 0)
	sum := sha256.Sum256([]byte("the transcript of the key generation"))
	nb := *d.Bundle
	nb.Serial, nb.TranscriptSHA256 = 1, hex.EncodeToString(sum[:])
	if _, _, err := bundle.Sign(&nb, d.Registrar); err != nil {
		t.Fatal(err)
	}
	for _, x := range d.DTAs {
		x.Configure(func(c *dta.Config) { c.Bundle = &nb }) // restarts it under nb
	}
	auditIssue(t, d, ticket.KindClient, auditRandomIDHash(), 0, 0)
	for i, rec := range nb.DTAs {
		auditCheckpoint(t, d.DTAs[i].URL+"/v1/log", rec.LogOrigin, auditPub(t, &rec), 2)
	}
	env := newAuditChain(t, &nb)
	r, err := Audit(context.Background(), env.config(&nb))
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() {
		t.Fatalf("problems %q", r.Problems())
	}
	for i, dr := range r.DTAs {
		if dr.Scanned != 2 || len(dr.Keys) != 1 {
			t.Fatalf("DTA %d: scanned %d, key entries %+v; want 2 entries, one key entry", dr.Index, dr.Scanned, dr.Keys)
		}
		k := dr.Keys[0]
		if k.Index != 0 || k.Serial != 1 || k.TranscriptSHA256 != nb.TranscriptSHA256 || k.Commitment != nb.DTAs[i].Commitment || k.Time.IsZero() {
			t.Fatalf("DTA %d: key entry %+v", dr.Index, k)
		}
	}

	// A bundle naming another transcript (the same sharing otherwise): no DTA logged it.
	other := nb
	other.TranscriptSHA256 = strings.Repeat("0e", 32)
	r, err = Audit(context.Background(), env.config(&other))
	if err != nil {
		t.Fatal(err)
	}
	p := r.Problems()
	if len(p) != 3 {
		t.Fatalf("problems %q, want one per DTA", p)
	}
	for i, s := range p {
		if want := fmt.Sprintf("DTA %d log polyroot/audit-key.example.com/dta-%d: no key entry names the bundle's serial 1, transcript %s", i+1, i+1, other.TranscriptSHA256); !strings.HasPrefix(s, want) {
			t.Fatalf("problem %q, want prefix %q", s, want)
		}
	}

	// The bundle before (no transcript): the key entries are listed, no problem.
	r, err = Audit(context.Background(), env.config(d.Bundle))
	if err != nil || !r.OK() || len(r.DTAs[0].Keys) != 1 {
		t.Fatalf("old bundle: %v, problems %q", err, r.Problems())
	}

	// DTA 1 goes back to a bundle of serial 0 (another transcript): its log says so,
	// and the audit names it.
	back := *d.Bundle
	sum0 := sha256.Sum256([]byte("an older transcript"))
	back.TranscriptSHA256 = hex.EncodeToString(sum0[:])
	if _, _, err := bundle.Sign(&back, d.Registrar); err != nil {
		t.Fatal(err)
	}
	d.DTAs[0].Configure(func(c *dta.Config) { c.Bundle = &back })
	auditCheckpoint(t, d.DTAs[0].URL+"/v1/log", nb.DTAs[0].LogOrigin, auditPub(t, &nb.DTAs[0]), 3)
	r, err = Audit(context.Background(), env.config(&nb))
	if err != nil {
		t.Fatal(err)
	}
	want := "DTA 1 log polyroot/audit-key.example.com/dta-1: key entry 2 names serial 0 after serial 1 (entry 0): the DTA went back to an older sharing"
	if p := r.Problems(); !slices.Contains(p, want) {
		t.Fatalf("problems %q, want %q", p, want)
	}
}

// TestAuditServerShares: every server-key share a DTA issued is in the audit, per DTA
// (whoever holds the registrar key can get the server key with a ticket of its own, so
// the auditor must see each one).
func TestAuditServerShares(t *testing.T) {
	d := testdomain.New(t, "audit-server.example.com", 2, 0)
	auditIssue(t, d, ticket.KindClient, auditRandomIDHash(), 0, 0)
	auditIssue(t, d, ticket.KindServer, "", 0, 0)
	for i, rec := range d.Bundle.DTAs {
		auditCheckpoint(t, d.DTAs[i].URL+"/v1/log", rec.LogOrigin, auditPub(t, &rec), 2)
	}
	r, err := Audit(context.Background(), newAuditChain(t, d.Bundle).config(d.Bundle))
	if err != nil || !r.OK() {
		t.Fatalf("audit: %v, problems %q", err, r.Problems())
	}
	for _, dr := range r.DTAs {
		if len(dr.ServerShares) != 1 {
			t.Fatalf("DTA %d: server shares %+v, want the one issued", dr.Index, dr.ServerShares)
		}
		s := dr.ServerShares[0]
		if s.Index != 1 || len(s.TicketSHA256) != 64 || len(s.SealedSHA256) != 64 || s.Time.IsZero() {
			t.Fatalf("DTA %d: server share %+v", dr.Index, s)
		}
	}
}
