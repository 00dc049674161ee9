package pairing

import (
	"bytes"
	"fmt"

	circl "github.com/cloudflare/circl/ecc/bls12381"
)

// Encoded sizes of points: the Zcash compressed encoding, as in both libraries.
const (
	G1Size = 48
	G2Size = 96
)

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

// errOffCurve is the decoders' answer to an x-coordinate that is not canonical or has
// no point of the curve above it.
var errOffCurve = fmt.Errorf("%w: x-coordinate not canonical or not on the curve", ErrEncoding)

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

// PublicForm returns the same point, converted once for cheap encoding and public
// computations: use it for long-lived points such as a DTA's commitment. Operations on
// secrets still use the constant-time code, converting back when needed.
func (p *G1) PublicForm() *G1 { return p.public() }
