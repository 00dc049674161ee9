package server

import (
	"crypto/ecdh"
	"crypto/mlkem"
	"crypto/rand"
	"testing"

	"github.com/polyroot/polyroot/pairing"
)

// testKeyShare is a fresh client key share (login protocol polyroot/v2) for tests that
// make a challenge without a client: an ML-KEM-768 encapsulation key and an X25519
// public key, whose secrets are dropped.
func testKeyShare(t testing.TB) *pairing.EncapsulationKey {
	t.Helper()
	dk, err := mlkem.GenerateKey768()
	if err != nil {
		t.Fatal(err)
	}
	x, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := pairing.DecodeEncapsulationKey(append(dk.EncapsulationKey().Bytes(), x.PublicKey().Bytes()...))
	if err != nil {
		t.Fatal(err)
	}
	return ek
}
