package ledger

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/polyroot/polyroot/dta"
	"github.com/polyroot/polyroot/internal/testdomain"
	"github.com/polyroot/polyroot/internal/ticket"
	"github.com/polyroot/polyroot/internal/wire"
)

// verifyIssue sends a client ticket for a new identity to every DTA of d and returns
// the receipts, as a client would keep them.
func verifyIssue(t testing.TB, d *testdomain.Domain) []Receipt {
	t.Helper()
	token, err := ticket.Sign(ticket.Ticket{Domain: d.Name, Kind: ticket.KindClient, SealKey: testdomain.SealKey, IDHash: auditRandomIDHash(),
		NotAfter: time.Now().Add(time.Hour)}, d.Registrar)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(wire.DTARequest{Ticket: token})
	var out []Receipt
	for i, x := range d.DTAs {
		resp, err := http.Post(x.URL+"/v1/shares/client", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var r wire.DTAResponse
		if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &r) != nil || len(r.Shares) != 1 {
			t.Fatalf("DTA %d: %d %s", x.Index, resp.StatusCode, raw)
		}
		s := r.Shares[0]
		out = append(out, Receipt{DTA: x.Index, Origin: d.Bundle.DTAs[i].LogOrigin, Entry: s.Entry, Index: s.Promise.Index, Promise: s.Promise})
	}
	return out
}

// verifyAnchorAll anchors every DTA's checkpoint at size.
func verifyAnchorAll(t testing.TB, d *testdomain.Domain, env *auditChainEnv, size uint64) {
	t.Helper()
	for i, rec := range d.Bundle.DTAs {
		root := auditCheckpoint(t, d.DTAs[i].URL+"/v1/log", rec.LogOrigin, auditPub(t, &rec), size)
		env.anchor(rec.LogOrigin, size, root)
	}
}

func TestVerifyProofBundle(t *testing.T) {
	ctx := context.Background()
	d := testdomain.New(t, "verify.example.com", 3, 0)
	env := newAuditChain(t, d.Bundle)
	var receipts []Receipt
	for range 4 {
		auditIssue(t, d, ticket.KindClient, auditRandomIDHash(), 0, 0) // others' entries
		receipts = append(receipts, verifyIssue(t, d)...)
	}
	verifyAnchorAll(t, d, env, 8)
	pending := verifyIssue(t, d) // issued after the anchor: entry 8 of each log
	receipts = append(receipts, pending...)
	for i, rec := range d.Bundle.DTAs {
		auditCheckpoint(t, d.DTAs[i].URL+"/v1/log", rec.LogOrigin, auditPub(t, &rec), 9)
	}

	cfg := ProofConfig{Bundle: d.Bundle, Chain: env.sim.Client(), Contract: env.addr}
	pb, err := FetchProofBundle(ctx, cfg, receipts)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := MarshalProofBundle(pb)
	if err != nil {
		t.Fatal(err)
	}
	// Offline from here: no chain, no DTAs.
	for _, x := range d.DTAs {
		x.Stop()
	}
	env.sim.Close()
	pb, err = ParseProofBundle(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(pb.DTAs) != 3 || pb.DTAs[0].AnchoredSize != 8 || pb.DTAs[0].Block == 0 || pb.DTAs[0].Tx == ([32]byte{}) || pb.ChainID != 1337 {
		t.Fatalf("proof bundle of chain %d: %+v", pb.ChainID, pb.DTAs)
	}
	if _, err := VerifyProofBundle(pb, anchoredAt(d.Bundle, 1337, env.addr), receipts, 0); err != nil {
		t.Fatalf("a bundle naming the proofs' chain and contract: %v", err)
	}
	if _, err := VerifyProofBundle(pb, anchoredAt(d.Bundle, 1, env.addr), receipts, 0); !errors.Is(err, ErrAnchoring) {
		t.Fatalf("a bundle naming another chain: %v", err)
	}

	rep, err := VerifyProofBundle(pb, d.Bundle, receipts, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || len(rep.Receipts) != 15 {
		t.Fatalf("honest domain: %q", rep.Failures())
	}
	for _, r := range rep.Receipts {
		want := ReceiptIncluded
		if r.Index == 8 {
			want = ReceiptPending
		}
		if r.Status != want || r.AnchoredSize != 8 || r.Block == 0 {
			t.Fatalf("receipt %+v, want %s under the anchor at 8", r, want)
		}
	}

	// A receipt whose entry was altered.
	bad := append([]Receipt(nil), receipts...)
	bad[4].Entry = bytes.Replace(bytes.Clone(bad[4].Entry), []byte(`"client"`), []byte(`"permit"`), 1)
	rep, err = VerifyProofBundle(pb, d.Bundle, bad, 0)
	if err != nil {
		t.Fatal(err)
	}
	if f := rep.Failures(); rep.OK() || len(f) != 1 ||
		!strings.HasPrefix(f[0], "DTA 2 log polyroot/verify.example.com/dta-2 entry 3: the DTA's promise does not verify") {
		t.Fatalf("altered entry: %q", f)
	}

	// A saved checkpoint that was tampered with, or is older than the anchor.
	for _, tc := range []struct {
		name, want string
		mutate     func(*DTAProofs)
	}{
		{"fail/checkpoint-tampered", "the saved checkpoint does not verify", func(d *DTAProofs) {
			lines := strings.SplitN(d.Checkpoint, "\n", 3) // origin, size, the rest
			d.Checkpoint = lines[0] + "\n" + lines[1] + "0\n" + lines[2]
		}},
		{"fail/checkpoint-older-than-anchor", "is older than the anchor", func(d *DTAProofs) { d.AnchoredSize = 1 << 20 }},
		// An anchor made up in the file (no chain to ask offline): a tree of one leaf,
		// under which that leaf is trivially included, is no prefix of the signed log.
		{"fail/anchor-forged", "is not a prefix of the log the DTA signed", func(d *DTAProofs) {
			d.AnchoredSize, d.AnchoredRoot, d.Consistency = 1, wire.LeafHash(d.Entries[0].Entry), nil
			d.Entries = []EntryProof{{Index: d.Entries[0].Index, Entry: d.Entries[0].Entry}}
		}},
		{"fail/consistency-tampered", "is not a prefix of the log the DTA signed", func(d *DTAProofs) {
			c := slices.Clone(d.Consistency)
			c[0] = bytes.Clone(c[0])
			c[0][0] ^= 1
			d.Consistency = c
		}},
		{"fail/consistency-missing", "is not a prefix of the log the DTA signed", func(d *DTAProofs) { d.Consistency = nil }},
	} {
		saved := pb.DTAs[0]
		tc.mutate(&pb.DTAs[0])
		rep, err := VerifyProofBundle(pb, d.Bundle, receipts, 0)
		pb.DTAs[0] = saved
		if err != nil {
			t.Fatal(err)
		}
		if rep.OK() || !strings.Contains(strings.Join(rep.Failures(), "\n"), tc.want) {
			t.Fatalf("%s: %q", tc.name, rep.Failures())
		}
	}

	// A pending entry dated after the fetch (by the DTA: a receipt without the
	// client's own time) could never be overdue.
	ahead := append([]Receipt(nil), receipts...)
	for i := range ahead {
		if ahead[i].Index == 8 && ahead[i].DTA == 1 {
			ahead[i].Issued = pb.Fetched.Add(time.Hour)
		}
	}
	if rep, err := VerifyProofBundle(pb, d.Bundle, ahead, time.Hour); err != nil || len(rep.Failures()) != 1 ||
		!strings.Contains(rep.Failures()[0], "after the proofs were fetched") {
		t.Fatalf("an entry dated ahead: %v %q", err, rep.Failures())
	}

	// A DTA that promised an entry it never logged (the promise verifies, the inclusion does not).
	seed, err := d.DTAs[2].Keys.Get(ctx, dta.SecretSigningKey)
	if err != nil {
		t.Fatal(err)
	}
	forged := append([]Receipt(nil), receipts...)
	e, err := wire.ParseEntry(forged[2].Entry)
	if err != nil {
		t.Fatal(err)
	}
	e.Time++
	if forged[2].Entry, err = e.Marshal(); err != nil {
		t.Fatal(err)
	}
	forged[2].Promise = wire.NewPromise(ed25519.NewKeyFromSeed(seed), forged[2].Origin, forged[2].Index, forged[2].Entry)
	pb.DTAs[2].Entries[0].Entry = forged[2].Entry // the DTA served the proof bundle this entry too
	rep, err = VerifyProofBundle(pb, d.Bundle, forged, 0)
	if err != nil {
		t.Fatal(err)
	}
	if f := rep.Failures(); len(f) != 1 ||
		!strings.HasPrefix(f[0], "DTA 3 log polyroot/verify.example.com/dta-3 entry 1: not included at index 1 under the root anchored at size 8 (block ") {
		t.Fatalf("entry never logged: %q", f)
	}

	// A receipt the proof bundle knows nothing of.
	if rep, _ := VerifyProofBundle(&ProofBundle{Version: ProofBundleVersion, Domain: d.Name}, d.Bundle, receipts[:1], 0); rep.OK() ||
		!strings.Contains(rep.Failures()[0], "the proof bundle has nothing for this DTA") {
		t.Fatalf("empty proof bundle: %q", rep.Failures())
	}
}

// Before any anchor, every receipt is pending.
func TestFetchProofBundleUnanchored(t *testing.T) {
	d := testdomain.New(t, "unanchored.example.com", 2, 0)
	env := newAuditChain(t, d.Bundle)
	receipts := verifyIssue(t, d)
	pb, err := FetchProofBundle(context.Background(), ProofConfig{Bundle: d.Bundle, Chain: env.sim.Client(), Contract: env.addr}, receipts)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := VerifyProofBundle(pb, d.Bundle, receipts, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Receipts {
		if r.Status != ReceiptPending || r.AnchoredSize != 0 {
			t.Fatalf("unanchored: %+v", r)
		}
	}

	// Past maxPending after its issuance (by the fetch time), a receipt still not
	// anchored FAILED; within it, or with no issuance time, it is pending.
	for _, tc := range []struct {
		name   string
		issued time.Time
		want   string
	}{
		{"fail/overdue", pb.Fetched.Add(-2 * time.Hour), ReceiptFailed},
		{"ok/recent", pb.Fetched.Add(-30 * time.Minute), ReceiptPending},
		// A receipt in the proofs was there when they were fetched: one "issued" after
		// that has the entry's time (a DTA dating it ahead) or a wrong clock.
		{"fail/issued-after-fetch", pb.Fetched.Add(time.Hour), ReceiptFailed},
		{"ok/unknown-issuance", time.Time{}, ReceiptPending},
	} {
		t.Run(tc.name, func(t *testing.T) {
			aged := slices.Clone(receipts)
			for i := range aged {
				aged[i].Issued = tc.issued
			}
			rep, err := VerifyProofBundle(pb, d.Bundle, aged, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rep.Receipts {
				if r.Status != tc.want {
					t.Fatalf("status %s (%s), want %s", r.Status, r.Reason, tc.want)
				}
				if tc.want == ReceiptFailed && !strings.Contains(r.Reason, "not anchored 2h0m0s after its issuance") && !strings.Contains(r.Reason, "after the proofs were fetched") {
					t.Fatalf("reason %q", r.Reason)
				}
			}
			if rep.OK() != (tc.want != ReceiptFailed) {
				t.Fatalf("OK() = %v", rep.OK())
			}
		})
	}
}
