package ledger

import (
	"context"
	"crypto/ecdsa"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/polyroot/polyroot/internal/testbin"
	"github.com/polyroot/polyroot/internal/testdomain"
	"github.com/polyroot/polyroot/internal/ticket"
)

// gethAnchorAll anchors, for every DTA of d, its checkpoint at size on the chain
// (one Anchorer per DTA, stepped until the anchor is mined).
func gethAnchorAll(t *testing.T, ctx context.Context, c Chain, contract common.Address, key *ecdsa.PrivateKey, d *testdomain.Domain, size uint64) {
	t.Helper()
	for i, rec := range d.Bundle.DTAs {
		root := auditCheckpoint(t, d.DTAs[i].URL+"/v1/log", rec.LogOrigin, auditPub(t, &rec), size)
		a := &Anchorer{Backend: c, Contract: contract, Key: key, LogOrigin: rec.LogOrigin, Confirmations: 1,
			Checkpoint: func(context.Context) (uint64, []byte, error) { return size, root, nil }, Logger: anchorTestLogger(t)}
		deadline := time.Now().Add(30 * time.Second)
		for a.Status().Confirmed.Size != size {
			if err := a.Step(ctx); err != nil {
				t.Logf("anchor step for DTA %d: %v", rec.Index, err)
			}
			if time.Now().After(deadline) {
				t.Fatalf("DTA %d: size %d not anchored on geth within 30 s: %+v", rec.Index, size, a.Status())
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// TestAuditAgainstGeth runs the auditor against anchors on a real `geth --dev`.
func TestAuditAgainstGeth(t *testing.T) {
	g := testbin.StartGeth(t)
	ctx := anchorCtx(t)
	c, err := Dial(ctx, g.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var owner, anchorer *ecdsa.PrivateKey
	for _, k := range []**ecdsa.PrivateKey{&owner, &anchorer} {
		if *k, err = crypto.GenerateKey(); err != nil {
			t.Fatal(err)
		}
	}
	anchorGethFund(t, c, Address(owner), Address(anchorer))
	contract, err := Deploy(ctx, c, owner)
	if err != nil {
		t.Fatal(err)
	}
	d := testdomain.New(t, "geth-audit.example.com", 3, 0)
	for _, rec := range d.Bundle.DTAs {
		if err := Register(ctx, c, owner, contract, rec.LogOrigin, Address(anchorer)); err != nil {
			t.Fatal(err)
		}
	}

	var size uint64
	for range 4 {
		auditIssue(t, d, ticket.KindClient, auditRandomIDHash(), 0, 0)
		size++
	}
	gethAnchorAll(t, ctx, c, contract, anchorer, d, size)

	cfg := AuditConfig{Bundle: d.Bundle, Chain: c, Contract: contract}
	r, err := Audit(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() {
		t.Fatalf("audit against geth: problems %q", r.Problems())
	}
	for _, dr := range r.DTAs {
		if dr.Status != AuditOK || dr.CheckpointSize != size || dr.Lag != 0 || len(dr.Anchors) != 1 ||
			dr.Anchors[0].Size != size || dr.Anchors[0].Block == 0 || dr.Anchors[0].Time.IsZero() {
			t.Fatalf("DTA %d: %+v; want ok at size %d, one anchor, lag 0", dr.Index, dr, size)
		}
	}

	// The logs grow past the anchors: still OK, with a lag.
	for range 3 {
		auditIssue(t, d, ticket.KindClient, auditRandomIDHash(), 0, 0)
	}
	for i, rec := range d.Bundle.DTAs {
		auditCheckpoint(t, d.DTAs[i].URL+"/v1/log", rec.LogOrigin, auditPub(t, &rec), size+3)
	}
	r, err = Audit(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() {
		t.Fatalf("audit against geth after growth: problems %q", r.Problems())
	}
	for _, dr := range r.DTAs {
		if dr.Status != AuditOK || dr.CheckpointSize != size+3 || dr.Lag != 3 || dr.Scanned != size+3 {
			t.Fatalf("DTA %d after growth: %+v; want ok at size %d, lag 3", dr.Index, dr, size+3)
		}
	}
}
