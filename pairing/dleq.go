package pairing

import (
	"fmt"
	"io"
	"slices"
)

// DLEQProofSize is the length of an encoded DLEQ proof: challenge c ‖ response z.
const DLEQProofSize = 2 * ScalarSize

// A DLEQProof is a Chaum–Pedersen proof that log_base(S) = log_P1(C): the share S was
// made with the same secret s_i as the DTA's published commitment C_i. It binds a
// context (domain, DTA, kind, slot) so a proof cannot be replayed for another request.
type DLEQProof struct{ c, z Scalar }

// ShareContext is the context a DTA's share proofs bind: the domain, the DTA's index,
// the kind of share ("client" or "permit") and the permit slot (0 for client shares).
func ShareContext(domain string, index uint32, kind string, slot uint64) []byte {
	return lp([]byte(domain), u64(uint64(index)), []byte(kind), u64(slot))
}

// IssueShare returns S = s·base and a DLEQ proof for it, where commitment = s·P1.
// Pass a long-lived commitment in public form (PublicForm) so that it is not encoded
// anew on every call.
// The proof nonce is hedged: it hashes s, the statement and 32 bytes from rand
// (crypto/rand if nil), so a broken random source cannot leak s by repeating a nonce.
func IssueShare(rand io.Reader, s *Scalar, commitment, base *G1, context []byte) (*G1, *DLEQProof, error) {
	if s.IsZero() {
		return nil, nil, ErrZeroScalar
	}
	if base.IsIdentity() || commitment.IsIdentity() {
		return nil, nil, ErrIdentity
	}
	if rand == nil {
		rand = defaultRand
	}
	var entropy [32]byte
	if _, err := io.ReadFull(rand, entropy[:]); err != nil {
		return nil, nil, fmt.Errorf("pairing: reading randomness: %w", err)
	}
	share := base.Mul(s).public() // one conversion; its encoding is then cheap
	statement := dleqStatement(commitment, base, share, context)
	k := HashToScalar(lp(s.Bytes(), entropy[:], statement), []byte(DSTNonce))
	r1, r2 := G1Generator().Mul(k), base.Mul(k)
	p := new(DLEQProof)
	p.c.Set(dleqChallenge(statement, r1, r2))
	p.z.Mul(&p.c, s)
	p.z.Sub(k, &p.z) // z = k − c·s
	return share, p, nil
}

func dleqStatement(commitment, base, share *G1, context []byte) []byte {
	return lp(context, generatorBytes, commitment.Bytes(), base.Bytes(), share.Bytes())
}

// generatorBytes is the encoding of P1, made once: encoding a point in circl's form
// costs a field inversion.
var generatorBytes = G1Generator().Bytes()

func dleqChallenge(statement []byte, r1, r2 *G1) *Scalar {
	return HashToScalar(lp(statement, r1.Bytes(), r2.Bytes()), []byte(DSTDLEQ))
}

// Verify checks the proof that log_base(share) = log_P1(commitment) under context.
// All inputs are public, so it uses the fast variable-time code where there is one.
func (p *DLEQProof) Verify(commitment, base, share *G1, context []byte) error {
	if commitment.IsIdentity() || base.IsIdentity() || share.IsIdentity() {
		return ErrIdentity
	}
	r1 := jointMulVarTime(G1Generator(), commitment, &p.z, &p.c) // z·P1 + c·C
	r2 := jointMulVarTime(base, share, &p.z, &p.c)               // z·base + c·S
	if !dleqChallenge(dleqStatement(commitment, base, share, context), r1, r2).Equal(&p.c) {
		return ErrInvalidProof
	}
	return nil
}

// Bytes returns the 64-byte encoding c ‖ z.
func (p *DLEQProof) Bytes() []byte { return append(p.c.Bytes(), p.z.Bytes()...) }

// DecodeDLEQProof decodes a 64-byte proof; both scalars must be canonical and non-zero.
func DecodeDLEQProof(b []byte) (*DLEQProof, error) {
	if len(b) != DLEQProofSize {
		return nil, fmt.Errorf("%w: DLEQ proof is %d bytes, want %d", ErrLength, len(b), DLEQProofSize)
	}
	c, err := DecodeScalar(b[:ScalarSize])
	if err != nil {
		return nil, err
	}
	z, err := DecodeScalar(b[ScalarSize:])
	if err != nil {
		return nil, err
	}
	return &DLEQProof{c: *c, z: *z}, nil
}

// An IssuedShare is one DTA's answer to a share request, as the client receives it.
type IssuedShare struct {
	Index      uint32 // the DTA's index in the trust bundle
	Commitment *G1    // the DTA's published C_i = s_i·P1
	Share      *G1    // S_i = s_i·base
	Proof      *DLEQProof
}

// A ShareError names the DTAs whose shares failed their proofs.
type ShareError struct{ Indices []uint32 }

func (e *ShareError) Error() string {
	return fmt.Sprintf("pairing: bad share from DTA %v: DLEQ proof does not verify", e.Indices)
}

// Unwrap makes errors.Is(err, ErrInvalidProof) true.
func (e *ShareError) Unwrap() error { return ErrInvalidProof }

// VerifyShares checks every share's proof against base, each under the context
// contextOf(index) returns. It returns a *ShareError naming every DTA whose proof fails.
func VerifyShares(base *G1, shares []IssuedShare, contextOf func(index uint32) []byte) error {
	var bad []uint32
	for _, s := range shares {
		if s.Commitment == nil || s.Share == nil || s.Proof == nil ||
			s.Proof.Verify(s.Commitment, base, s.Share, contextOf(s.Index)) != nil {
			bad = append(bad, s.Index)
		}
	}
	if bad != nil {
		slices.Sort(bad)
		return &ShareError{Indices: bad}
	}
	return nil
}
