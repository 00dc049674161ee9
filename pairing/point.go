package pairing

import (
	"bytes"
	"fmt"

	circl "github.com/cloudflare/circl/ecc/bls12381"
	bls "github.com/consensys/gnark-crypto/ecc/bls12-381"
)

// Encoded sizes of points: the Zcash compressed encoding, as in both libraries.
const (
	G1Size = 48
	G2Size = 96
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

// G1Generator returns the standard generator P1.
func G1Generator() *G1 { return &G1{ct: circl.G1Generator()} }

// G2Generator returns the standard generator Q.
func G2Generator() *G2 { return &G2{ct: circl.G2Generator()} }

// HashToG1 maps msg to G1 with RFC 9380 hash_to_curve, suite
// BLS12381G1_XMD:SHA-256_SSWU_RO_, under the domain separation tag dst.
func HashToG1(msg, dst []byte) *G1 {
	p := new(circl.G1)
	p.Hash(msg, dst)
	return &G1{ct: p}
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
		return nil, fmt.Errorf("%w: x-coordinate not canonical or not on the curve", ErrEncoding)
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
		return nil, fmt.Errorf("%w: x-coordinate not canonical or not on the curve", ErrEncoding)
	}
	if !p.pub.IsInSubGroup() {
		return nil, ErrSubgroup
	}
	return &p, nil
}

// checkFlags enforces the length and the flag bits of a compressed encoding: the
// compression bit set, the infinity bit clear (the identity is never accepted).
func checkFlags(b []byte, size int) error {
	if len(b) != size {
		return fmt.Errorf("%w: point is %d bytes, want %d", ErrLength, len(b), size)
	}
	switch b[0] >> 5 {
	case 0b100, 0b101:
		return nil
	case 0b110:
		if b[0] != 0xc0 || !allZero(b[1:]) {
			return fmt.Errorf("%w: malformed identity encoding", ErrEncoding)
		}
		return ErrIdentity
	default:
		return fmt.Errorf("%w: flag bits %03b", ErrEncoding, b[0]>>5)
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
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

// Equal reports whether p and q are the same point.
func (p *G1) Equal(q *G1) bool { return bytes.Equal(p.Bytes(), q.Bytes()) }

// Equal reports whether p and q are the same point.
func (p *G2) Equal(q *G2) bool { return bytes.Equal(p.Bytes(), q.Bytes()) }

// Mul returns k·p, in constant time.
func (p *G1) Mul(k *Scalar) *G1 {
	r := new(circl.G1)
	r.ScalarMult(&k.v, p.constTime())
	return &G1{ct: r}
}

// Mul returns k·p, in constant time.
func (p *G2) Mul(k *Scalar) *G2 {
	r := new(circl.G2)
	r.ScalarMult(&k.v, p.constTime())
	return &G2{ct: r}
}

// Add returns p + q, in constant time.
func (p *G1) Add(q *G1) *G1 {
	r := new(circl.G1)
	r.Add(p.constTime(), q.constTime())
	return &G1{ct: r}
}

// Add returns p + q, in constant time.
func (p *G2) Add(q *G2) *G2 {
	r := new(circl.G2)
	r.Add(p.constTime(), q.constTime())
	return &G2{ct: r}
}

// Neg returns −p.
func (p *G1) Neg() *G1 {
	r := *p.constTime()
	r.Neg()
	return &G1{ct: &r}
}

// Sub returns p − q, in constant time.
func (p *G1) Sub(q *G1) *G1 { return p.Add(q.Neg()) }

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

// PublicForm returns the same point, converted once for cheap encoding and public
// computations: use it for long-lived points such as a DTA's commitment. Operations on
// secrets still use the constant-time code, converting back when needed.
func (p *G1) PublicForm() *G1 { return p.public() }

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
