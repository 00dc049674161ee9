package wire

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"testing"
)

const origin = "polyroot/api.example.com/dta-1"

func leaf(i int) []byte { return []byte(fmt.Sprintf("leaf %d", i)) }

func TestPromise(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(nil)
	otherPub, _, _ := ed25519.GenerateKey(nil)
	p := NewPromise(key, origin, 42, leaf(1))
	if err := p.Verify(pub, leaf(1)); err != nil {
		t.Fatal(err)
	}
	cases := map[string]error{
		"fail/other-key":   p.Verify(otherPub, nil),
		"fail/other-leaf":  p.Verify(pub, leaf(2)),
		"fail/index-moved": (&Promise{Origin: origin, Index: 43, LeafHash: p.LeafHash, Signature: p.Signature}).Verify(pub, nil),
		"fail/origin":      (&Promise{Origin: "x", Index: 42, LeafHash: p.LeafHash, Signature: p.Signature}).Verify(pub, nil),
		"fail/short-hash":  (&Promise{Origin: origin, Index: 42, LeafHash: p.LeafHash[:31], Signature: p.Signature}).Verify(pub, nil),
	}
	for name, err := range cases {
		if !errors.Is(err, ErrPromise) {
			t.Errorf("%s: got %v", name, err)
		}
	}
}
