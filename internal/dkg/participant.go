package dkg

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"slices"

	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/pairing"
)

// A Participant is one DTA's private side of a session: a dealer, a member, or both.
// Each round's method takes every message seen so far (the same set as everyone else's,
// see Caveats) and returns this participant's message for the round, nil if it has none.
type Participant struct {
	s      *Session
	id     [32]byte
	key    ed25519.PrivateKey
	seal   []byte // X25519 private key
	dealer uint32 // index as a dealer, 0 if none
	member uint32 // index as a member, 0 if none
	secret *pairing.Scalar
	f, g   []*pairing.Scalar // dealt polynomials, f_i and (key generation) f'_i
	got    map[uint32]Pair   // dealer → verified share to this member
}

// NewParticipant returns the participant whose Ed25519 key is key. In a resharing, an
// old committee member passes its share s_i as oldShare (nil otherwise).
func NewParticipant(s *Session, key ed25519.PrivateKey, seal []byte, oldShare *pairing.Scalar) (*Participant, error) {
	id, err := s.ID()
	if err != nil {
		return nil, err
	}
	p := &Participant{s: s, id: id, key: key, seal: seal, got: map[uint32]Pair{}}
	pub := key.Public().(ed25519.PublicKey)
	for _, d := range s.dealers() {
		if bytes.Equal(d.SigningKey, pub) {
			p.dealer = d.Index
		}
	}
	for _, m := range s.Members {
		if bytes.Equal(m.SigningKey, pub) {
			p.member = m.Index
		}
	}
	if p.dealer == 0 && p.member == 0 {
		return nil, fmt.Errorf("%w: the key is not a participant's", ErrSession)
	}
	if s.Reshare != nil && p.dealer != 0 {
		if oldShare == nil || oldShare.IsZero() {
			return nil, fmt.Errorf("%w: old member %d needs its share", ErrSession, p.dealer)
		}
		k := slices.IndexFunc(s.Reshare.Dealers, func(m Member) bool { return m.Index == p.dealer })
		if !pairing.G1Generator().Mul(oldShare).Equal(s.Reshare.Commitments[k]) {
			return nil, fmt.Errorf("dkg: the old share of DTA %d does not match its commitment", p.dealer)
		}
		p.secret = new(pairing.Scalar).Set(oldShare)
	}
	return p, nil
}

func (p *Participant) newMessage(k Kind, from uint32) *Message {
	return &Message{Session: p.id, Kind: k, From: from}
}

func (p *Participant) sealContext(dealer, member uint32) *wire.SealContext {
	b := append(p.id[:], "dkg share"...)
	b = binary.BigEndian.AppendUint32(b, dealer)
	b = binary.BigEndian.AppendUint32(b, member)
	return &wire.SealContext{Domain: p.s.Domain, DTA: member, Kind: sealKind, Slot: p.s.Epoch, TicketSHA256: sha256.Sum256(b)}
}

// evalPoly returns Σ c_k x^k by Horner's rule, in constant time on the coefficients.
func evalPoly(c []*pairing.Scalar, x uint32) *pairing.Scalar {
	X, y := pairing.NewScalar(uint64(x)), new(pairing.Scalar)
	for k := len(c) - 1; k >= 0; k-- {
		y.Mul(y, X).Add(y, c[k])
	}
	return y
}

// Deal draws the dealer's polynomials from rand (f_i(0) = s_i in a resharing) and
// returns its commitments and sealed shares.
func (p *Participant) Deal(rand io.Reader) (*Message, error) {
	if p.dealer == 0 {
		return nil, nil
	}
	t, ped := p.s.Threshold, p.s.pedersen()
draw:
	p.f, p.g = nil, nil
	for k := range t {
		a, err := pairing.RandomScalar(rand)
		if err != nil {
			return nil, err
		}
		if k == 0 && p.secret != nil {
			a = p.secret
		}
		p.f = append(p.f, a)
		if ped {
			b, err := pairing.RandomScalar(rand)
			if err != nil {
				return nil, err
			}
			p.g = append(p.g, b)
		}
	}
	m := p.newMessage(KindDeal, p.dealer)
	for k := range t {
		c := pairing.G1Generator().Mul(p.f[k])
		if ped {
			c = c.Add(pedersenH.Mul(p.g[k]))
		}
		m.Points = append(m.Points, c.PublicForm())
	}
	for _, mem := range p.s.Members {
		f := evalPoly(p.f, mem.Index)
		var g *pairing.Scalar
		if ped {
			g = evalPoly(p.g, mem.Index)
		}
		if f.IsZero() || (ped && g.IsZero()) {
			goto draw // probability about n/r
		}
		box, err := wire.Seal(mem.SealKey, p.sealContext(p.dealer, mem.Index), sharePayload(f, g))
		if err != nil {
			return nil, fmt.Errorf("dkg: sealing to DTA %d: %w", mem.Index, err)
		}
		m.Sealed = append(m.Sealed, Sealed{To: mem.Index, Box: box})
	}
	m.sign(p.key)
	return m, nil
}

// Complain opens and checks this member's share in every well-formed deal, and
// complains about the dealers whose share does not open or does not verify.
func (p *Participant) Complain(msgs []*Message) (*Message, error) {
	if p.member == 0 {
		return nil, nil
	}
	b, err := newBoard(p.s, msgs)
	if err != nil {
		return nil, err
	}
	m := p.newMessage(KindComplaint, p.member)
	k := slices.IndexFunc(p.s.Members, func(m Member) bool { return m.Index == p.member })
	for _, d := range p.s.dealers() {
		deal := b.get(KindDeal, d.Index)
		if deal == nil || len(deal.Sealed) != len(p.s.Members) || len(deal.Points) != p.s.Threshold || deal.Sealed[k].To != p.member {
			continue // excluded by everyone anyway
		}
		pt, err := wire.Open(p.seal, p.sealContext(d.Index, p.member), deal.Sealed[k].Box)
		var f, g *pairing.Scalar
		if err == nil {
			f, g, err = decodeSharePayload(pt, p.s.pedersen())
		}
		if err == nil && shareOK(deal.Points, p.member, f, g, p.s.pedersen()) {
			p.got[d.Index] = Pair{Index: d.Index, F: f, G: g}
		} else {
			m.Indices = append(m.Indices, d.Index)
		}
	}
	m.sign(p.key)
	return m, nil
}

// Answer reveals the shares that members complained about. A dealer with t or more
// complaints does not answer (t revealed shares would reveal its polynomial, in a
// resharing its old share): it is excluded.
func (p *Participant) Answer(msgs []*Message) (*Message, error) {
	if p.dealer == 0 {
		return nil, nil
	}
	b, err := newBoard(p.s, msgs)
	if err != nil {
		return nil, err
	}
	cs := b.complainers(p.dealer)
	if len(cs) == 0 || len(cs) >= p.s.Threshold {
		return nil, nil
	}
	m := p.newMessage(KindAnswer, p.dealer)
	for _, j := range cs {
		pr := Pair{Index: j, F: evalPoly(p.f, j)}
		if p.s.pedersen() {
			pr.G = evalPoly(p.g, j)
		}
		m.Pairs = append(m.Pairs, pr)
	}
	m.sign(p.key)
	return m, nil
}

// adopt takes the answered shares for this member's complaints and returns QUAL. A
// member that holds no share from a qualified dealer (its complaint is not among the
// messages, so the dealer qualified without answering it) cannot go on: an error.
func (p *Participant) adopt(b *board) ([]uint32, error) {
	qual, err := b.qualify()
	if err != nil {
		return nil, err
	}
	for _, i := range qual {
		if _, ok := p.got[i]; ok || p.member == 0 {
			continue
		}
		if a := b.get(KindAnswer, i); a != nil { // qualified: the answer verified
			for _, pr := range a.Pairs {
				if pr.Index == p.member {
					g := Pair{Index: i, F: new(pairing.Scalar).Set(pr.F)} // copies: Erase must not touch messages
					if pr.G != nil {
						g.G = new(pairing.Scalar).Set(pr.G)
					}
					p.got[i] = g
				}
			}
		}
		if _, ok := p.got[i]; !ok {
			return nil, fmt.Errorf("dkg: DTA %d holds no valid share from qualified dealer %d: its complaint about it is not among the messages", p.member, i)
		}
	}
	return qual, nil
}

// Feldman (key generation) publishes A_ik = a_ik·P1 if this dealer qualified.
func (p *Participant) Feldman(msgs []*Message) (*Message, error) {
	b, err := newBoard(p.s, msgs)
	if err != nil || p.dealer == 0 || !p.s.pedersen() {
		return nil, err
	}
	qual, err := b.qualify()
	if err != nil || !slices.Contains(qual, p.dealer) {
		return nil, err
	}
	m := p.newMessage(KindFeldman, p.dealer)
	for _, a := range p.f {
		m.Points = append(m.Points, pairing.G1Generator().Mul(a).PublicForm())
	}
	m.sign(p.key)
	return m, nil
}

// memberAfterQual reads a round's messages for a member of a key generation once QUAL
// is fixed: the board and QUAL, or a nil board when this participant has nothing to
// send in that round (not a member, a reshare) or on an error.
func (p *Participant) memberAfterQual(msgs []*Message) (*board, []uint32, error) {
	b, err := newBoard(p.s, msgs)
	if err != nil || p.member == 0 || !p.s.pedersen() {
		return nil, nil, err
	}
	qual, err := p.adopt(b)
	if err != nil {
		return nil, nil, err
	}
	return b, qual, nil
}

// Disclose (key generation) reveals this member's share of each qualified dealer whose
// Feldman commitments it contradicts.
func (p *Participant) Disclose(msgs []*Message) (*Message, error) {
	b, qual, err := p.memberAfterQual(msgs)
	if b == nil {
		return nil, err
	}
	m := p.newMessage(KindDisclose, p.member)
	for _, i := range qual {
		f := b.get(KindFeldman, i)
		if f == nil || len(f.Points) != p.s.Threshold {
			continue // reconstructed anyway
		}
		if s := p.got[i]; !shareOK(f.Points, p.member, s.F, nil, false) {
			m.Pairs = append(m.Pairs, s)
		}
	}
	if len(m.Pairs) == 0 {
		return nil, nil
	}
	m.sign(p.key)
	return m, nil
}

// Reveal (key generation) reveals this member's shares of the dealers being
// reconstructed.
func (p *Participant) Reveal(msgs []*Message) (*Message, error) {
	b, qual, err := p.memberAfterQual(msgs)
	if b == nil {
		return nil, err
	}
	recon := b.toReconstruct(qual)
	m := p.newMessage(KindReveal, p.member)
	for _, i := range sortedKeys(recon) {
		if g, ok := p.got[i]; ok {
			m.Pairs = append(m.Pairs, g)
		}
	}
	if len(m.Pairs) == 0 {
		return nil, nil
	}
	m.sign(p.key)
	return m, nil
}

// Finish computes the public result and, for a member, its share s_j = Σ f_i(j) over
// QUAL (Σ λ_i·g_i(j) in a resharing), checked against its commitment C_j. The caller
// stores the share and erases its old one and the seal key.
func (p *Participant) Finish(msgs []*Message) (*Result, *pairing.Scalar, error) {
	b, err := newBoard(p.s, msgs)
	if err != nil {
		return nil, nil, err
	}
	qual, err := p.adopt(b)
	if err != nil {
		return nil, nil, err
	}
	res, err := b.evaluate()
	if err != nil || p.member == 0 {
		return res, nil, err
	}
	var lambda []*pairing.Scalar
	if p.s.Reshare != nil {
		if lambda, err = pairing.LagrangeCoefficients(qual); err != nil {
			return nil, nil, fmt.Errorf("dkg: %w", err)
		}
	}
	share := new(pairing.Scalar)
	for n, i := range qual {
		g, ok := p.got[i]
		if !ok {
			return nil, nil, fmt.Errorf("dkg: DTA %d holds no share from qualified dealer %d", p.member, i)
		}
		term := g.F
		if lambda != nil {
			term = new(pairing.Scalar).Mul(lambda[n], g.F)
		}
		share.Add(share, term)
	}
	k := slices.IndexFunc(p.s.Members, func(m Member) bool { return m.Index == p.member })
	if share.IsZero() || !pairing.G1Generator().Mul(share).Equal(res.Commitments[k]) {
		return nil, nil, fmt.Errorf("dkg: the share of DTA %d does not match its commitment", p.member)
	}
	return res, share, nil
}

// Erase overwrites the participant's secrets (polynomials, received shares, old share)
// with zero. Call it once the session is over and the new share is stored. Go may
// still hold copies elsewhere in memory; this is best effort.
func (p *Participant) Erase() {
	zero := new(pairing.Scalar)
	for _, c := range append(append(p.f, p.g...), p.secret) {
		if c != nil {
			c.Set(zero)
		}
	}
	for _, g := range p.got {
		for _, c := range []*pairing.Scalar{g.F, g.G} {
			if c != nil {
				c.Set(zero)
			}
		}
	}
	p.f, p.g, p.secret, p.got = nil, nil, nil, map[uint32]Pair{}
}
