package ledger

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/polyroot/polyroot/internal/testdomain"
)

// FuzzParseProofBundle: a proof bundle file, whatever its bytes, is either refused or
// parsed and verified against a domain's receipts without a panic, and one that parses
// encodes back to bytes that parse to the same encoding. The seed is a real proof
// bundle of anchored and pending receipts.
func FuzzParseProofBundle(f *testing.F) {
	d := testdomain.New(f, "fuzz-proofs.example.com", 2, 0)
	env := newAuditChain(f, d.Bundle)
	receipts := verifyIssue(f, d)
	verifyAnchorAll(f, d, env, 1)
	receipts = append(receipts, verifyIssue(f, d)...) // pending
	pb, err := FetchProofBundle(context.Background(), ProofConfig{Bundle: d.Bundle, Chain: env.sim.Client(), Contract: env.addr}, receipts)
	if err != nil {
		f.Fatal(err)
	}
	seed, err := MarshalProofBundle(pb)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(`{"version":2,"domain":"fuzz-proofs.example.com","dtas":[{"dta":1,"anchored_size":5,"entries":[{"index":3,"proof":["0x00"]}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		pb, err := ParseProofBundle(data)
		if err != nil {
			return
		}
		if _, err := VerifyProofBundle(pb, d.Bundle, receipts, time.Hour); err != nil {
			return
		}
		enc, err := MarshalProofBundle(pb)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseProofBundle(enc)
		if err != nil {
			t.Fatalf("an encoded proof bundle does not parse: %v\n%s", err, enc)
		}
		if enc2, _ := MarshalProofBundle(again); !bytes.Equal(enc, enc2) {
			t.Fatalf("the encoding changed on a round trip:\n%s\n%s", enc, enc2)
		}
	})
}
