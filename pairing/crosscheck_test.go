//go:build !js

package pairing

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	circl "github.com/cloudflare/circl/ecc/bls12381"
	bls "github.com/consensys/gnark-crypto/ecc/bls12-381"
)

// Cross-checks of the two internal forms of points (circl, constant-time; gnark-crypto,
// public) against each other and against gnark-crypto as the reference, and the
// decoders' rejections. Random inputs come from a seeded ChaCha8 so that a failure
// can be reproduced.

const xcN = 64 // random inputs per cross-check (≥ 50)

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
