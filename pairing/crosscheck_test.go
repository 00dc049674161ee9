package pairing

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/big"
	"math/rand/v2"
	"testing"

	circl "github.com/cloudflare/circl/ecc/bls12381"
	bls "github.com/consensys/gnark-crypto/ecc/bls12-381"
	"github.com/consensys/gnark-crypto/ecc/bls12-381/fp"
	"github.com/consensys/gnark-crypto/ecc/bls12-381/fr"
)

// Cross-checks of the two internal forms of points (circl, constant-time; gnark-crypto,
// public) against each other and against gnark-crypto as the reference, and the
// decoders' rejections. Random inputs come from a seeded ChaCha8 so that a failure
// can be reproduced.

const xcN = 64 // random inputs per cross-check (≥ 50)

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

// xcScalars returns n scalars for multiplication tests: the edge cases 0, 1, 2, r−1,
// r−2, then random ones.
func xcScalars(t testing.TB, rng io.Reader, n int) []*Scalar {
	one := NewScalar(1)
	ks := []*Scalar{new(Scalar), one, NewScalar(2), new(Scalar).Neg(one), new(Scalar).Neg(NewScalar(2))}
	for len(ks) < n {
		ks = append(ks, xcScalar(t, rng))
	}
	return ks
}

func xcBig(k *Scalar) *big.Int { return new(big.Int).SetBytes(k.Bytes()) }

// xcRefG1 decodes b with gnark-crypto directly (with its subgroup check): the
// reference decoding, independent of DecodeG1.
func xcRefG1(t testing.TB, b []byte) bls.G1Affine {
	t.Helper()
	var a bls.G1Affine
	if _, err := a.SetBytes(b); err != nil {
		t.Fatalf("gnark-crypto rejects %x: %v", b, err)
	}
	return a
}

func xcRefG2(t testing.TB, b []byte) bls.G2Affine {
	t.Helper()
	var a bls.G2Affine
	if _, err := a.SetBytes(b); err != nil {
		t.Fatalf("gnark-crypto rejects %x: %v", b, err)
	}
	return a
}

// xcG1Points returns n points in circl form (from HashToG1) and n in gnark form
// (decoded with DecodeG1), checking that each has the form the tests rely on.
func xcG1Points(t testing.TB, rng io.Reader, n int) (ct, pub []*G1) {
	t.Helper()
	for i := 0; i < n; i++ {
		p := HashToG1(xcBytes(rng, 32), []byte("XC-CT"))
		if p.ct == nil {
			t.Fatal("HashToG1 did not return the circl form")
		}
		ct = append(ct, p)
		var a bls.G1Affine
		a.ScalarMultiplicationBase(xcBig(xcScalar(t, rng)))
		b := a.Bytes()
		q, err := DecodeG1(b[:])
		if err != nil {
			t.Fatal(err)
		}
		if q.ct != nil {
			t.Fatal("DecodeG1 did not return the gnark form")
		}
		pub = append(pub, q)
	}
	return ct, pub
}

func xcG2Points(t testing.TB, rng io.Reader, n int) (ct, pub []*G2) {
	t.Helper()
	for i := 0; i < n; i++ {
		p := G2Generator().Mul(xcScalar(t, rng))
		if p.ct == nil {
			t.Fatal("G2 Mul did not return the circl form")
		}
		ct = append(ct, p)
		var a bls.G2Affine
		a.ScalarMultiplicationBase(xcBig(xcScalar(t, rng)))
		b := a.Bytes()
		q, err := DecodeG2(b[:])
		if err != nil {
			t.Fatal(err)
		}
		if q.ct != nil {
			t.Fatal("DecodeG2 did not return the gnark form")
		}
		pub = append(pub, q)
	}
	return ct, pub
}

func xcForm(ct bool) string {
	if ct {
		return "circl"
	}
	return "gnark"
}

// (a) HashToG1 (circl) agrees with gnark-crypto's implementation of the same suite.
func TestCrossHashToG1(t *testing.T) {
	rng := xcRNG("hash-to-g1")
	r := rand.New(rng)
	dsts := [][]byte{[]byte(DSTIdentity), []byte(DSTPermit)}
	for i := 0; i < xcN; i++ {
		msg := xcBytes(rng, r.IntN(300))
		dst := dsts[i%2]
		if i%3 == 0 {
			dst = xcBytes(rng, 1+r.IntN(255)) // gnark-crypto refuses DSTs over 255 bytes
		}
		want, err := bls.HashToG1(msg, dst)
		if err != nil {
			t.Fatal(err)
		}
		wb := want.Bytes()
		if got := HashToG1(msg, dst).Bytes(); !bytes.Equal(got, wb[:]) {
			t.Fatalf("HashToG1(%x, %x)\n got %x\nwant %x (gnark-crypto)", msg, dst, got, wb)
		}
	}
}

// (b) Constant-time Mul (circl) agrees with gnark-crypto's variable-time scalar
// multiplication, for points in both forms; so does mulVarTime.
func TestCrossScalarMulG1(t *testing.T) {
	rng := xcRNG("mul-g1")
	ct, pub := xcG1Points(t, rng, xcN)
	ks := xcScalars(t, rng, xcN)
	for i, k := range ks {
		for _, p := range []*G1{ct[i], pub[i]} {
			ref := xcRefG1(t, p.Bytes())
			var want bls.G1Affine
			want.ScalarMultiplication(&ref, xcBig(k))
			wb := want.Bytes()
			got := p.Mul(k)
			if got.ct == nil {
				t.Fatal("Mul did not return the circl form")
			}
			if !bytes.Equal(got.Bytes(), wb[:]) {
				t.Fatalf("%s point %x · %x:\n got %x\nwant %x", xcForm(p.ct != nil), p.Bytes(), k.Bytes(), got.Bytes(), wb)
			}
			if vt := p.mulVarTime(k); !bytes.Equal(vt.Bytes(), wb[:]) {
				t.Fatalf("mulVarTime on %s point %x · %x:\n got %x\nwant %x", xcForm(p.ct != nil), p.Bytes(), k.Bytes(), vt.Bytes(), wb)
			}
			if got.IsIdentity() != k.IsZero() {
				t.Fatalf("k·P identity = %v for k = %x", got.IsIdentity(), k.Bytes())
			}
		}
	}
}

func TestCrossScalarMulG2(t *testing.T) {
	rng := xcRNG("mul-g2")
	ct, pub := xcG2Points(t, rng, xcN)
	ct[0] = G2Generator()
	ks := xcScalars(t, rng, xcN)
	for i, k := range ks {
		for _, p := range []*G2{ct[i], pub[i]} {
			ref := xcRefG2(t, p.Bytes())
			var want bls.G2Affine
			want.ScalarMultiplication(&ref, xcBig(k))
			wb := want.Bytes()
			got := p.Mul(k)
			if got.ct == nil {
				t.Fatal("Mul did not return the circl form")
			}
			if !bytes.Equal(got.Bytes(), wb[:]) {
				t.Fatalf("%s point %x · %x:\n got %x\nwant %x", xcForm(p.ct != nil), p.Bytes(), k.Bytes(), got.Bytes(), wb)
			}
			if got.IsIdentity() != k.IsZero() {
				t.Fatalf("k·Q identity = %v for k = %x", got.IsIdentity(), k.Bytes())
			}
		}
	}
}

// (c) Encodings made by one library decode in the other to the same point, compressed
// and uncompressed.
func TestCrossEncodingG1(t *testing.T) {
	rng := xcRNG("enc-g1")
	ct, _ := xcG1Points(t, rng, xcN)
	ct[0] = G1Generator()
	for _, p := range ct { // circl → gnark
		b := p.Bytes()
		ref := xcRefG1(t, b)
		if rb := ref.Bytes(); !bytes.Equal(rb[:], b) {
			t.Fatalf("gnark re-encodes circl's %x as %x", b, rb)
		}
		if raw := ref.RawBytes(); !bytes.Equal(raw[:], p.ct.Bytes()) {
			t.Fatalf("uncompressed encodings differ:\ncircl %x\ngnark %x", p.ct.Bytes(), raw)
		}
		q, err := DecodeG1(b)
		if err != nil || !q.Equal(p) || !q.pub.Equal(&ref) {
			t.Fatalf("DecodeG1(%x) = %v, %v", b, q, err)
		}
	}
	for i := 0; i < xcN; i++ { // gnark → circl
		var a bls.G1Affine
		a.ScalarMultiplicationBase(xcBig(xcScalar(t, rng)))
		b, raw := a.Bytes(), a.RawBytes()
		var c circl.G1
		if err := c.SetBytes(b[:]); err != nil {
			t.Fatalf("circl rejects gnark's %x: %v", b, err)
		}
		if !bytes.Equal(c.BytesCompressed(), b[:]) || !bytes.Equal(c.Bytes(), raw[:]) {
			t.Fatalf("circl re-encodes gnark's %x as %x", b, c.BytesCompressed())
		}
		var c2 circl.G1
		if err := c2.SetBytes(raw[:]); err != nil || !c2.IsEqual(&c) {
			t.Fatalf("circl rejects gnark's uncompressed %x: %v", raw, err)
		}
		q, err := DecodeG1(b[:])
		if err != nil {
			t.Fatal(err)
		}
		if !q.constTime().IsEqual(&c) || !bytes.Equal(q.Bytes(), b[:]) {
			t.Fatalf("DecodeG1(%x) converts to a different circl point", b)
		}
	}
}

func TestCrossEncodingG2(t *testing.T) {
	rng := xcRNG("enc-g2")
	ct, _ := xcG2Points(t, rng, xcN)
	ct[0] = G2Generator()
	for _, p := range ct { // circl → gnark
		b := p.Bytes()
		ref := xcRefG2(t, b)
		if rb := ref.Bytes(); !bytes.Equal(rb[:], b) {
			t.Fatalf("gnark re-encodes circl's %x as %x", b, rb)
		}
		if raw := ref.RawBytes(); !bytes.Equal(raw[:], p.ct.Bytes()) {
			t.Fatalf("uncompressed encodings differ:\ncircl %x\ngnark %x", p.ct.Bytes(), raw)
		}
		q, err := DecodeG2(b)
		if err != nil || !q.Equal(p) || !q.pub.Equal(&ref) {
			t.Fatalf("DecodeG2(%x) = %v, %v", b, q, err)
		}
	}
	for i := 0; i < xcN; i++ { // gnark → circl
		var a bls.G2Affine
		a.ScalarMultiplicationBase(xcBig(xcScalar(t, rng)))
		b, raw := a.Bytes(), a.RawBytes()
		var c circl.G2
		if err := c.SetBytes(b[:]); err != nil {
			t.Fatalf("circl rejects gnark's %x: %v", b, err)
		}
		if !bytes.Equal(c.BytesCompressed(), b[:]) || !bytes.Equal(c.Bytes(), raw[:]) {
			t.Fatalf("circl re-encodes gnark's %x as %x", b, c.BytesCompressed())
		}
		var c2 circl.G2
		if err := c2.SetBytes(raw[:]); err != nil || !c2.IsEqual(&c) {
			t.Fatalf("circl rejects gnark's uncompressed %x: %v", raw, err)
		}
		q, err := DecodeG2(b[:])
		if err != nil {
			t.Fatal(err)
		}
		if !q.constTime().IsEqual(&c) || !bytes.Equal(q.Bytes(), b[:]) {
			t.Fatalf("DecodeG2(%x) converts to a different circl point", b)
		}
	}
}

// (d) Add, Neg and Sub agree with gnark-crypto for every combination of forms,
// including doubling, P + (−P) and the identity.
func TestCrossGroupOpsG1(t *testing.T) {
	rng := xcRNG("ops-g1")
	ct, pub := xcG1Points(t, rng, xcN)
	id := G1Generator().Mul(new(Scalar))
	check := func(what string, got *G1, want bls.G1Affine) {
		t.Helper()
		if wb := want.Bytes(); !bytes.Equal(got.Bytes(), wb[:]) {
			t.Fatalf("%s:\n got %x\nwant %x", what, got.Bytes(), wb)
		}
	}
	for i := 0; i < xcN; i++ {
		j := (i + 1) % xcN
		pairs := [][2]*G1{
			{ct[i], ct[j]}, {ct[i], pub[j]}, {pub[i], ct[j]}, {pub[i], pub[j]},
			{ct[i], ct[i]}, {pub[i], pub[i]}, // doubling, both forms
			{ct[i], ct[i].Neg()}, {pub[i], pub[i].Neg()}, // P + (−P)
			{ct[i], id}, {id, pub[i]}, {id, id},
		}
		for n, pq := range pairs {
			p, q := pq[0], pq[1]
			a, b := xcRefG1(t, p.Bytes()), xcRefG1(t, q.Bytes())
			if p.IsIdentity() {
				a = bls.G1Affine{}
			}
			if q.IsIdentity() {
				b = bls.G1Affine{}
			}
			var sum, diff, neg bls.G1Affine
			sum.Add(&a, &b)
			diff.Sub(&a, &b)
			neg.Neg(&a)
			what := fmt.Sprintf("pair %d/%d (%s, %s)", i, n, xcForm(p.ct != nil), xcForm(q.ct != nil))
			check(what+" Add", p.Add(q), sum)
			check(what+" addVarTime", p.addVarTime(q), sum)
			check(what+" Sub", p.Sub(q), diff)
			check(what+" Neg", p.Neg(), neg)
			if !p.Neg().Neg().Equal(p) {
				t.Fatalf("%s: −(−P) ≠ P", what)
			}
		}
	}
}

func TestCrossGroupOpsG2(t *testing.T) {
	rng := xcRNG("ops-g2")
	ct, pub := xcG2Points(t, rng, xcN)
	id := G2Generator().Mul(new(Scalar))
	minusOne := new(Scalar).Neg(NewScalar(1))
	for i := 0; i < xcN; i++ {
		j := (i + 1) % xcN
		pairs := [][2]*G2{
			{ct[i], ct[j]}, {ct[i], pub[j]}, {pub[i], ct[j]}, {pub[i], pub[j]},
			{ct[i], ct[i]}, {pub[i], pub[i]},
			{ct[i], ct[i].Mul(minusOne)}, {pub[i], pub[i].Mul(minusOne)},
			{ct[i], id}, {id, pub[i]}, {id, id},
		}
		for n, pq := range pairs {
			p, q := pq[0], pq[1]
			a, b := xcRefG2(t, p.Bytes()), xcRefG2(t, q.Bytes())
			if p.IsIdentity() {
				a = bls.G2Affine{}
			}
			if q.IsIdentity() {
				b = bls.G2Affine{}
			}
			var sum bls.G2Affine
			sum.Add(&a, &b)
			wb := sum.Bytes()
			if got := p.Add(q); !bytes.Equal(got.Bytes(), wb[:]) {
				t.Fatalf("pair %d/%d (%s, %s) Add:\n got %x\nwant %x", i, n, xcForm(p.ct != nil), xcForm(q.ct != nil), got.Bytes(), wb)
			}
		}
	}
}

// (e) The internal conversions affine() and constTime() are inverse to each other.
func TestCrossConversionsG1(t *testing.T) {
	rng := xcRNG("conv-g1")
	ct, pub := xcG1Points(t, rng, xcN)
	for i := 0; i < xcN; i++ {
		// circl → gnark → circl
		p := ct[i]
		a := p.affine()
		if !a.IsOnCurve() || !a.IsInSubGroup() {
			t.Fatalf("affine() of %x is not in G1", p.Bytes())
		}
		if ref := xcRefG1(t, p.Bytes()); !a.Equal(&ref) {
			t.Fatalf("affine() of %x is another point", p.Bytes())
		}
		if back := (&G1{pub: a}).constTime(); !back.IsEqual(p.ct) {
			t.Fatalf("constTime(affine(P)) ≠ P for %x", p.Bytes())
		}
		// gnark → circl → gnark
		q := pub[i]
		c := q.constTime()
		if !c.IsOnG1() || !bytes.Equal(c.BytesCompressed(), q.Bytes()) {
			t.Fatalf("constTime() of %x is another point", q.Bytes())
		}
		if back := (&G1{ct: c}).affine(); !back.Equal(&q.pub) {
			t.Fatalf("affine(constTime(Q)) ≠ Q for %x", q.Bytes())
		}
		// The conversions leave a point in its own form unchanged.
		if pa := q.affine(); !pa.Equal(&q.pub) || p.constTime() != p.ct {
			t.Fatal("conversion of a point already in the target form changed it")
		}
	}
	// The identity, in both forms.
	id := &G1{ct: new(circl.G1)}
	id.ct.SetIdentity()
	if a := id.affine(); !a.IsInfinity() {
		t.Fatalf("affine() of the identity = %s", a.String())
	}
	if c := (&G1{pub: bls.G1Affine{}}).constTime(); !c.IsIdentity() {
		t.Fatal("constTime() of gnark's identity is not the identity")
	}
}

func TestCrossConversionsG2(t *testing.T) {
	rng := xcRNG("conv-g2")
	ct, pub := xcG2Points(t, rng, xcN)
	for i := 0; i < xcN; i++ {
		p := ct[i]
		a := p.affine()
		if !a.IsOnCurve() || !a.IsInSubGroup() {
			t.Fatalf("affine() of %x is not in G2", p.Bytes())
		}
		if ref := xcRefG2(t, p.Bytes()); !a.Equal(&ref) {
			t.Fatalf("affine() of %x is another point", p.Bytes())
		}
		if back := (&G2{pub: a}).constTime(); !back.IsEqual(p.ct) {
			t.Fatalf("constTime(affine(P)) ≠ P for %x", p.Bytes())
		}
		q := pub[i]
		c := q.constTime()
		if !c.IsOnG2() || !bytes.Equal(c.BytesCompressed(), q.Bytes()) {
			t.Fatalf("constTime() of %x is another point", q.Bytes())
		}
		if back := (&G2{ct: c}).affine(); !back.Equal(&q.pub) {
			t.Fatalf("affine(constTime(Q)) ≠ Q for %x", q.Bytes())
		}
		if pa := q.affine(); !pa.Equal(&q.pub) || p.constTime() != p.ct {
			t.Fatal("conversion of a point already in the target form changed it")
		}
	}
	id := &G2{ct: new(circl.G2)}
	id.ct.SetIdentity()
	if a := id.affine(); !a.IsInfinity() {
		t.Fatalf("affine() of the identity = %s", a.String())
	}
	if c := (&G2{pub: bls.G2Affine{}}).constTime(); !c.IsIdentity() {
		t.Fatal("constTime() of gnark's identity is not the identity")
	}
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
		a := p.affine()
		return p.Bytes(), !p.IsIdentity() && a.IsOnCurve() && a.IsInSubGroup(), nil
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
		a := p.affine()
		return p.Bytes(), !p.IsIdentity() && a.IsOnCurve() && a.IsInSubGroup(), nil
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
