package pairing

import (
	"crypto"
	"crypto/rand"
	"fmt"
	"io"

	circl "github.com/cloudflare/circl/ecc/bls12381"
	"github.com/cloudflare/circl/expander"
)

// ScalarSize is the length of an encoded scalar: big-endian, reduced modulo r.
const ScalarSize = 32

// A Scalar is an integer modulo the group order r. Arithmetic on it is constant-time
// (circl), so a Scalar may hold a secret: a master share, a PIN hash, a nonce.
// The zero value is the scalar 0.
type Scalar struct{ v circl.Scalar }

// NewScalar returns the scalar n mod r.
func NewScalar(n uint64) *Scalar {
	s := new(Scalar)
	s.v.SetUint64(n)
	return s
}

// RandomScalar draws a uniformly random non-zero scalar from rand (crypto/rand if nil).
// It reads 48 bytes per attempt and reduces them modulo r, so the bias is below 2^-128.
func RandomScalar(rand io.Reader) (*Scalar, error) {
	if rand == nil {
		rand = defaultRand
	}
	var buf [48]byte
	for {
		if _, err := io.ReadFull(rand, buf[:]); err != nil {
			return nil, fmt.Errorf("pairing: reading randomness: %w", err)
		}
		s := reduceWide(buf)
		if !s.IsZero() {
			return s, nil
		}
	}
}

var defaultRand = rand.Reader

// DecodeScalar decodes a 32-byte big-endian scalar. It rejects values ≥ r (ErrEncoding)
// and zero (ErrZeroScalar).
func DecodeScalar(b []byte) (*Scalar, error) {
	s, err := decodeScalarAllowZero(b)
	if err != nil {
		return nil, err
	}
	if s.IsZero() {
		return nil, ErrZeroScalar
	}
	return s, nil
}

func decodeScalarAllowZero(b []byte) (*Scalar, error) {
	if len(b) != ScalarSize {
		return nil, fmt.Errorf("%w: scalar is %d bytes, want %d", ErrLength, len(b), ScalarSize)
	}
	s := new(Scalar)
	if err := s.v.UnmarshalBinary(b); err != nil {
		return nil, fmt.Errorf("%w: scalar not reduced modulo r", ErrEncoding)
	}
	return s, nil
}

// HashToScalar maps msg to a scalar with RFC 9380 hash_to_field (expand_message_xmd with
// SHA-256, one element, L = 48 bytes) under the domain separation tag dst.
// It runs in constant time (SHA-256 and reduceWide), so msg may hold a secret such as a PIN.
func HashToScalar(msg, dst []byte) *Scalar {
	return reduceWide([48]byte(expander.NewExpanderMD(crypto.SHA256, dst).Expand(msg, 48)))
}

// reduceWide returns the 384-bit big-endian integer b modulo r in constant time.
// circl's Scalar.SetBytes reduces through math/big, which is not constant-time, so b
// is split into three 128-bit limbs (each below r, hence canonical) and recombined as
// hi·2^256 + mid·2^128 + lo with constant-time multiplications.
func reduceWide(b [48]byte) *Scalar {
	var limbs [3]Scalar
	for i := range limbs {
		var buf [ScalarSize]byte
		copy(buf[16:], b[16*i:16*i+16])
		if err := limbs[i].v.UnmarshalBinary(buf[:]); err != nil {
			panic("pairing: 128-bit limb rejected") // unreachable: 2^128 < r
		}
	}
	s := new(Scalar).Mul(&limbs[0], twoTo128)
	s.Add(s, &limbs[1])
	s.Mul(s, twoTo128)
	return s.Add(s, &limbs[2])
}

// twoTo128 is 2^128 mod r.
var twoTo128 = func() *Scalar {
	s := NewScalar(1 << 32)
	s.Mul(s, s) // 2^64
	return s.Mul(s, s)
}()

// Bytes returns the 32-byte big-endian encoding of s.
func (s *Scalar) Bytes() []byte {
	b, _ := s.v.MarshalBinary() // never fails
	return b
}

// IsZero reports whether s is zero, in constant time.
func (s *Scalar) IsZero() bool { return s.v.IsZero() == 1 }

// Equal reports whether s and t are equal, in constant time.
func (s *Scalar) Equal(t *Scalar) bool { return s.v.IsEqual(&t.v) == 1 }

// Add sets s = a + b and returns s.
func (s *Scalar) Add(a, b *Scalar) *Scalar { s.v.Add(&a.v, &b.v); return s }

// Sub sets s = a − b and returns s.
func (s *Scalar) Sub(a, b *Scalar) *Scalar { s.v.Sub(&a.v, &b.v); return s }

// Mul sets s = a·b and returns s.
func (s *Scalar) Mul(a, b *Scalar) *Scalar { s.v.Mul(&a.v, &b.v); return s }

// Neg sets s = −a and returns s.
func (s *Scalar) Neg(a *Scalar) *Scalar { s.v.Set(&a.v); s.v.Neg(); return s }

// InvertVarTime sets s = 1/a and returns s. It is not promised to be constant-time:
// use it on public values only (Lagrange coefficients). It returns an error if a is zero.
func (s *Scalar) InvertVarTime(a *Scalar) (*Scalar, error) {
	if a.IsZero() {
		return nil, ErrZeroScalar
	}
	s.v.Inv(&a.v)
	return s, nil
}

// Set sets s = a and returns s.
func (s *Scalar) Set(a *Scalar) *Scalar { s.v.Set(&a.v); return s }
