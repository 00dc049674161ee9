//go:build !js

package pairing

import (
	"sync"

	bls "github.com/consensys/gnark-crypto/ecc/bls12-381"
)

// LoginPoints caches a Verifier's login points A' = H1(idhash) + T_k (A' = A without
// permits) by identity and permit slot, so that a device logging in again within its
// slot costs the server no hash to the curve: the two hashes are about a fifth of the
// server's work per login. The points depend only on public values (the idhash and
// the slot), so a cache holds nothing secret.
//
// It holds at most about max points: two generations of maps, the older dropped
// when the newer holds max/2, and a point found in the older moved to the newer, so
// the points in use stay and a flood of new idhashes only pushes out old ones.
//
// Caveat: a login whose point is cached is answered sooner (two hashes to the curve,
// about 0.2 ms here). Who sends a pass 1 for an idhash can thus tell whether that
// idhash sent one within the cache's reach recently; every pass 1 fills the cache,
// enrolled or not, so it says nothing about enrolment, PINs or failures.
type LoginPoints struct {
	mu       sync.Mutex
	cur, old map[loginPointKey]bls.G1Affine
	max      int
}

type loginPointKey struct {
	id   IDHash
	slot uint64
}

// NewLoginPoints returns an empty cache of at most about max points (at least 2).
func NewLoginPoints(max int) *LoginPoints {
	max = (max + 1) &^ 1
	if max < 2 {
		max = 2
	}
	return &LoginPoints{cur: make(map[loginPointKey]bls.G1Affine), max: max}
}

func (c *LoginPoints) get(k loginPointKey) (bls.G1Affine, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.cur[k]; ok {
		return p, true
	}
	p, ok := c.old[k]
	if ok {
		delete(c.old, k)
		c.putLocked(k, p)
	}
	return p, ok
}

func (c *LoginPoints) put(k loginPointKey, p bls.G1Affine) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(k, p)
}

func (c *LoginPoints) putLocked(k loginPointKey, p bls.G1Affine) {
	if len(c.cur) >= c.max/2 {
		c.old, c.cur = c.cur, make(map[loginPointKey]bls.G1Affine, c.max/2)
	}
	c.cur[k] = p
}

// Len returns how many points the cache holds.
func (c *LoginPoints) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.cur) + len(c.old)
}

// loginPoint returns A' for pass 1 of identity id with permit slot: from the cache
// when there is one, else hashed with gnark-crypto's variable-time code (its inputs
// are public) and cached.
func (v *Verifier) loginPoint(id IDHash, slot uint64) bls.G1Affine {
	k := loginPointKey{id, slot}
	if v.Points != nil {
		if p, ok := v.Points.get(k); ok {
			return p
		}
	}
	p := hashToG1VarTime(id[:], DSTIdentity)
	if v.Domain.PermitPeriod != 0 {
		t := hashToG1VarTime(permitMessage(id, slot, v.Domain.PermitPeriod), DSTPermit)
		p.Add(&p, &t)
	}
	if v.Points != nil {
		v.Points.put(k, p)
	}
	return p
}

// hashToG1VarTime is HashToG1 with gnark-crypto's variable-time code: public inputs only.
func hashToG1VarTime(msg []byte, dst string) bls.G1Affine {
	p, err := bls.HashToG1(msg, []byte(dst))
	if err != nil {
		panic("pairing: " + err.Error()) // unreachable: the tags are short and fixed
	}
	return p
}
