package pairing

import (
	"bytes"
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

// --- Seeds ----------------------------------------------------------------------

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
		m.g1 = append(m.g1, p1.U.Bytes(), p1.Z.Bytes(), ch.W.Bytes(), p2.V.Bytes(), c.Token.Bytes())
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
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		in := fzClone(b)
		var msg Pass1
		err := msg.UnmarshalBinary(in)
		if want := len(b) == Pass1Size && fzCirclAcceptsG1(b[40:88]) && fzCirclAcceptsG1(b[88:136]); (err == nil) != want {
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
	})
}

func FuzzChallenge(f *testing.F) {
	m := fzProtocol(f)
	for _, b := range m.challenge {
		f.Add(b)
		for _, bad := range fzBadMessages(f, b, []int{48}, []int{16}) {
			f.Add(bad)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		in := fzClone(b)
		var msg Challenge
		err := msg.UnmarshalBinary(in)
		if want := len(b) == ChallengeSize && fzScalarValid(b[16:48]) && fzCirclAcceptsG1(b[48:96]); (err == nil) != want {
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
		fzCheckG1(t, "challenge W", msg.W)
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
