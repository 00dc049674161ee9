package bundle

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"reflect"

	"github.com/polyroot/polyroot/pairing"
)

// ErrNotSuccessor reports a bundle that may not replace a pinned one: signed by
// another key than the pinned registrar's, for another domain, registrar, protocol,
// permit period or master public key, or with a serial that is not greater.
var ErrNotSuccessor = errors.New("bundle: not a successor of the pinned trust bundle")

// PublicKey returns the domain's master public key s·P1, from the commitments: Σ C_i
// in additive mode; in threshold mode Σ λ_i(0)·C_i over the first t DTAs (the others
// lie on the same polynomial: Parse and Sign check it). It is the same for every
// bundle of the domain as long as the master key s stays the same, whatever its
// sharing.
func (b *Bundle) PublicKey() (*pairing.G1, error) {
	if len(b.DTAs) == 0 || b.Threshold < 1 || b.Threshold > len(b.DTAs) {
		return nil, fmt.Errorf("%w: threshold %d of %d DTAs", ErrInvalid, b.Threshold, len(b.DTAs))
	}
	var pk *pairing.G1
	var err error
	if b.Mode == "threshold" {
		pk, err = interpolate(b.DTAs[:b.Threshold], pairing.NewScalar(0))
	} else {
		for i := range b.DTAs {
			c, cerr := b.DTAs[i].CommitmentPoint()
			if cerr != nil {
				return nil, cerr
			}
			if pk == nil {
				pk = c
			} else {
				pk = pk.Add(c)
			}
		}
	}
	if err != nil {
		return nil, err
	}
	if pk.IsIdentity() {
		return nil, fmt.Errorf("%w: the commitments combine to the identity", ErrInvalid)
	}
	return pk, nil
}

// CheckSuccessor reports whether next may replace old, the bundle a client pinned,
// without a new bootstrap: the same domain, registrar key, protocol and permit period,
// a greater serial, the pinned bundle's anchoring if it names one (it may add one where
// there was none), the same master public key s·P1 (PublicKey: the DTAs reshared s,
// they did not change it), and next passes the checks Parse makes of its content. The
// checks are made in that order; the first that fails is reported, with
// ErrNotSuccessor (or ErrInvalid for a malformed next).
//
// It does not check a signature: a caller with a file uses ParseSuccessor, which
// verifies next's signature with old's registrar key first.
func CheckSuccessor(old, next *Bundle) error {
	if old == nil || next == nil {
		return fmt.Errorf("%w: no bundle", ErrNotSuccessor)
	}
	switch {
	case next.Domain != old.Domain:
		return fmt.Errorf("%w: domain %q, pinned %q", ErrNotSuccessor, next.Domain, old.Domain)
	case next.RegistrarKey != old.RegistrarKey:
		return fmt.Errorf("%w: another registrar key (%.16s…, pinned %.16s…)", ErrNotSuccessor, next.RegistrarKey, old.RegistrarKey)
	case next.Protocol != old.Protocol || next.Version != old.Version:
		return fmt.Errorf("%w: version %d protocol %q, pinned version %d protocol %q", ErrNotSuccessor, next.Version, next.Protocol, old.Version, old.Protocol)
	case next.PermitPeriod != old.PermitPeriod:
		return fmt.Errorf("%w: permit period %d, pinned %d (stored permits would not match)", ErrNotSuccessor, next.PermitPeriod, old.PermitPeriod)
	case next.Serial <= old.Serial:
		return fmt.Errorf("%w: serial %d is not greater than the pinned serial %d", ErrNotSuccessor, next.Serial, old.Serial)
	case old.Anchoring != nil && !old.Anchoring.Equal(next.Anchoring):
		return fmt.Errorf("%w: it does not keep the pinned bundle's anchoring (chain %d, contract %s): the logs' anchors would move where auditors of the pinned bundle do not look", ErrNotSuccessor, old.Anchoring.ChainID, old.Anchoring.Contract)
	}
	if err := next.check(); err != nil {
		return err
	}
	oldKey, err := old.PublicKey()
	if err != nil {
		return fmt.Errorf("%w: the pinned bundle: %w", ErrNotSuccessor, err)
	}
	nextKey, err := next.PublicKey()
	if err != nil {
		return err
	}
	if !nextKey.Equal(oldKey) {
		return fmt.Errorf("%w: its commitments make another master public key s·P1 than the pinned bundle's (the master key changed: this needs a new bootstrap, not a resharing)", ErrNotSuccessor)
	}
	return nil
}

// ParseSuccessor parses file as a successor of old: the registrar signature must
// verify with old's registrar key (not with the key file names), then
// CheckSuccessor(old, next) must pass. Errors wrap ErrNotSuccessor, and ErrInvalid for a
// file that is malformed or not signed by old's registrar.
func ParseSuccessor(old *Bundle, file []byte) (*Bundle, error) {
	if old == nil {
		return nil, fmt.Errorf("%w: no pinned bundle", ErrNotSuccessor)
	}
	key, err := old.registrarKey()
	if err != nil {
		return nil, fmt.Errorf("%w: the pinned bundle: %w", ErrNotSuccessor, err)
	}
	next, err := parseSigned(file, key)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotSuccessor, err)
	}
	if err := CheckSuccessor(old, next); err != nil {
		if errors.Is(err, ErrNotSuccessor) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %w", ErrNotSuccessor, err)
	}
	return next, nil
}

// IsPredecessor reports whether file is an earlier bundle of old's domain, or old
// itself encoded otherwise: signed with old's registrar key, for the same domain, with
// a lower serial or with old's content (the fingerprint covers the file's bytes, the
// signature only the compact JSON, so a server whose tools re-indented the file serves
// old under another fingerprint). Such a file is what an auth-server replica that has
// not yet loaded the current bundle serves; it is no attack on a client that pinned
// old (which keeps old) and no reason to fail.
func IsPredecessor(old *Bundle, file []byte) bool {
	if old == nil {
		return false
	}
	key, err := old.registrarKey()
	if err != nil {
		return false
	}
	prev, err := parseSigned(file, key)
	return err == nil && prev.Domain == old.Domain && (prev.Serial < old.Serial || reflect.DeepEqual(prev, old))
}

// parseSigned decodes a bundle file and verifies its signature with key, before it
// looks at the content (check is left to the caller).
func parseSigned(file []byte, key ed25519.PublicKey) (*Bundle, error) {
	if len(file) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrInvalid, len(file))
	}
	var s signed
	if err := strictUnmarshal(file, &s); err != nil {
		return nil, err
	}
	if !s.verify(key) {
		return nil, fmt.Errorf("%w: the signature does not verify with the pinned registrar key", ErrInvalid)
	}
	var b Bundle
	if err := strictUnmarshal(s.Bundle, &b); err != nil {
		return nil, err
	}
	return &b, nil
}
