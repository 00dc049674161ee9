package dkg

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/polyroot/polyroot/pairing"
)

// A Kind names a message's round. Deal, Answer and Feldman come from dealers; Complaint,
// Disclose and Reveal from members of the (new) committee.
type Kind uint8

const (
	KindDeal      Kind = 1 // commitments to f_i (and f'_i) and the sealed shares
	KindComplaint Kind = 2 // the dealers whose share to the sender is missing or invalid
	KindAnswer    Kind = 3 // the complained-about shares, revealed
	KindFeldman   Kind = 4 // key generation only: A_ik = a_ik·P1
	KindDisclose  Kind = 5 // key generation only: shares that contradict a dealer's A_ik
	KindReveal    Kind = 6 // key generation only: shares of dealers being reconstructed
)

var kindNames = [...]string{"", "deal", "complaint", "answer", "feldman", "disclose", "reveal"}

func (k Kind) String() string {
	if int(k) < len(kindNames) && k != 0 {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

func (k Kind) fromDealer() bool { return k == KindDeal || k == KindAnswer || k == KindFeldman }

// A Sealed is one share sealed with HPKE (wire.Seal) to member To.
type Sealed struct {
	To  uint32
	Box []byte
}

// A Pair is a revealed share: F = f_i(j) and, in a key generation, G = f'_i(j) (nil in
// a resharing). Index is the member j in an answer, the dealer i in a disclosure or a
// reveal.
type Pair struct {
	Index uint32
	F, G  *pairing.Scalar
}

// A Message is one signed protocol message. Which fields are set depends on Kind:
// Deal: Points (C_ik, or A_ik in a resharing) and Sealed; Complaint: Indices (may be
// empty); Answer, Disclose, Reveal: Pairs; Feldman: Points.
type Message struct {
	Session   [32]byte
	Kind      Kind
	From      uint32
	Points    []*pairing.G1
	Sealed    []Sealed
	Indices   []uint32
	Pairs     []Pair
	Signature []byte
}

// Wire format (all integers big-endian):
//
//	"PRDKG" 0x01 ‖ session[32] ‖ kind u8 ‖ from u32
//	‖ u16 n ‖ n × G1 (48, compressed)
//	‖ u16 n ‖ n × (to u32 ‖ u16 len ‖ box)
//	‖ u16 n ‖ n × u32
//	‖ u16 n ‖ [width u8 (1 or 2) if n > 0] ‖ n × (index u32 ‖ width × scalar[32])
//	‖ signature[64]
//
// The signature is Ed25519 over "polyroot/v1 dkg message\x00" ‖ everything before it.
// Lists are strictly increasing by index; the decoder rejects anything else, so each
// message has exactly one encoding.
const (
	magic      = "PRDKG\x01"
	sigContext = "polyroot/v1 dkg message\x00"
	maxBox     = 256
)

// ErrMessage reports a message that does not decode, or does not fit its kind.
var ErrMessage = errors.New("dkg: malformed message")

func (m *Message) body() []byte {
	b := append([]byte(magic), m.Session[:]...)
	b = append(b, byte(m.Kind))
	b = binary.BigEndian.AppendUint32(b, m.From)
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.Points)))
	for _, p := range m.Points {
		b = append(b, p.Bytes()...)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.Sealed)))
	for _, s := range m.Sealed {
		b = binary.BigEndian.AppendUint32(b, s.To)
		b = binary.BigEndian.AppendUint16(b, uint16(len(s.Box)))
		b = append(b, s.Box...)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.Indices)))
	for _, x := range m.Indices {
		b = binary.BigEndian.AppendUint32(b, x)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.Pairs)))
	if len(m.Pairs) > 0 {
		w := byte(1)
		if m.Pairs[0].G != nil {
			w = 2
		}
		b = append(b, w)
		for _, p := range m.Pairs {
			b = binary.BigEndian.AppendUint32(b, p.Index)
			b = append(b, p.F.Bytes()...)
			if w == 2 {
				b = append(b, p.G.Bytes()...)
			}
		}
	}
	return b
}

func (m *Message) signed() []byte { return append([]byte(sigContext), m.body()...) }

func (m *Message) sign(key ed25519.PrivateKey) {
	m.Signature = ed25519.Sign(key, m.signed())
}

// Bytes returns the message's encoding.
func (m *Message) Bytes() []byte { return append(m.body(), m.Signature...) }

// Verify checks the signature against key.
func (m *Message) Verify(key ed25519.PublicKey) error {
	return verifyBody(key, m.Kind, m.From, m.body(), m.Signature)
}

// verifyBody checks sig, by key, over a message's body (its encoding without the
// signature): the one signature check of Verify, Session.Accept and
// Session.DecodeAccepted.
func verifyBody(key ed25519.PublicKey, k Kind, from uint32, body, sig []byte) error {
	if len(key) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize ||
		!ed25519.Verify(key, append([]byte(sigContext), body...), sig) {
		return fmt.Errorf("dkg: %s from DTA %d: bad signature", k, from)
	}
	return nil
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil || n > len(r.b) {
		r.fail("truncated")
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", ErrMessage, fmt.Sprintf(format, args...))
	}
}

func (r *reader) u8() byte {
	if b := r.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *reader) u16() int {
	if b := r.take(2); b != nil {
		return int(binary.BigEndian.Uint16(b))
	}
	return 0
}

func (r *reader) u32() uint32 {
	if b := r.take(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

// count reads a list length and checks it against MaxMembers.
func (r *reader) count() int {
	n := r.u16()
	if n > MaxMembers {
		r.fail("list of %d entries", n)
		return 0
	}
	return n
}

// index reads a list index, which must be non-zero and above the previous one.
func (r *reader) index(prev uint32) uint32 {
	x := r.u32()
	if r.err == nil && (x == 0 || x <= prev) {
		r.fail("index %d after %d: not strictly increasing", x, prev)
	}
	return x
}

func (r *reader) scalar() *pairing.Scalar {
	b := r.take(pairing.ScalarSize)
	if r.err != nil {
		return nil
	}
	s, err := pairing.DecodeScalar(b)
	if err != nil {
		r.fail("scalar: %v", err)
	}
	return s
}

// DecodeMessage decodes a message strictly: canonical points that are not the
// identity, reduced non-zero scalars, strictly increasing lists, only the fields its
// kind uses, no trailing bytes. It does not check the signature (Verify).
func DecodeMessage(b []byte) (*Message, error) {
	r := &reader{b: b}
	if string(r.take(len(magic))) != magic {
		r.fail("bad magic")
	}
	m := new(Message)
	copy(m.Session[:], r.take(32))
	m.Kind = Kind(r.u8())
	m.From = r.u32()
	if r.err == nil && (m.Kind < KindDeal || m.Kind > KindReveal || m.From == 0) {
		r.fail("kind %d from %d", m.Kind, m.From)
	}
	for range r.count() {
		p, err := pairing.DecodeG1(r.take(pairing.G1Size))
		if r.err == nil && err != nil {
			r.fail("point: %v", err)
		}
		m.Points = append(m.Points, p)
	}
	prev := uint32(0)
	for range r.count() {
		s := Sealed{To: r.index(prev)}
		prev = s.To
		n := r.u16()
		if n == 0 || n > maxBox {
			r.fail("sealed share of %d bytes", n)
		}
		s.Box = append([]byte(nil), r.take(n)...)
		m.Sealed = append(m.Sealed, s)
	}
	prev = 0
	for range r.count() {
		prev = r.index(prev)
		m.Indices = append(m.Indices, prev)
	}
	prev = 0
	if n := r.count(); n > 0 {
		w := r.u8()
		if w != 1 && w != 2 {
			r.fail("pair width %d", w)
		}
		for range n {
			p := Pair{Index: r.index(prev)}
			prev = p.Index
			p.F = r.scalar()
			if w == 2 {
				p.G = r.scalar()
			}
			m.Pairs = append(m.Pairs, p)
		}
	}
	m.Signature = append([]byte(nil), r.take(ed25519.SignatureSize)...)
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d trailing bytes", len(r.b))
	}
	if r.err != nil {
		return nil, r.err
	}
	if err := m.checkShape(); err != nil {
		return nil, err
	}
	return m, nil
}

// checkShape checks that only the fields of the message's kind are set.
func (m *Message) checkShape() error {
	points, sealed, indices, pairs := len(m.Points) > 0, len(m.Sealed) > 0, len(m.Indices) > 0, len(m.Pairs) > 0
	var ok bool
	switch m.Kind {
	case KindDeal:
		ok = points && sealed && !indices && !pairs
	case KindComplaint:
		ok = !points && !sealed && !pairs
	case KindAnswer, KindDisclose, KindReveal:
		ok = !points && !sealed && !indices && pairs
	case KindFeldman:
		ok = points && !sealed && !indices && !pairs
	}
	if !ok {
		return fmt.Errorf("%w: fields do not fit a %s", ErrMessage, m.Kind)
	}
	return nil
}

// sharePayload encodes a dealt share for sealing: F ‖ G (G only with Pedersen).
func sharePayload(f, g *pairing.Scalar) []byte {
	b := f.Bytes()
	if g != nil {
		b = append(b, g.Bytes()...)
	}
	return b
}

// decodeSharePayload decodes an opened share: two non-zero reduced scalars with
// Pedersen commitments, one without.
func decodeSharePayload(b []byte, pedersen bool) (f, g *pairing.Scalar, err error) {
	want := pairing.ScalarSize
	if pedersen {
		want *= 2
	}
	if len(b) != want {
		return nil, nil, fmt.Errorf("%w: share of %d bytes, want %d", ErrMessage, len(b), want)
	}
	if f, err = pairing.DecodeScalar(b[:pairing.ScalarSize]); err != nil {
		return nil, nil, fmt.Errorf("%w: share: %v", ErrMessage, err)
	}
	if pedersen {
		if g, err = pairing.DecodeScalar(b[pairing.ScalarSize:]); err != nil {
			return nil, nil, fmt.Errorf("%w: share: %v", ErrMessage, err)
		}
	}
	return f, g, nil
}
