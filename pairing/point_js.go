package pairing

// The browser client (GOOS=js) keeps every point in circl's constant-time form and
// leaves gnark-crypto out: its public verifications (the DLEQ proofs of the shares it
// receives) are few, and the WebAssembly is a quarter of a megabyte smaller. Constant
// time is never wrong for public data, only slower. The server's side (server.go,
// batch.go, loginpoints.go) is not built here.

import (
	circl "github.com/cloudflare/circl/ecc/bls12381"
	"github.com/cloudflare/circl/ecc/bls12381/ff"
)

// A G1 is a point of the prime-order subgroup of E(Fp). Values are immutable.
type G1 struct{ ct *circl.G1 }

// A G2 is a point of the prime-order subgroup of E'(Fp²). Values are immutable.
type G2 struct{ ct *circl.G2 }

// DecodeG1 decodes a 48-byte compressed point. It rejects wrong lengths (ErrLength),
// uncompressed or non-canonical encodings and x-coordinates off the curve (ErrEncoding),
// points outside the subgroup (ErrSubgroup) and the identity (ErrIdentity).
func DecodeG1(b []byte) (*G1, error) {
	if err := checkFlags(b, G1Size); err != nil {
		return nil, err
	}
	p := new(circl.G1)
	if err := p.SetBytes(b); err != nil {
		// circl does not tell a point off the curve from one off the subgroup.
		var x, rhs, y ff.Fp
		raw := [G1Size]byte(b)
		raw[0] &= 0x1f
		if x.UnmarshalBinary(raw[:]) != nil {
			return nil, errOffCurve
		}
		rhs.Sqr(&x)
		rhs.Mul(&rhs, &x)
		var four ff.Fp
		four.SetUint64(4)
		rhs.Add(&rhs, &four) // x³ + 4
		if y.Sqrt(&rhs) == 0 {
			return nil, errOffCurve
		}
		return nil, ErrSubgroup
	}
	return &G1{ct: p}, nil
}

// DecodeG2 decodes a 96-byte compressed point, with the checks of DecodeG1.
func DecodeG2(b []byte) (*G2, error) {
	if err := checkFlags(b, G2Size); err != nil {
		return nil, err
	}
	p := new(circl.G2)
	if err := p.SetBytes(b); err != nil {
		var x, rhs, y, b4 ff.Fp2
		raw := [G2Size]byte(b)
		raw[0] &= 0x1f
		if x.UnmarshalBinary(raw[:]) != nil {
			return nil, errOffCurve
		}
		rhs.Sqr(&x)
		rhs.Mul(&rhs, &x)
		b4[0].SetUint64(4)
		b4[1].SetUint64(4)
		rhs.Add(&rhs, &b4) // x³ + 4(1 + i)
		if y.Sqrt(&rhs) == 0 {
			return nil, errOffCurve
		}
		return nil, ErrSubgroup
	}
	return &G2{ct: p}, nil
}

// Bytes returns the 48-byte compressed encoding of p.
func (p *G1) Bytes() []byte { return p.ct.BytesCompressed() }

// Bytes returns the 96-byte compressed encoding of p.
func (p *G2) Bytes() []byte { return p.ct.BytesCompressed() }

// IsIdentity reports whether p is the identity point.
func (p *G1) IsIdentity() bool { return p.ct.IsIdentity() }

// IsIdentity reports whether p is the identity point.
func (p *G2) IsIdentity() bool { return p.ct.IsIdentity() }

func (p *G1) constTime() *circl.G1 { return p.ct }

func (p *G2) constTime() *circl.G2 { return p.ct }

// public returns p: the browser client has one form.
func (p *G1) public() *G1 { return p }

// jointMulVarTime returns a·p + b·q, here in constant time.
func jointMulVarTime(p, q *G1, a, b *Scalar) *G1 { return p.Mul(a).Add(q.Mul(b)) }
