//go:build !js

package pairing

import (
	"bytes"
	"crypto/mlkem"
	"errors"
	"math/big"
	"testing"

	circl "github.com/cloudflare/circl/ecc/bls12381"
	"github.com/consensys/gnark-crypto/ecc/bls12-381/fp"
	"github.com/consensys/gnark-crypto/ecc/bls12-381/fr"
)

// Fuzz targets for every decoder. Properties, for any input:
//   - the decoder never panics;
//   - on failure it returns an error wrapping one of the decoding errors;
//   - on success, re-encoding gives back exactly the input (one encoding per value),
//     the result does not alias the input, decoded points are non-identity points of
//     the prime-order subgroup and decoded scalars are canonical (and non-zero where
//     the decoder promises it);
//   - points and scalars are accepted exactly when circl (an independent decoder)
//     accepts them as non-identity compressed points / canonical non-zero scalars.
//
// The seeds (valid encodings from the protocol, and invalid ones) run under plain
// `go test`; `go test -fuzz '^FuzzDecodeG1$'` explores further.

var fzDecodeErrors = []error{ErrLength, ErrEncoding, ErrSubgroup, ErrIdentity, ErrZeroScalar}

func fzCheckErr(t *testing.T, err error) {
	t.Helper()
	for _, e := range fzDecodeErrors {
		if errors.Is(err, e) {
			return
		}
	}
	t.Fatalf("error %q wraps none of the decoding errors", err)
}

func fzClone(b []byte) []byte { return append([]byte{}, b...) }

// fzScramble overwrites b so that a decoded value that aliases it shows up.
func fzScramble(b []byte) {
	for i := range b {
		b[i] ^= 0xa5
	}
}

func fzCheckG1(t *testing.T, what string, p *G1) {
	t.Helper()
	if p == nil || p.IsIdentity() {
		t.Fatalf("%s: nil or identity point", what)
	}
	var c circl.G1
	if err := c.SetBytes(p.Bytes()); err != nil || c.IsIdentity() || !c.IsOnG1() {
		t.Fatalf("%s: circl rejects the decoded point %x: %v", what, p.Bytes(), err)
	}
	if a := p.affine(); !a.IsOnCurve() || !a.IsInSubGroup() {
		t.Fatalf("%s: decoded point %x is not in G1", what, p.Bytes())
	}
}

func fzCheckG2(t *testing.T, what string, p *G2) {
	t.Helper()
	if p == nil || p.IsIdentity() {
		t.Fatalf("%s: nil or identity point", what)
	}
	var c circl.G2
	if err := c.SetBytes(p.Bytes()); err != nil || c.IsIdentity() || !c.IsOnG2() {
		t.Fatalf("%s: circl rejects the decoded point %x: %v", what, p.Bytes(), err)
	}
	if a := p.affine(); !a.IsOnCurve() || !a.IsInSubGroup() {
		t.Fatalf("%s: decoded point %x is not in G2", what, p.Bytes())
	}
}

func fzCheckScalar(t *testing.T, what string, s *Scalar, allowZero bool) {
	t.Helper()
	if s == nil || (!allowZero && s.IsZero()) {
		t.Fatalf("%s: nil or zero scalar", what)
	}
	if new(big.Int).SetBytes(s.Bytes()).Cmp(fr.Modulus()) >= 0 {
		t.Fatalf("%s: scalar %x not reduced", what, s.Bytes())
	}
}

// fzCirclAcceptsG1 is the reference: a compressed, non-identity point of G1 by circl.
func fzCirclAcceptsG1(b []byte) bool {
	var c circl.G1
	return len(b) == G1Size && b[0]&0x80 != 0 && c.SetBytes(b) == nil && !c.IsIdentity()
}

func fzCirclAcceptsG2(b []byte) bool {
	var c circl.G2
	return len(b) == G2Size && b[0]&0x80 != 0 && c.SetBytes(b) == nil && !c.IsIdentity()
}

func fzScalarValid(b []byte) bool {
	if len(b) != ScalarSize {
		return false
	}
	n := new(big.Int).SetBytes(b)
	return n.Sign() > 0 && n.Cmp(fr.Modulus()) < 0
}

// fzX25519Canonical is the reference for X25519 public keys: 32 bytes whose
// little-endian value is below 2^255 − 19.
func fzX25519Canonical(b []byte) bool {
	if len(b) != X25519Size {
		return false
	}
	le := make([]byte, len(b))
	for i := range b {
		le[len(b)-1-i] = b[i]
	}
	p := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	return new(big.Int).SetBytes(le).Cmp(p) < 0
}

// fzMLKEMKeyValid is the reference for ML-KEM-768 encapsulation keys: the 384 bytes
// of each of the three polynomials are 256 12-bit coefficients, each below q = 3329.
func fzMLKEMKeyValid(b []byte) bool {
	if len(b) != mlkem.EncapsulationKeySize768 {
		return false
	}
	for i := 0; i+3 <= 3*384; i += 3 {
		c0 := uint16(b[i]) | uint16(b[i+1]&0x0f)<<8
		c1 := uint16(b[i+1]>>4) | uint16(b[i+2])<<4
		if c0 >= 3329 || c1 >= 3329 {
			return false
		}
	}
	return true
}

func fzKeyShareValid(b []byte) bool {
	return len(b) == EncapsulationKeySize && fzMLKEMKeyValid(b[:mlkem.EncapsulationKeySize768]) &&
		fzX25519Canonical(b[mlkem.EncapsulationKeySize768:])
}

func fzCiphertextValid(b []byte) bool {
	return len(b) == CiphertextSize && fzX25519Canonical(b[mlkem.CiphertextSize768:])
}

// --- Seeds ----------------------------------------------------------------------

// fzBadX25519 returns 32-byte encodings an X25519 decoder must refuse (non-canonical)
// and, last, valid ones of small order that only the shared secret reveals.
func fzBadX25519() (bad, smallOrder [][]byte) {
	p := bytes.Repeat([]byte{0xff}, X25519Size)
	p[0], p[31] = 0xed, 0x7f // 2^255 − 19, little-endian
	p1 := fzClone(p)
	p1[0]++
	top := make([]byte, X25519Size)
	top[31] = 0x80
	pMinus1 := fzClone(p)
	pMinus1[0]--
	one := make([]byte, X25519Size)
	one[0] = 1
	return [][]byte{p, p1, top, bytes.Repeat([]byte{0xff}, X25519Size)},
		[][]byte{make([]byte, X25519Size), one, pMinus1}
}

// fzBadKeyShares derives invalid key shares from a valid one: an ML-KEM coefficient
// of q and of 4095, and the X25519 key replaced by non-canonical ones.
func fzBadKeyShares(ek []byte) [][]byte {
	q := fzClone(ek)
	q[0], q[1] = 0x01, q[1]&0xf0|0x0d // first coefficient 3329
	top := fzClone(ek)
	top[1151] = 0xff // last coefficient of the third polynomial 4095
	out := [][]byte{q, top}
	bad, small := fzBadX25519()
	for _, x := range append(bad, small...) {
		out = append(out, fzSplice(ek, mlkem.EncapsulationKeySize768, x))
	}
	return out
}

func fzBadCiphertexts(ct []byte) [][]byte {
	var out [][]byte
	bad, small := fzBadX25519()
	for _, x := range append(bad, small...) {
		out = append(out, fzSplice(ct, mlkem.CiphertextSize768, x))
	}
	// A valid one: every ML-KEM ciphertext of the right length is accepted.
	return append(out, fzSplice(ct, 0, bytes.Repeat([]byte{0xff}, mlkem.CiphertextSize768)))
}

// fzBadG1 returns invalid 48-byte encodings: identity, off-subgroup, no point,
// non-canonical x, bad flags, and truncations of a valid one.
func fzBadG1(t testing.TB) [][]byte {
	off, noPoint := xcOffSubgroupG1(t)
	gen := G1Generator().Bytes()
	identity := make([]byte, G1Size)
	identity[0] = 0xc0
	return [][]byte{
		nil, gen[:47], append(fzClone(gen), 0), identity,
		xcEncodeG1(xcFpBig(&off.X), &off.Y),
		xcEncodeG1(xcFpBig(&noPoint), &off.Y),
		xcEncodeG1(fp.Modulus(), &off.Y),
		xcFlip(bytes.Repeat([]byte{0xff}, G1Size), 0xe0, 0x80),
		xcFlip(gen, 0xe0, 0x00), xcFlip(gen, 0xe0, 0xe0), xcFlip(gen, 0xe0, 0x40),
		G1Generator().ct.Bytes(), // uncompressed
	}
}

func fzBadG2(t testing.TB) [][]byte {
	off, noPoint := xcOffSubgroupG2(t)
	gen := G2Generator().Bytes()
	identity := make([]byte, G2Size)
	identity[0] = 0xc0
	return [][]byte{
		nil, gen[:48], gen[:95], append(fzClone(gen), 0), identity,
		xcEncodeG2(xcFpBig(&off.X.A1), xcFpBig(&off.X.A0), &off.Y),
		xcEncodeG2(xcFpBig(&noPoint.A1), xcFpBig(&noPoint.A0), &off.Y),
		xcEncodeG2(xcFpBig(&off.X.A1), fp.Modulus(), &off.Y),
		xcFlip(bytes.Repeat([]byte{0xff}, G2Size), 0xe0, 0x80),
		xcFlip(gen, 0xe0, 0x00), xcFlip(gen, 0xe0, 0xe0), xcFlip(gen, 0xe0, 0x40),
		G2Generator().ct.Bytes(),
	}
}

func fzBadScalars() [][]byte {
	r := fr.Modulus()
	return [][]byte{
		nil, make([]byte, 31), make([]byte, 33), make([]byte, ScalarSize),
		r.FillBytes(make([]byte, ScalarSize)),
		new(big.Int).Add(r, big.NewInt(1)).FillBytes(make([]byte, ScalarSize)),
		bytes.Repeat([]byte{0xff}, ScalarSize),
	}
}

// fzMessages runs one login and a share issuance with the test world of
// mpin_test.go and returns their encodings.
type fzMessages struct {
	pass1, challenge, pass2, finish, proof [][]byte
	g1                                     [][]byte // valid G1 encodings seen in them
	keyShare, ciphertext                   [][]byte // and the key shares and ciphertexts
}

func fzProtocol(f testing.TB) *fzMessages {
	f.Helper()
	var m fzMessages
	for _, period := range []uint64{86400, 0} {
		w := newWorld(f, "fuzz.example.com", 2)
		w.domain.PermitPeriod = period
		w.verifier.Domain = w.domain
		c := w.enrol(f, "fuzz@example.com", []byte("1234"))
		if period == 0 {
			c.Permit = nil
		}
		fl := w.upToPass2(f, c, []byte("1234"))
		cs, p1, ch, p2 := fl.cs, fl.p1, fl.ch, fl.p2
		fin, _, err := fl.ss.Finish(p2, nil)
		if err != nil {
			f.Fatal(err)
		}
		if _, err := cs.Finish(fin); err != nil {
			f.Fatal(err)
		}
		mustBin := func(v interface{ MarshalBinary() ([]byte, error) }) []byte {
			b, err := v.MarshalBinary()
			if err != nil {
				f.Fatal(err)
			}
			return b
		}
		m.pass1 = append(m.pass1, mustBin(p1))
		m.challenge = append(m.challenge, mustBin(ch))
		m.pass2 = append(m.pass2, mustBin(p2))
		m.finish = append(m.finish, mustBin(fin))
		m.g1 = append(m.g1, p1.U.Bytes(), p1.Z.Bytes(), p2.V.Bytes(), c.Token.Bytes())
		m.keyShare = append(m.keyShare, p1.KEM.Bytes())
		m.ciphertext = append(m.ciphertext, ch.KEM.Bytes())
		if c.Permit != nil {
			m.g1 = append(m.g1, c.Permit.Bytes())
		}

		_, proof, err := IssueShare(nil, w.masters[0], w.commits[0], IdentityPoint(c.IDHash), ShareContext(w.domain.Name, 1, "client", 0))
		if err != nil {
			f.Fatal(err)
		}
		m.proof = append(m.proof, proof.Bytes())
	}
	return &m
}

// fzSplice returns b with b[at:at+len(part)] replaced by part.
func fzSplice(b []byte, at int, part []byte) []byte {
	out := fzClone(b)
	copy(out[at:], part)
	return out
}

// fzBadMessages derives invalid messages from a valid one: truncated, extended, and
// with the G1 point at each offset in points, and the scalar at each offset in
// scalars, replaced by invalid encodings.
func fzBadMessages(t testing.TB, msg []byte, points []int, scalars []int) [][]byte {
	out := [][]byte{nil, msg[:len(msg)-1], append(fzClone(msg), 0)}
	for _, at := range points {
		for _, bad := range fzBadG1(t) {
			if len(bad) == G1Size {
				out = append(out, fzSplice(msg, at, bad))
			}
		}
	}
	for _, at := range scalars {
		for _, bad := range fzBadScalars() {
			if len(bad) == ScalarSize {
				out = append(out, fzSplice(msg, at, bad))
			}
		}
	}
	return out
}

// --- Fuzz targets ---------------------------------------------------------------

func FuzzDecodeG1(f *testing.F) {
	f.Add(G1Generator().Bytes())
	f.Add(G1Generator().Neg().Bytes())
	for _, msg := range []string{"", "a", "polyroot"} {
		f.Add(HashToG1([]byte(msg), []byte(DSTIdentity)).Bytes())
	}
	for _, b := range fzProtocol(f).g1 {
		f.Add(b)
	}
	for _, b := range fzBadG1(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		in := fzClone(b)
		p, err := DecodeG1(in)
		if want := fzCirclAcceptsG1(b); (err == nil) != want {
			t.Fatalf("DecodeG1(%x): err = %v, but circl accepts = %v", b, err, want)
		}
		if err != nil {
			fzCheckErr(t, err)
			return
		}
		fzScramble(in)
		if got := p.Bytes(); !bytes.Equal(got, b) {
			t.Fatalf("round trip: DecodeG1(%x).Bytes() = %x", b, got)
		}
		fzCheckG1(t, "DecodeG1", p)
	})
}

func FuzzDecodeG2(f *testing.F) {
	f.Add(G2Generator().Bytes())
	f.Add(G2Generator().Mul(NewScalar(7)).Bytes())
	f.Add(G2Generator().Mul(new(Scalar).Neg(NewScalar(1))).Bytes())
	for _, b := range fzBadG2(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		in := fzClone(b)
		p, err := DecodeG2(in)
		if want := fzCirclAcceptsG2(b); (err == nil) != want {
			t.Fatalf("DecodeG2(%x): err = %v, but circl accepts = %v", b, err, want)
		}
		if err != nil {
			fzCheckErr(t, err)
			return
		}
		fzScramble(in)
		if got := p.Bytes(); !bytes.Equal(got, b) {
			t.Fatalf("round trip: DecodeG2(%x).Bytes() = %x", b, got)
		}
		fzCheckG2(t, "DecodeG2", p)
	})
}

func FuzzDecodeScalar(f *testing.F) {
	f.Add(NewScalar(1).Bytes())
	f.Add(new(Scalar).Neg(NewScalar(1)).Bytes())
	f.Add(HashToScalar([]byte("seed"), []byte(DSTPIN)).Bytes())
	for _, b := range fzBadScalars() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		in := fzClone(b)
		s, err := DecodeScalar(in)
		if want := fzScalarValid(b); (err == nil) != want {
			t.Fatalf("DecodeScalar(%x): err = %v, want success = %v", b, err, want)
		}
		if err != nil {
			fzCheckErr(t, err)
			return
		}
		fzScramble(in)
		if got := s.Bytes(); !bytes.Equal(got, b) {
			t.Fatalf("round trip: DecodeScalar(%x).Bytes() = %x", b, got)
		}
		fzCheckScalar(t, "DecodeScalar", s, false)
	})
}

func FuzzDecodeDLEQProof(f *testing.F) {
	m := fzProtocol(f)
	for _, b := range m.proof {
		f.Add(b)
		for _, bad := range fzBadMessages(f, b, nil, []int{0, ScalarSize}) {
			f.Add(bad)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		in := fzClone(b)
		p, err := DecodeDLEQProof(in)
		if want := len(b) == DLEQProofSize && fzScalarValid(b[:ScalarSize]) && fzScalarValid(b[ScalarSize:]); (err == nil) != want {
			t.Fatalf("DecodeDLEQProof(%x): err = %v, want success = %v", b, err, want)
		}
		if err != nil {
			fzCheckErr(t, err)
			return
		}
		fzScramble(in)
		if got := p.Bytes(); !bytes.Equal(got, b) {
			t.Fatalf("round trip: DecodeDLEQProof(%x).Bytes() = %x", b, got)
		}
		fzCheckScalar(t, "proof c", &p.c, false)
		fzCheckScalar(t, "proof z", &p.z, false)
	})
}

func FuzzPass1(f *testing.F) {
	m := fzProtocol(f)
	for _, b := range m.pass1 {
		f.Add(b)
		for _, bad := range fzBadMessages(f, b, []int{40, 88}, nil) {
			f.Add(bad)
		}
		for _, ek := range fzBadKeyShares(b[136:]) {
			f.Add(fzSplice(b, 136, ek))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		in := fzClone(b)
		var msg Pass1
		err := msg.UnmarshalBinary(in)
		if want := len(b) == Pass1Size && fzCirclAcceptsG1(b[40:88]) && fzCirclAcceptsG1(b[88:136]) && fzKeyShareValid(b[136:]); (err == nil) != want {
			t.Fatalf("Pass1.UnmarshalBinary(%x): err = %v, want success = %v", b, err, want)
		}
		if err != nil {
			fzCheckErr(t, err)
			return
		}
		fzScramble(in)
		got, err := msg.MarshalBinary()
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("round trip of %x: %x, %v", b, got, err)
		}
		fzCheckG1(t, "pass 1 U", msg.U)
		fzCheckG1(t, "pass 1 Z", msg.Z)
		if msg.KEM == nil || !bytes.Equal(msg.KEM.Bytes(), b[136:]) {
			t.Fatal("pass 1 key share does not round-trip")
		}
	})
}

func FuzzChallenge(f *testing.F) {
	m := fzProtocol(f)
	for _, b := range m.challenge {
		f.Add(b)
		for _, bad := range fzBadMessages(f, b, nil, []int{16}) {
			f.Add(bad)
		}
		for _, ct := range fzBadCiphertexts(b[48:]) {
			f.Add(fzSplice(b, 48, ct))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		in := fzClone(b)
		var msg Challenge
		err := msg.UnmarshalBinary(in)
		if want := len(b) == ChallengeSize && fzScalarValid(b[16:48]) && fzCiphertextValid(b[48:]); (err == nil) != want {
			t.Fatalf("Challenge.UnmarshalBinary(%x): err = %v, want success = %v", b, err, want)
		}
		if err != nil {
			fzCheckErr(t, err)
			return
		}
		fzScramble(in)
		got, err := msg.MarshalBinary()
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("round trip of %x: %x, %v", b, got, err)
		}
		fzCheckScalar(t, "challenge y", msg.Y, false)
		if msg.KEM == nil || !bytes.Equal(msg.KEM.Bytes(), b[48:]) {
			t.Fatal("challenge ciphertext does not round-trip")
		}
	})
}

func FuzzDecodeEncapsulationKey(f *testing.F) {
	m := fzProtocol(f)
	for _, b := range m.keyShare {
		f.Add(b)
		f.Add(b[:len(b)-1])
		f.Add(append(fzClone(b), 0))
		for _, bad := range fzBadKeyShares(b) {
			f.Add(bad)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		in := fzClone(b)
		k, err := DecodeEncapsulationKey(in)
		if want := fzKeyShareValid(b); (err == nil) != want {
			t.Fatalf("DecodeEncapsulationKey(%x): err = %v, want success = %v", b, err, want)
		}
		if err != nil {
			fzCheckErr(t, err)
			return
		}
		fzScramble(in)
		if got := k.Bytes(); !bytes.Equal(got, b) {
			t.Fatalf("round trip: DecodeEncapsulationKey(%x).Bytes() = %x", b, got)
		}
	})
}

func FuzzDecodeCiphertext(f *testing.F) {
	m := fzProtocol(f)
	for _, b := range m.ciphertext {
		f.Add(b)
		f.Add(b[:len(b)-1])
		f.Add(append(fzClone(b), 0))
		for _, bad := range fzBadCiphertexts(b) {
			f.Add(bad)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		in := fzClone(b)
		c, err := DecodeCiphertext(in)
		if want := fzCiphertextValid(b); (err == nil) != want {
			t.Fatalf("DecodeCiphertext(%x): err = %v, want success = %v", b, err, want)
		}
		if err != nil {
			fzCheckErr(t, err)
			return
		}
		fzScramble(in)
		if got := c.Bytes(); !bytes.Equal(got, b) {
			t.Fatalf("round trip: DecodeCiphertext(%x).Bytes() = %x", b, got)
		}
	})
}

func FuzzPass2(f *testing.F) {
	m := fzProtocol(f)
	for _, b := range m.pass2 {
		f.Add(b)
		for _, bad := range fzBadMessages(f, b, []int{16}, nil) {
			f.Add(bad)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		in := fzClone(b)
		var msg Pass2
		err := msg.UnmarshalBinary(in)
		if want := len(b) == Pass2Size && fzCirclAcceptsG1(b[16:64]); (err == nil) != want {
			t.Fatalf("Pass2.UnmarshalBinary(%x): err = %v, want success = %v", b, err, want)
		}
		if err != nil {
			fzCheckErr(t, err)
			return
		}
		fzScramble(in)
		got, err := msg.MarshalBinary()
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("round trip of %x: %x, %v", b, got, err)
		}
		fzCheckG1(t, "pass 2 V", msg.V)
	})
}

func FuzzFinish(f *testing.F) {
	m := fzProtocol(f)
	for _, b := range m.finish {
		f.Add(b)
		f.Add(b[:TagSize-1])
		f.Add(append(fzClone(b), 0))
	}
	f.Add([]byte(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		in := fzClone(b)
		var msg Finish
		err := msg.UnmarshalBinary(in)
		if (err == nil) != (len(b) == FinishSize) {
			t.Fatalf("Finish.UnmarshalBinary(%x): err = %v", b, err)
		}
		if err != nil {
			fzCheckErr(t, err)
			return
		}
		fzScramble(in)
		got, err := msg.MarshalBinary()
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("round trip of %x: %x, %v", b, got, err)
		}
	})
}

// TestFuzzSeedsValid makes sure the protocol seeds are valid messages, so that the
// fuzz targets start from the accepting paths as well as the rejecting ones.
func TestFuzzSeedsValid(t *testing.T) {
	m := fzProtocol(t)
	for _, b := range m.g1 {
		if _, err := DecodeG1(b); err != nil {
			t.Errorf("G1 %x: %v", b, err)
		}
	}
	for _, b := range m.proof {
		if _, err := DecodeDLEQProof(b); err != nil {
			t.Errorf("proof %x: %v", b, err)
		}
	}
	for _, b := range m.keyShare {
		if _, err := DecodeEncapsulationKey(b); err != nil || !fzKeyShareValid(b) {
			t.Errorf("key share %x: %v", b, err)
		}
		for _, bad := range fzBadKeyShares(b) {
			if _, err := DecodeEncapsulationKey(bad); (err == nil) != fzKeyShareValid(bad) {
				t.Errorf("key share %x: %v, reference says %v", bad, err, fzKeyShareValid(bad))
			}
		}
	}
	for _, b := range m.ciphertext {
		if _, err := DecodeCiphertext(b); err != nil {
			t.Errorf("ciphertext %x: %v", b, err)
		}
	}
	// The small-order X25519 keys decode (they are canonical) and are refused when the
	// shared secret is computed.
	_, small := fzBadX25519()
	for _, b := range small {
		k, err := decodeX25519(b)
		if err != nil {
			t.Fatalf("small-order X25519 %x: %v", b, err)
		}
		e, err := newEncapsulator(nil)
		if err != nil {
			t.Fatal(err)
		}
		ek := randomKeyShare(t)
		ek.x25519 = k
		if _, _, err := e.run(ek); !errors.Is(err, ErrIdentity) {
			t.Errorf("small-order X25519 %x: got %v, want ErrIdentity", b, err)
		}
	}
	for _, c := range []struct {
		msgs [][]byte
		v    interface{ UnmarshalBinary([]byte) error }
	}{{m.pass1, new(Pass1)}, {m.challenge, new(Challenge)}, {m.pass2, new(Pass2)}, {m.finish, new(Finish)}} {
		for _, b := range c.msgs {
			if err := c.v.UnmarshalBinary(b); err != nil {
				t.Errorf("%T %x: %v", c.v, b, err)
			}
		}
	}
}

// FuzzRestoreSession: a session state never panics the decoder, and one it accepts
// encodes back to itself.
func FuzzRestoreSession(f *testing.F) {
	w := newWorld(f, "fuzz.example.com", 2)
	c := w.enrol(f, "fuzz@example.com", []byte("1234"))
	fl := w.upToPass2(f, c, []byte("1234"))
	state, err := fl.ss.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(state)
	f.Add(state[:sessionStateHead])
	f.Add(state[:sessionStateHead-1])
	for _, bad := range fzBadG1(f) {
		if len(bad) == G1Size {
			f.Add(fzSplice(state, SessionIDSize+SharedSecretSize+G1Size, bad))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		in := fzClone(b)
		s, err := w.verifier.RestoreSession(in)
		if err != nil {
			return
		}
		fzScramble(in)
		got, err := s.MarshalBinary()
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("round trip of %x: %x, %v", b, got, err)
		}
	})
}
