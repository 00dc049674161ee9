//go:build !js

package pairing

import (
	"fmt"
	"testing"
)

// TestLoginPoints: the cached and the variable-time login points are the
// constant-time ones, with and without permits, and the cache stays within its bound.
func TestLoginPoints(t *testing.T) {
	for _, period := range []uint64{0, 86400} {
		t.Run(fmt.Sprintf("period=%d", period), func(t *testing.T) {
			d := Domain{Name: "api.example.com", PermitPeriod: period}
			v := &Verifier{Domain: d, Points: NewLoginPoints(8)}
			for i := range 40 {
				id := IDHash{byte(i), byte(i >> 8)}
				slot := uint64(20000 + i%3)
				want := d.loginPoint(id, slot).affine()
				for range 2 { // a miss, then a hit
					if got := v.loginPoint(id, slot); !got.Equal(&want) {
						t.Fatalf("identity %d slot %d: cached point differs", i, slot)
					}
				}
				if n := v.Points.Len(); n > 8 {
					t.Fatalf("cache holds %d points, bound 8", n)
				}
			}
		})
	}
}

// loginPoint is the constant-time reference for Verifier.loginPoint: A' = A + T_k,
// or A when permits are disabled.
func (d Domain) loginPoint(id IDHash, slot uint64) *G1 {
	a := IdentityPoint(id)
	if d.PermitPeriod == 0 {
		return a
	}
	return a.Add(PermitPoint(id, slot, d.PermitPeriod))
}
