//go:build !js

package pairing

import (
	"errors"
	"testing"
)

func TestVerifyServerShare(t *testing.T) {
	s, _ := RandomScalar(nil)
	c := G1Generator().Mul(s)
	if err := VerifyServerShare(c, G2Generator().Mul(s)); err != nil {
		t.Fatal(err)
	}
	other, _ := RandomScalar(nil)
	if err := VerifyServerShare(c, G2Generator().Mul(other)); !errors.Is(err, ErrInvalidShare) {
		t.Fatalf("got %v", err)
	}
}
