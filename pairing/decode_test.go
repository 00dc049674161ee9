package pairing

import (
	"bytes"
	"errors"
	"io"
	"math/big"
	"math/rand/v2"
	"testing"

	bls "github.com/consensys/gnark-crypto/ecc/bls12-381"
	"github.com/consensys/gnark-crypto/ecc/bls12-381/fp"
	"github.com/consensys/gnark-crypto/ecc/bls12-381/fr"
)

// The decoders' rejections, case by case, with gnark-crypto as the reference. These
// tests also run in WebAssembly (GOOS=js), where the decoders are circl's alone
// (TestPairingInNode in internal/wasmclient runs them there).

// xcValid reports whether gnark-crypto decodes the compressed encoding b, with its
// subgroup check, as a point other than the identity.
func xcValid(b []byte) bool {
	switch len(b) {
	case G1Size:
		var a bls.G1Affine
		_, err := a.SetBytes(b)
		return err == nil && !a.IsInfinity()
	case G2Size:
		var a bls.G2Affine
		_, err := a.SetBytes(b)
		return err == nil && !a.IsInfinity()
	}
	return false
}

func xcRNG(label string) *rand.ChaCha8 {
	var seed [32]byte
	copy(seed[:], label)
	return rand.NewChaCha8(seed)
}

func xcBytes(rng io.Reader, n int) []byte {
	b := make([]byte, n)
	if _, err := io.ReadFull(rng, b); err != nil {
		panic(err)
	}
	return b
}

func xcScalar(t testing.TB, rng io.Reader) *Scalar {
	t.Helper()
	s, err := RandomScalar(rng)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// --- Hand-made encodings for the rejection tests ---------------------------------

var xcHalfP = new(big.Int).Rsh(fp.Modulus(), 1) // (p−1)/2

// xcLargest reports whether y > (p−1)/2: the Zcash "sign" of a coordinate.
func xcLargest(y *fp.Element) bool { return y.BigInt(new(big.Int)).Cmp(xcHalfP) > 0 }

// xcEncodeG1 encodes (x, y) compressed by hand: x big-endian, flag 0x80, and 0x20
// when y is the larger root. x is a big.Int so that non-canonical values fit.
func xcEncodeG1(x *big.Int, y *fp.Element) []byte {
	b := x.FillBytes(make([]byte, G1Size))
	b[0] |= 0x80
	if xcLargest(y) {
		b[0] |= 0x20
	}
	return b
}

// xcEncodeG2 encodes (x, y) compressed by hand: x.c1 ‖ x.c0, flags on the first byte,
// the sign taken from y.c1, or from y.c0 when y.c1 = 0.
func xcEncodeG2(x1, x0 *big.Int, y *bls.E2) []byte {
	b := make([]byte, G2Size)
	x1.FillBytes(b[:48])
	x0.FillBytes(b[48:])
	b[0] |= 0x80
	if (!y.A1.IsZero() && xcLargest(&y.A1)) || (y.A1.IsZero() && xcLargest(&y.A0)) {
		b[0] |= 0x20
	}
	return b
}

func xcFpBig(e *fp.Element) *big.Int { return e.BigInt(new(big.Int)) }

// xcOffSubgroupG1 returns a point of E(Fp) outside G1: the first x = 1, 2, … with
// x³ + 4 a square, without clearing the cofactor. It also returns the first x with
// no point at all.
func xcOffSubgroupG1(t testing.TB) (off bls.G1Affine, noPoint fp.Element) {
	t.Helper()
	var b fp.Element
	b.SetUint64(4)
	found, foundNone := false, false
	for i := uint64(1); !(found && foundNone); i++ {
		var x, rhs, y fp.Element
		x.SetUint64(i)
		rhs.Square(&x).Mul(&rhs, &x).Add(&rhs, &b)
		switch rhs.Legendre() {
		case -1:
			if !foundNone {
				noPoint, foundNone = x, true
			}
		case 1:
			if found {
				continue
			}
			if y.Sqrt(&rhs) == nil {
				t.Fatal("no square root of a square")
			}
			p := bls.G1Affine{X: x, Y: y}
			if !p.IsOnCurve() {
				t.Fatal("constructed point is not on the curve")
			}
			if !p.IsInSubGroup() {
				off, found = p, true
			}
		}
	}
	return off, noPoint
}

// xcOffSubgroupG2 does the same on E'(Fp²): y² = x³ + 4(1+u), x = i + u.
func xcOffSubgroupG2(t testing.TB) (off bls.G2Affine, noPoint bls.E2) {
	t.Helper()
	var b bls.E2
	b.A0.SetUint64(4)
	b.A1.SetUint64(4)
	found, foundNone := false, false
	for i := uint64(0); !(found && foundNone); i++ {
		var x, rhs, y, y2 bls.E2
		x.A0.SetUint64(i)
		x.A1.SetUint64(1)
		rhs.Square(&x).Mul(&rhs, &x).Add(&rhs, &b)
		switch rhs.Legendre() {
		case -1:
			if !foundNone {
				noPoint, foundNone = x, true
			}
		case 1:
			if found {
				continue
			}
			y.Sqrt(&rhs)
			if !y2.Square(&y).Equal(&rhs) {
				t.Fatal("bad square root")
			}
			p := bls.G2Affine{X: x, Y: y}
			if !p.IsOnCurve() {
				t.Fatal("constructed point is not on the twist")
			}
			if !p.IsInSubGroup() {
				off, found = p, true
			}
		}
	}
	return off, noPoint
}

type xcCase struct {
	name string
	in   []byte
	want error // nil for "ok/…" cases
}

// xcRunDecode runs decode on each case. decode returns the re-encoding of what it
// decoded and whether the decoded value is valid (a non-identity subgroup point, a
// non-zero canonical scalar).
func xcRunDecode(t *testing.T, cases []xcCase, decode func([]byte) (enc []byte, valid bool, err error)) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := append([]byte(nil), c.in...)
			got, valid, err := decode(in)
			if !bytes.Equal(in, c.in) {
				t.Fatal("decoder modified its input")
			}
			if err == nil && !valid {
				t.Fatalf("decode(%x) accepted an invalid value", c.in)
			}
			if c.want == nil {
				if err != nil {
					t.Fatalf("decode(%x): %v", c.in, err)
				}
				if !bytes.Equal(got, c.in) {
					t.Fatalf("round trip:\n got %x\nwant %x", got, c.in)
				}
				return
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("decode(%x): got error %v, want %v", c.in, err, c.want)
			}
		})
	}
}

func xcFlip(b []byte, mask byte, set byte) []byte {
	b = append([]byte(nil), b...)
	b[0] = b[0]&^mask | set
	return b
}

func TestDecodeG1Rejects(t *testing.T) {
	gen := G1Generator().Bytes()
	rng := xcRNG("reject-g1")
	random := HashToG1(xcBytes(rng, 16), []byte("XC")).Bytes()
	negGen := G1Generator().Neg().Bytes()
	off, noPoint := xcOffSubgroupG1(t)
	offEnc := xcEncodeG1(xcFpBig(&off.X), &off.Y)
	if gb := off.Bytes(); !bytes.Equal(gb[:], offEnc) {
		t.Fatalf("hand encoding %x differs from gnark's %x", offEnc, gb)
	}
	var offNeg bls.G1Affine
	offNeg.Neg(&off)
	// A point whose x + p still fits in 381 bits, for a non-canonical x.
	var small bls.G1Affine
	limit := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 381), fp.Modulus())
	for k := int64(1); ; k++ {
		small.ScalarMultiplicationBase(big.NewInt(k))
		if xcFpBig(&small.X).Cmp(limit) < 0 {
			break
		}
	}
	smallEnc := small.Bytes()
	nonCanon := xcEncodeG1(new(big.Int).Add(xcFpBig(&small.X), fp.Modulus()), &small.Y)
	identity := make([]byte, G1Size)
	identity[0] = 0xc0
	uncompressed := G1Generator().ct.Bytes()

	cases := []xcCase{
		{"ok/generator", gen, nil},
		{"ok/generator-neg", negGen, nil},
		{"ok/random", random, nil},
		{"ok/small-x", smallEnc[:], nil},
		{"fail/length-empty", nil, ErrLength},
		{"fail/length-47", gen[:47], ErrLength},
		{"fail/length-49", append(append([]byte(nil), gen...), 0), ErrLength},
		{"fail/uncompressed-96", uncompressed, ErrLength},
		{"fail/uncompressed-flag", xcFlip(gen, 0xe0, 0x00), ErrEncoding},
		{"fail/uncompressed-flag-sign", xcFlip(gen, 0xe0, 0x20), ErrEncoding},
		{"fail/uncompressed-infinity-flag", xcFlip(identity, 0xe0, 0x40), ErrEncoding},
		{"fail/flags-111", xcFlip(gen, 0xe0, 0xe0), ErrEncoding},
		{"fail/flags-infinity-sign", xcFlip(identity, 0xe0, 0xe0), ErrEncoding},
		{"fail/x-equals-p", xcEncodeG1(fp.Modulus(), &small.Y), ErrEncoding},
		{"fail/x-plus-p", nonCanon, ErrEncoding},
		{"fail/x-all-ones", xcFlip(bytes.Repeat([]byte{0xff}, G1Size), 0xe0, 0x80), ErrEncoding},
		{"fail/no-point", xcEncodeG1(xcFpBig(&noPoint), &off.Y), ErrEncoding},
		{"fail/off-subgroup", offEnc, ErrSubgroup},
		{"fail/off-subgroup-neg", xcEncodeG1(xcFpBig(&offNeg.X), &offNeg.Y), ErrSubgroup},
		{"fail/identity", identity, ErrIdentity},
	}
	if offEnc[0]&0x20 == xcEncodeG1(xcFpBig(&offNeg.X), &offNeg.Y)[0]&0x20 {
		t.Fatal("P and −P have the same sign flag")
	}
	xcRunDecode(t, cases, func(b []byte) ([]byte, bool, error) {
		p, err := DecodeG1(b)
		if err != nil {
			return nil, false, err
		}
		return p.Bytes(), xcValid(p.Bytes()), nil
	})
	// A malformed identity (non-zero x bits) is a bad encoding, not the identity.
	bad := append([]byte(nil), identity...)
	bad[G1Size-1] = 1
	if _, err := DecodeG1(bad); !errors.Is(err, ErrEncoding) {
		t.Fatalf("fail/identity-nonzero: got %v", err)
	}
}

func TestDecodeG2Rejects(t *testing.T) {
	gen := G2Generator().Bytes()
	rng := xcRNG("reject-g2")
	random := G2Generator().Mul(xcScalar(t, rng)).Bytes()
	negGen := G2Generator().Mul(new(Scalar).Neg(NewScalar(1))).Bytes()
	off, noPoint := xcOffSubgroupG2(t)
	offEnc := xcEncodeG2(xcFpBig(&off.X.A1), xcFpBig(&off.X.A0), &off.Y)
	if gb := off.Bytes(); !bytes.Equal(gb[:], offEnc) {
		t.Fatalf("hand encoding %x differs from gnark's %x", offEnc, gb)
	}
	var offNeg bls.G2Affine
	offNeg.Neg(&off)
	offNegEnc := xcEncodeG2(xcFpBig(&offNeg.X.A1), xcFpBig(&offNeg.X.A0), &offNeg.Y)
	if offEnc[0]&0x20 == offNegEnc[0]&0x20 {
		t.Fatal("P and −P have the same sign flag")
	}
	// A point whose x.c1 + p still fits in 381 bits; any x.c0 + p fits in 384.
	var small bls.G2Affine
	limit := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 381), fp.Modulus())
	for k := int64(1); ; k++ {
		small.ScalarMultiplicationBase(big.NewInt(k))
		if xcFpBig(&small.X.A1).Cmp(limit) < 0 {
			break
		}
	}
	smallEnc := small.Bytes()
	p := fp.Modulus()
	x1, x0 := xcFpBig(&small.X.A1), xcFpBig(&small.X.A0)
	identity := make([]byte, G2Size)
	identity[0] = 0xc0
	uncompressed := G2Generator().ct.Bytes()

	cases := []xcCase{
		{"ok/generator", gen, nil},
		{"ok/generator-neg", negGen, nil},
		{"ok/random", random, nil},
		{"ok/small-x", smallEnc[:], nil},
		{"fail/length-empty", nil, ErrLength},
		{"fail/length-48", gen[:48], ErrLength},
		{"fail/length-95", gen[:95], ErrLength},
		{"fail/length-97", append(append([]byte(nil), gen...), 0), ErrLength},
		{"fail/uncompressed-192", uncompressed, ErrLength},
		{"fail/uncompressed-flag", xcFlip(gen, 0xe0, 0x00), ErrEncoding},
		{"fail/uncompressed-infinity-flag", xcFlip(identity, 0xe0, 0x40), ErrEncoding},
		{"fail/flags-111", xcFlip(gen, 0xe0, 0xe0), ErrEncoding},
		{"fail/flags-011", xcFlip(gen, 0xe0, 0x60), ErrEncoding},
		{"fail/x-c1-plus-p", xcEncodeG2(new(big.Int).Add(x1, p), x0, &small.Y), ErrEncoding},
		{"fail/x-c0-plus-p", xcEncodeG2(x1, new(big.Int).Add(x0, p), &small.Y), ErrEncoding},
		{"fail/x-c0-equals-p", xcEncodeG2(x1, p, &small.Y), ErrEncoding},
		{"fail/x-all-ones", xcFlip(bytes.Repeat([]byte{0xff}, G2Size), 0xe0, 0x80), ErrEncoding},
		{"fail/no-point", xcEncodeG2(xcFpBig(&noPoint.A1), xcFpBig(&noPoint.A0), &off.Y), ErrEncoding},
		{"fail/off-subgroup", offEnc, ErrSubgroup},
		{"fail/off-subgroup-neg", offNegEnc, ErrSubgroup},
		{"fail/identity", identity, ErrIdentity},
	}
	xcRunDecode(t, cases, func(b []byte) ([]byte, bool, error) {
		p, err := DecodeG2(b)
		if err != nil {
			return nil, false, err
		}
		return p.Bytes(), xcValid(p.Bytes()), nil
	})
	bad := append([]byte(nil), identity...)
	bad[G2Size-1] = 1
	if _, err := DecodeG2(bad); !errors.Is(err, ErrIdentity) && !errors.Is(err, ErrEncoding) {
		t.Fatalf("fail/identity-nonzero: got %v", err)
	}
}

func TestDecodeScalarRejects(t *testing.T) {
	r := fr.Modulus()
	enc := func(n *big.Int) []byte { return n.FillBytes(make([]byte, ScalarSize)) }
	one := big.NewInt(1)
	rng := xcRNG("reject-scalar")
	random := xcScalar(t, rng).Bytes()
	cases := []xcCase{
		{"ok/one", enc(one), nil},
		{"ok/r-minus-1", enc(new(big.Int).Sub(r, one)), nil},
		{"ok/random", random, nil},
		{"fail/zero", make([]byte, ScalarSize), ErrZeroScalar},
		{"fail/r", enc(r), ErrEncoding},
		{"fail/r-plus-1", enc(new(big.Int).Add(r, one)), ErrEncoding},
		{"fail/all-ones", bytes.Repeat([]byte{0xff}, ScalarSize), ErrEncoding},
		{"fail/length-empty", nil, ErrLength},
		{"fail/length-31", random[:31], ErrLength},
		{"fail/length-33", append(append([]byte(nil), random...), 0), ErrLength},
		{"fail/length-33-leading-zero", append([]byte{0}, random...), ErrLength},
	}
	xcRunDecode(t, cases, func(b []byte) ([]byte, bool, error) {
		s, err := DecodeScalar(b)
		if err != nil {
			return nil, false, err
		}
		return s.Bytes(), !s.IsZero() && xcBig(s).Cmp(r) < 0, nil
	})
}

func xcBig(k *Scalar) *big.Int { return new(big.Int).SetBytes(k.Bytes()) }
