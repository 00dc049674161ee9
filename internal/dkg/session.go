package dkg

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/polyroot/polyroot/pairing"
)

// DSTPedersen tags the hash to G1 that makes the second Pedersen generator H. Nobody
// knows log_P1(H): it is a hash output (RFC 9380, random-oracle suite) of a fixed string.
const DSTPedersen = "POLYROOT-V1-DKG-PEDERSEN-H-BLS12381G1_XMD:SHA-256_SSWU_RO_"

// pedersenH is H = hash_to_curve("polyroot dkg pedersen generator", DSTPedersen).
var pedersenH = pairing.HashToG1([]byte("polyroot dkg pedersen generator"), []byte(DSTPedersen))

// PedersenH returns the second Pedersen generator H.
func PedersenH() *pairing.G1 { return pedersenH }

// Limits on a session: they bound every count in a message, so decoders never allocate
// more than a few hundred kilobytes.
const (
	MaxMembers = 256
	sealKind   = "dkg-share" // wire.SealContext.Kind of a sealed share
)

// A Member is one DTA taking part in a session: its index (the evaluation point of its
// share, the bundle's DTA index), its Ed25519 key (from its DTA record) and the X25519
// public key its shares are sealed to. The seal key should be fresh for the session
// (see Caveats in the package documentation).
type Member struct {
	Index      uint32
	SigningKey ed25519.PublicKey
	SealKey    []byte // 32 bytes, wire.NewSealKey
}

// A Reshare describes the committee that holds the domain key now: its threshold, its
// members (the dealers of the resharing) with their public commitments C_i = s_i·P1
// (Commitments[k] belongs to Dealers[k]) and the public key s·P1.
type Reshare struct {
	Threshold   int
	Dealers     []Member // SealKey unused
	Commitments []*pairing.G1
	PublicKey   *pairing.G1
}

// A Session is everything the participants must agree on before they start: the
// domain, an epoch (a counter of key generations and resharings), a fresh nonce, the
// threshold t and the (new) committee. Reshare is nil for a fresh key generation.
// Its ID binds every message to it.
type Session struct {
	Domain    string
	Epoch     uint64
	Nonce     [32]byte
	Threshold int
	Members   []Member
	Reshare   *Reshare
}

// ErrSession reports a session description that cannot be run.
var ErrSession = errors.New("dkg: invalid session")

func checkMembers(what string, ms []Member, needSeal bool) error {
	if len(ms) == 0 || len(ms) > MaxMembers {
		return fmt.Errorf("%w: %d %s", ErrSession, len(ms), what)
	}
	for k, m := range ms {
		if m.Index == 0 || (k > 0 && m.Index <= ms[k-1].Index) {
			return fmt.Errorf("%w: %s indices must be non-zero and strictly increasing (index %d)", ErrSession, what, m.Index)
		}
		if len(m.SigningKey) != ed25519.PublicKeySize {
			return fmt.Errorf("%w: %s %d has no Ed25519 key", ErrSession, what, m.Index)
		}
		if needSeal && len(m.SealKey) != 32 {
			return fmt.Errorf("%w: %s %d has no 32-byte seal key", ErrSession, what, m.Index)
		}
		for _, o := range ms[:k] {
			if bytes.Equal(o.SigningKey, m.SigningKey) {
				return fmt.Errorf("%w: %s %d and %d share a signing key", ErrSession, what, o.Index, m.Index)
			}
		}
	}
	return nil
}

// Check reports whether the session can be run.
func (s *Session) Check() error {
	if s.Domain == "" || len(s.Domain) > 255 {
		return fmt.Errorf("%w: domain", ErrSession)
	}
	if err := checkMembers("member", s.Members, true); err != nil {
		return err
	}
	if s.Threshold < 2 || s.Threshold > len(s.Members) {
		return fmt.Errorf("%w: threshold %d of %d (want 2 to the number of members: with 1, every member would hold the key)", ErrSession, s.Threshold, len(s.Members))
	}
	r := s.Reshare
	if r == nil {
		// A dealer's Feldman commitments are held to its shares only by the
		// disclosures of members it dealt to: with fewer than t honest members, a
		// coalition below t could publish commitments that shift the key by an
		// amount of its choosing, and no fault would be recorded. A resharing
		// cannot shift it (A_i0 = C_i, and the C_i combine to the key).
		if len(s.Members) < MinKeyGenMembers(s.Threshold) {
			return fmt.Errorf("%w: threshold %d of %d: a key generation needs at least 2t−1 = %d members, so that t honest ones remain "+
				"however t−1 collude (fewer could bias the key unnoticed)", ErrSession, s.Threshold, len(s.Members), MinKeyGenMembers(s.Threshold))
		}
		return nil
	}
	if err := checkMembers("old member", r.Dealers, false); err != nil {
		return err
	}
	if r.Threshold < 1 || r.Threshold > len(r.Dealers) || len(r.Commitments) != len(r.Dealers) {
		return fmt.Errorf("%w: old threshold %d of %d with %d commitments", ErrSession, r.Threshold, len(r.Dealers), len(r.Commitments))
	}
	for k, c := range append([]*pairing.G1{r.PublicKey}, r.Commitments...) {
		if c == nil || c.IsIdentity() {
			return fmt.Errorf("%w: old commitment %d is missing or the identity", ErrSession, k)
		}
	}
	return nil
}

// MinKeyGenMembers is the fewest members of a key generation of threshold t: 2t−1,
// so that t honest members remain however t−1 collude (Session.Check).
func MinKeyGenMembers(t int) int { return 2*t - 1 }

// ID is SHA-256 of the session's canonical encoding. Every message carries it and every
// signature covers it, so no message can be replayed into another session.
func (s *Session) ID() ([32]byte, error) {
	if err := s.Check(); err != nil {
		return [32]byte{}, err
	}
	b := []byte("polyroot/v1 dkg session\x00")
	b = lp(b, []byte(s.Domain))
	b = binary.BigEndian.AppendUint64(b, s.Epoch)
	b = append(b, s.Nonce[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(s.Threshold))
	b = appendMembers(b, s.Members)
	if r := s.Reshare; r != nil {
		b = append(b, 1)
		b = binary.BigEndian.AppendUint32(b, uint32(r.Threshold))
		b = appendMembers(b, r.Dealers)
		b = append(b, r.PublicKey.Bytes()...)
		for _, c := range r.Commitments {
			b = append(b, c.Bytes()...)
		}
	} else {
		b = append(b, 0)
	}
	return sha256.Sum256(b), nil
}

func appendMembers(b []byte, ms []Member) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(ms)))
	for _, m := range ms {
		b = binary.BigEndian.AppendUint32(b, m.Index)
		b = lp(b, m.SigningKey)
		b = lp(b, m.SealKey)
	}
	return b
}

func lp(b, field []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(field)))
	return append(b, field...)
}

// dealers returns who deals: the members in a key generation, the old committee in a
// resharing.
func (s *Session) dealers() []Member {
	if s.Reshare != nil {
		return s.Reshare.Dealers
	}
	return s.Members
}

// need is the least number of qualified dealers: t for a key generation (so that at
// least one of them is honest when fewer than t are corrupt), the old threshold for a
// resharing (so that their shares interpolate s).
func (s *Session) need() int {
	if s.Reshare != nil {
		return s.Reshare.Threshold
	}
	return s.Threshold
}

// pedersen reports whether deals use Pedersen commitments (key generation) rather than
// Feldman commitments (resharing).
func (s *Session) pedersen() bool { return s.Reshare == nil }

func find(ms []Member, index uint32) (Member, bool) {
	for _, m := range ms {
		if m.Index == index {
			return m, true
		}
	}
	return Member{}, false
}
