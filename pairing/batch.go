//go:build !js

package pairing

import (
	"fmt"
	"io"

	"github.com/consensys/gnark-crypto/ecc"
	bls "github.com/consensys/gnark-crypto/ecc/bls12-381"
	"github.com/consensys/gnark-crypto/ecc/bls12-381/fr"
)

// A BatchItem is one pass 2 waiting for verification in its session.
type BatchItem struct {
	Session *ServerSession
	Pass2   *Pass2
	// Reject marks a login to refuse whatever its pass 2 holds (the identity is
	// blocked, unknown, revoked or expired). Its place in the batch is taken by a pair
	// of points that never verifies, so it costs what a wrong PIN costs, the splitting
	// of a failing batch included, and neither the batch's result nor its time depends
	// on whether its pass 2 would have verified. Its result is ErrAuthFailed.
	Reject bool
}

// VerifyBatch checks the pass-2 equations of many logins at once and returns one
// result per item: nil when the item verified (its session may then be Confirmed),
// the reason otherwise. With random 128-bit coefficients ρ_j it checks
//
//	e(Σ ρ_j V_j, Q) · e(Σ ρ_j (U_j + y_j·A'_j), sQ) = 1
//
// with two multi-scalar multiplications and one 2-pairing. A failing batch is split
// in halves until every bad item is found, so the results are exactly those of
// verifying each item alone (up to a 2^-128 chance). Every session is used up.
// All sessions must come from Verifiers with the same ServerKey. Conclude each
// session afterwards with its result.
func VerifyBatch(rand io.Reader, items []BatchItem) []error {
	results := make([]error, len(items))
	var key *ServerKey
	var pending []int
	for i, it := range items {
		if it.Session == nil {
			results[i] = ErrAuthFailed
			continue
		}
		if err := it.Session.take(it.Pass2); err != nil {
			results[i] = err
			continue
		}
		if key == nil {
			key = it.Session.key
		} else if it.Session.key != key {
			results[i] = fmt.Errorf("pairing: batch mixes server keys")
			continue
		}
		pending = append(pending, i)
	}
	if len(pending) == 0 {
		return results
	}
	b := batch{key: key, v: make([]bls.G1Affine, len(items)), p: make([]bls.G1Affine, len(items)), rho: make([]fr.Element, len(items))}
	var buf [16]byte
	for _, i := range pending {
		if _, err := io.ReadFull(randOrDefault(rand), buf[:]); err != nil {
			err = fmt.Errorf("pairing: reading randomness: %w", err)
			for _, j := range pending {
				results[j] = err // no coefficient, no verification: refuse all
			}
			return results
		}
		buf[0] |= 0x80 // a full 128-bit, non-zero coefficient
		b.rho[i].SetBytes(buf[:])
		if items[i].Reject {
			b.v[i], b.p[i] = key.decoyV, key.decoyP
		} else {
			b.v[i], b.p[i] = items[i].Pass2.V.affine(), items[i].Session.p
		}
	}
	for _, i := range b.check(pending) {
		results[i] = ErrAuthFailed
	}
	for i, it := range items {
		switch {
		case results[i] != nil:
		case it.Reject: // only if the decoy verified: never, up to a 2^-255 chance
			results[i] = ErrAuthFailed
		default:
			it.Session.verifiedV = it.Pass2.V.Bytes()
		}
	}
	return results
}

type batch struct {
	key  *ServerKey
	v, p []bls.G1Affine
	rho  []fr.Element
}

// check returns the indices of the items that fail, bisecting failing sub-batches.
func (b *batch) check(idx []int) (bad []int) {
	if len(idx) == 1 {
		if !b.key.checkEquation(&b.v[idx[0]], &b.p[idx[0]]) {
			return idx
		}
		return nil
	}
	v := make([]bls.G1Affine, len(idx))
	p := make([]bls.G1Affine, len(idx))
	rho := make([]fr.Element, len(idx))
	for j, i := range idx {
		v[j], p[j], rho[j] = b.v[i], b.p[i], b.rho[i]
	}
	var sv, sp bls.G1Affine
	_, errV := sv.MultiExp(v, rho, ecc.MultiExpConfig{})
	_, errP := sp.MultiExp(p, rho, ecc.MultiExpConfig{})
	if errV == nil && errP == nil && b.key.checkEquation(&sv, &sp) {
		return nil
	}
	half := len(idx) / 2
	return append(b.check(idx[:half]), b.check(idx[half:])...)
}
