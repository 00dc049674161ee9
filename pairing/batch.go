//go:build !js

package pairing

import (
	"fmt"
	"io"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"

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
// verifying each item alone (up to a 2^-128 chance); when the halving costs more than
// checking the items alone would (many bad items), the rest are checked alone, in
// parallel, so that n items never cost more than n + 2·(bits of n) equation checks.
// Every session is used up. All sessions must come from Verifiers with the same
// ServerKey. Conclude each session afterwards with its result.
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
	b.slack = 2 * bits.Len(uint(len(pending)))
	bad := b.check(pending)
	for _, i := range append(bad, b.checkAlone(b.rest)...) {
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
	// spent counts the equation checks run, resolved the items whose result they
	// settled. Bisection pays off while failures are rare (a bad item costs about
	// 2·log₂(n) checks); many bad items (a batch filled with bad pass 2) would cost up
	// to 2n−1, serially. So once spent runs slack ahead of resolved, the items not
	// yet settled go to rest and are checked alone (checkAlone): a batch costs at most
	// n + slack checks, about what checking each alone would. The decision depends
	// only on which items fail, not why, so a rejected item still costs what a wrong
	// PIN costs.
	spent, resolved, slack int
	rest                   []int
}

// check returns the indices of the items that fail, bisecting failing sub-batches
// depth first; items left to check alone go to b.rest.
func (b *batch) check(idx []int) (bad []int) {
	if b.spent-b.resolved >= b.slack {
		b.rest = append(b.rest, idx...)
		return nil
	}
	b.spent++
	if len(idx) == 1 {
		b.resolved++
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
		b.resolved += len(idx)
		return nil
	}
	half := len(idx) / 2
	return append(b.check(idx[:half]), b.check(idx[half:])...)
}

// checkAlone checks each item of idx alone and returns those that fail. The checks
// run on up to GOMAXPROCS goroutines: a batch given up on is mostly bad pass 2, and
// the good ones in it should not wait for all the others' checks in a row.
func (b *batch) checkAlone(idx []int) (bad []int) {
	failed := make([]bool, len(idx))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(idx)) {
		wg.Go(func() {
			for j := int(next.Add(1) - 1); j < len(idx); j = int(next.Add(1) - 1) {
				failed[j] = !b.key.checkEquation(&b.v[idx[j]], &b.p[idx[j]])
			}
		})
	}
	wg.Wait()
	for j, f := range failed {
		if f {
			bad = append(bad, idx[j])
		}
	}
	return bad
}
