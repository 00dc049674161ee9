//go:build !js

package pairing

// The public form of points: gnark-crypto's affine points, with its fast
// variable-time arithmetic for verification. The browser client (GOOS=js) does
// without it (point_js.go).

import (
	"bytes"
	"math/big"

	circl "github.com/cloudflare/circl/ecc/bls12381"
	bls "github.com/consensys/gnark-crypto/ecc/bls12-381"
)

// A G1 is a point of the prime-order subgroup of E(Fp). Values are immutable.
//
// A point holds one of two forms: a constant-time form (circl) when it came from, or
// will go into, a computation on a secret; or a public form (gnark-crypto) when it
// was decoded from the network for verification. Methods without VarTime in their
// name use the constant-time code, so they are safe on secret points and scalars.
type G1 struct {
	ct  *circl.G1
	pub bls.G1Affine
}

// A G2 is a point of the prime-order subgroup of E'(Fp²). Values are immutable.
// It has the same two forms as G1.
type G2 struct {
	ct  *circl.G2
	pub bls.G2Affine
}

// DecodeG1 decodes a 48-byte compressed point. It rejects wrong lengths (ErrLength),
// uncompressed or non-canonical encodings and x-coordinates off the curve (ErrEncoding),
// points outside the subgroup (ErrSubgroup) and the identity (ErrIdentity).
func DecodeG1(b []byte) (*G1, error) {
	if err := checkFlags(b, G1Size); err != nil {
		return nil, err
	}
	var p G1
	// Decode without the subgroup check first, to tell the two failures apart.
	if err := bls.NewDecoder(bytes.NewReader(b), bls.NoSubgroupChecks()).Decode(&p.pub); err != nil {
		return nil, errOffCurve
	}
	if !p.pub.IsInSubGroup() {
		return nil, ErrSubgroup
	}
	return &p, nil
}

// DecodeG2 decodes a 96-byte compressed point, with the checks of DecodeG1.
func DecodeG2(b []byte) (*G2, error) {
	if err := checkFlags(b, G2Size); err != nil {
		return nil, err
	}
	var p G2
	if err := bls.NewDecoder(bytes.NewReader(b), bls.NoSubgroupChecks()).Decode(&p.pub); err != nil {
		return nil, errOffCurve
	}
	if !p.pub.IsInSubGroup() {
		return nil, ErrSubgroup
	}
	return &p, nil
}

// Bytes returns the 48-byte compressed encoding of p.
func (p *G1) Bytes() []byte {
	if p.ct != nil {
		return p.ct.BytesCompressed()
	}
	b := p.pub.Bytes()
	return b[:]
}

// Bytes returns the 96-byte compressed encoding of p.
func (p *G2) Bytes() []byte {
	if p.ct != nil {
		return p.ct.BytesCompressed()
	}
	b := p.pub.Bytes()
	return b[:]
}

// IsIdentity reports whether p is the identity point.
func (p *G1) IsIdentity() bool {
	if p.ct != nil {
		return p.ct.IsIdentity()
	}
	return p.pub.IsInfinity()
}

// IsIdentity reports whether p is the identity point.
func (p *G2) IsIdentity() bool {
	if p.ct != nil {
		return p.ct.IsIdentity()
	}
	return p.pub.IsInfinity()
}

// constTime returns the circl form of p. Converting from the gnark form costs a
// subgroup check (≈ half a scalar multiplication); points that feed secret
// computations are therefore kept in circl form from the start.
func (p *G1) constTime() *circl.G1 {
	if p.ct != nil {
		return p.ct
	}
	raw := p.pub.RawBytes()
	r := new(circl.G1)
	if err := r.SetBytes(raw[:]); err != nil {
		panic("pairing: gnark point rejected by circl: " + err.Error()) // unreachable: both check the same group
	}
	return r
}

func (p *G2) constTime() *circl.G2 {
	if p.ct != nil {
		return p.ct
	}
	raw := p.pub.RawBytes()
	r := new(circl.G2)
	if err := r.SetBytes(raw[:]); err != nil {
		panic("pairing: gnark point rejected by circl: " + err.Error()) // unreachable: both check the same group
	}
	return r
}

// affine returns the gnark form of p, for public computations.
func (p *G1) affine() bls.G1Affine {
	if p.ct == nil {
		return p.pub
	}
	var a bls.G1Affine
	if p.ct.IsIdentity() {
		return a // (0,0) is gnark's identity
	}
	raw := p.ct.Bytes() // uncompressed x ‖ y, no flag bits for a finite point
	if a.X.SetBytesCanonical(raw[:48]) != nil || a.Y.SetBytesCanonical(raw[48:96]) != nil {
		panic("pairing: circl encoding rejected by gnark") // unreachable: canonical by construction
	}
	return a
}

func (p *G2) affine() bls.G2Affine {
	if p.ct == nil {
		return p.pub
	}
	var a bls.G2Affine
	if p.ct.IsIdentity() {
		return a
	}
	// Uncompressed G2 is x.c1 ‖ x.c0 ‖ y.c1 ‖ y.c0.
	raw := p.ct.Bytes()
	if a.X.A1.SetBytesCanonical(raw[0:48]) != nil || a.X.A0.SetBytesCanonical(raw[48:96]) != nil ||
		a.Y.A1.SetBytesCanonical(raw[96:144]) != nil || a.Y.A0.SetBytesCanonical(raw[144:192]) != nil {
		panic("pairing: circl encoding rejected by gnark") // unreachable: canonical by construction
	}
	return a
}

// public returns p in gnark-crypto's form: one conversion (a field inversion) after
// which encoding and public operations on p are cheap.
func (p *G1) public() *G1 {
	if p.ct == nil {
		return p
	}
	return &G1{pub: p.affine()}
}

// mulVarTime returns k·p with gnark-crypto's variable-time code: public k and p only.
func (p *G1) mulVarTime(k *Scalar) *G1 {
	a := p.affine()
	var r G1
	r.pub.ScalarMultiplication(&a, k.bigInt())
	return &r
}

// addVarTime returns p + q with gnark-crypto's variable-time code: public points only.
func (p *G1) addVarTime(q *G1) *G1 {
	a, b := p.affine(), q.affine()
	var r G1
	r.pub.Add(&a, &b)
	return &r
}

// jointMulVarTime returns a·p + b·q with gnark-crypto's variable-time code: public
// points and scalars only.
func jointMulVarTime(p, q *G1, a, b *Scalar) *G1 {
	pa, qa := p.affine(), q.affine()
	var j bls.G1Jac
	var r G1
	r.pub.FromJacobian(j.JointScalarMultiplication(&pa, &qa, a.bigInt(), b.bigInt()))
	return &r
}

// bigInt returns s as gnark-crypto's scalar multiplications take it.
func (s *Scalar) bigInt() *big.Int { return new(big.Int).SetBytes(s.Bytes()) }
