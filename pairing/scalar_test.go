package pairing

import (
	"bytes"
	"crypto/rand"
	"math/big"
	"testing"

	"github.com/cloudflare/circl/ecc/bls12381/ff"
)

// TestReduceWide checks the constant-time reduction against math/big.
func TestReduceWide(t *testing.T) {
	order := new(big.Int).SetBytes(ff.ScalarOrder())
	inputs := [][48]byte{{}, [48]byte(bytes.Repeat([]byte{0xff}, 48))}
	var r [48]byte
	copy(r[16:], ff.ScalarOrder()) // exactly r, and r−1, r+1
	inputs = append(inputs, r)
	r[47]--
	inputs = append(inputs, r)
	r[47] += 2
	inputs = append(inputs, r)
	for range 200 {
		var b [48]byte
		rand.Read(b[:])
		inputs = append(inputs, b)
	}
	for _, in := range inputs {
		want := new(big.Int).Mod(new(big.Int).SetBytes(in[:]), order).FillBytes(make([]byte, ScalarSize))
		if got := reduceWide(in).Bytes(); !bytes.Equal(got, want) {
			t.Fatalf("reduceWide(%x) = %x, want %x", in, got, want)
		}
	}
}
