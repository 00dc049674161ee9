package dkg

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/polyroot/polyroot/pairing"
)

// A Fault names a DTA that misbehaved, as everyone with the transcript sees it. An
// excluded dealer is left out of QUAL; a dealer that is named but not excluded had its
// contribution reconstructed in public; a member's fault means that some of its
// messages were ignored.
type Fault struct {
	DTA      uint32
	Role     string // "dealer" or "member"
	Reason   string
	Excluded bool
}

func (f Fault) String() string { return fmt.Sprintf("DTA %d (%s: %s)", f.DTA, f.Role, f.Reason) }

// A Result is the public outcome of a session, the same for everyone with the same
// messages: the qualified dealers, the faults, the public key s·P1 and each member's
// public commitment C_j = s_j·P1 (Commitments[k] belongs to Session.Members[k]).
type Result struct {
	Qualified   []uint32
	Faults      []Fault
	PublicKey   *pairing.G1
	Commitments []*pairing.G1
}

// TooFewError reports a session that cannot complete because fewer than the needed
// number of dealers qualified; Excluded names them and why.
type TooFewError struct {
	Qualified, Need int
	Excluded        []Fault
}

func (e *TooFewError) Error() string {
	var names []string
	for _, f := range e.Excluded {
		names = append(names, f.String())
	}
	return fmt.Sprintf("dkg: only %d qualified dealers, need %d; excluded: %s", e.Qualified, e.Need, strings.Join(names, ", "))
}

// A board is the public state: the messages, at most one per kind and sender, with
// equivocating senders marked.
type board struct {
	s      *Session
	msgs   map[Kind]map[uint32]*Message
	equivo map[Kind]map[uint32]bool
	faults []Fault
	qual   []uint32 // cached by qualify, which adds faults only once
	qerr   error
	qdone  bool
}

// newBoard checks every message (session, sender, signature, shape) and files it. A
// message that fails these checks is an error: it must never have been accepted.
func newBoard(s *Session, msgs []*Message) (*board, error) {
	id, err := s.ID()
	if err != nil {
		return nil, err
	}
	b := &board{s: s, msgs: map[Kind]map[uint32]*Message{}, equivo: map[Kind]map[uint32]bool{}}
	for _, m := range msgs {
		if err := s.Accept(m, id); err != nil {
			return nil, err
		}
		if b.msgs[m.Kind] == nil {
			b.msgs[m.Kind], b.equivo[m.Kind] = map[uint32]*Message{}, map[uint32]bool{}
		}
		old := b.msgs[m.Kind][m.From]
		if old != nil && !bytes.Equal(old.Bytes(), m.Bytes()) {
			b.equivo[m.Kind][m.From] = true
		}
		b.msgs[m.Kind][m.From] = m
	}
	for k := KindDeal; k <= KindReveal; k++ {
		for _, from := range sortedKeys(b.equivo[k]) {
			role := "member"
			if k.fromDealer() {
				role = "dealer"
			}
			if role == "member" || k == KindAnswer && len(b.complainers(from)) == 0 {
				b.faults = append(b.faults, Fault{DTA: from, Role: role, Reason: fmt.Sprintf("equivocation: two different %s messages, both ignored", k)})
			}
		}
	}
	return b, nil
}

// Accept checks that m belongs to the session with ID id, comes from a participant
// allowed to send its kind and carries that participant's signature. The wiring calls
// it on every message it receives, before storing or relaying it; on an encoding,
// DecodeAccepted does the same checks without decoding a point of an unsigned one.
func (s *Session) Accept(m *Message, id [32]byte) error {
	if err := s.checkSender(m.Session, id, m.Kind, m.From); err != nil {
		return err
	}
	if err := m.checkShape(); err != nil {
		return err
	}
	return s.checkSignature(m.Kind, m.From, m.body(), m.Signature)
}

// DecodeAccepted decodes an encoded message that Accept would accept, cheapest checks
// first: it reads the fixed header (session, kind, sender), checks that the session is
// id and the sender may send that kind, and verifies the sender's signature over the
// encoding before it decodes a point or a scalar (DecodeMessage, strict). A message of
// another session is an ErrOtherSession, one that does not decode an ErrMessage.
func (s *Session) DecodeAccepted(b []byte, id [32]byte) (*Message, error) {
	r := &reader{b: b}
	if string(r.take(len(magic))) != magic {
		r.fail("bad magic")
	}
	var session [32]byte
	copy(session[:], r.take(32))
	kind, from := Kind(r.u8()), r.u32()
	if r.err == nil && len(r.b) < ed25519.SignatureSize {
		r.fail("truncated")
	}
	if r.err == nil && (kind < KindDeal || kind > KindReveal || from == 0) {
		r.fail("kind %d from %d", kind, from)
	}
	if r.err != nil {
		return nil, r.err
	}
	if err := s.checkSender(session, id, kind, from); err != nil {
		return nil, err
	}
	// The encoding is canonical (DecodeMessage checks it below), so the bytes before
	// the signature are the body Accept would re-encode and verify.
	n := len(b) - ed25519.SignatureSize
	if err := s.checkSignature(kind, from, b[:n], b[n:]); err != nil {
		return nil, err
	}
	return DecodeMessage(b)
}

// ErrOtherSession reports a message that belongs to another session.
var ErrOtherSession = errors.New("dkg: a message of another session")

// checkSender checks that a message of kind k from sender from in session sid belongs
// to the session with ID id, and that from may send k.
func (s *Session) checkSender(sid, id [32]byte, k Kind, from uint32) error {
	if sid != id {
		return fmt.Errorf("%w: %s from DTA %d", ErrOtherSession, k, from)
	}
	if !s.pedersen() && k > KindAnswer {
		return fmt.Errorf("dkg: %s from DTA %d has no place in a resharing", k, from)
	}
	if _, ok := s.sender(k, from); !ok {
		return fmt.Errorf("dkg: %s from DTA %d, who may not send it", k, from)
	}
	return nil
}

// sender returns the participant that may send kind k as DTA from.
func (s *Session) sender(k Kind, from uint32) (Member, bool) {
	senders := s.Members
	if k.fromDealer() {
		senders = s.dealers()
	}
	return find(senders, from)
}

// checkSignature verifies sig, by the sender of kind k as DTA from, over a message's
// body (its encoding without the signature).
func (s *Session) checkSignature(k Kind, from uint32, body, sig []byte) error {
	who, ok := s.sender(k, from)
	if !ok {
		return fmt.Errorf("dkg: %s from DTA %d, who may not send it", k, from)
	}
	return verifyBody(who.SigningKey, k, from, body, sig)
}

func sortedKeys[V any](m map[uint32]V) []uint32 {
	var ks []uint32
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// get returns the message of kind k from sender, nil if none or if it equivocated.
func (b *board) get(k Kind, from uint32) *Message {
	if b.equivo[k][from] {
		return nil
	}
	return b.msgs[k][from]
}

// complainers returns the members, in order, that complained about dealer i.
func (b *board) complainers(i uint32) []uint32 {
	var out []uint32
	for _, m := range b.s.Members {
		if c := b.get(KindComplaint, m.Index); c != nil && slices.Contains(c.Indices, i) {
			out = append(out, m.Index)
		}
	}
	return out
}

// dealProblem returns why dealer i is excluded from QUAL, or "".
func (b *board) dealProblem(i uint32) string {
	s, t := b.s, b.s.Threshold
	if b.equivo[KindDeal][i] {
		return "equivocation: two different deals"
	}
	d := b.get(KindDeal, i)
	if d == nil {
		return "sent no deal"
	}
	if len(d.Points) != t {
		return fmt.Sprintf("deal commits to %d coefficients, want %d", len(d.Points), t)
	}
	if len(d.Sealed) != len(s.Members) {
		return "deal does not hold one sealed share for each member"
	}
	for k, m := range s.Members {
		if d.Sealed[k].To != m.Index {
			return "deal does not hold one sealed share for each member"
		}
	}
	if r := s.Reshare; r != nil {
		k := slices.IndexFunc(r.Dealers, func(m Member) bool { return m.Index == i })
		if !d.Points[0].Equal(r.Commitments[k]) {
			return "deal does not reshare the dealer's share: A_i0 ≠ C_i"
		}
	}
	cs := b.complainers(i)
	if len(cs) >= t {
		return fmt.Sprintf("%d complaints, at least t = %d", len(cs), t)
	}
	if len(cs) == 0 {
		return ""
	}
	if b.equivo[KindAnswer][i] {
		return "equivocation: two different answers"
	}
	a := b.get(KindAnswer, i)
	for _, j := range cs {
		var p *Pair
		if a != nil {
			if k := slices.IndexFunc(a.Pairs, func(p Pair) bool { return p.Index == j }); k >= 0 {
				p = &a.Pairs[k]
			}
		}
		if p == nil {
			return fmt.Sprintf("did not answer the complaint of DTA %d", j)
		}
		if !shareOK(d.Points, j, p.F, p.G, s.pedersen()) {
			return fmt.Sprintf("answer to the complaint of DTA %d does not verify", j)
		}
	}
	return ""
}

// qualify returns QUAL after the complaint round, and adds the excluded dealers to the
// faults.
func (b *board) qualify() ([]uint32, error) {
	if !b.qdone {
		b.qual, b.qerr = b.qualifyOnce()
		b.qdone = true
	}
	return b.qual, b.qerr
}

func (b *board) qualifyOnce() ([]uint32, error) {
	var qual []uint32
	var excluded []Fault
	for _, d := range b.s.dealers() {
		if why := b.dealProblem(d.Index); why != "" {
			excluded = append(excluded, Fault{DTA: d.Index, Role: "dealer", Reason: why, Excluded: true})
		} else {
			qual = append(qual, d.Index)
		}
	}
	b.faults = append(b.faults, excluded...)
	if len(qual) < b.s.need() {
		return nil, &TooFewError{Qualified: len(qual), Need: b.s.need(), Excluded: excluded}
	}
	return qual, nil
}

// toReconstruct returns the qualified dealers whose Feldman commitments are missing,
// malformed or contradicted by a member's disclosed share, with the reason, and adds
// the members whose disclosures are false to the faults.
func (b *board) toReconstruct(qual []uint32) map[uint32]string {
	out := map[uint32]string{}
	for _, i := range qual {
		f := b.get(KindFeldman, i)
		switch {
		case b.equivo[KindFeldman][i]:
			out[i] = "equivocation: two different Feldman commitments"
		case f == nil:
			out[i] = "sent no Feldman commitments"
		case len(f.Points) != b.s.Threshold:
			out[i] = fmt.Sprintf("Feldman commitments to %d coefficients, want %d", len(f.Points), b.s.Threshold)
		}
	}
	for _, m := range b.s.Members {
		d := b.get(KindDisclose, m.Index)
		if d == nil {
			continue
		}
		for _, p := range d.Pairs {
			if !slices.Contains(qual, p.Index) || out[p.Index] != "" {
				continue
			}
			if !shareOK(b.get(KindDeal, p.Index).Points, m.Index, p.F, p.G, true) {
				b.faults = append(b.faults, Fault{DTA: m.Index, Role: "member", Reason: fmt.Sprintf("disclosed a share of DTA %d that its deal does not commit to", p.Index)})
			} else if shareOK(b.get(KindFeldman, p.Index).Points, m.Index, p.F, nil, false) {
				b.faults = append(b.faults, Fault{DTA: m.Index, Role: "member", Reason: fmt.Sprintf("disclosed a share of DTA %d that its Feldman commitments match", p.Index)})
			} else {
				out[p.Index] = fmt.Sprintf("Feldman commitments contradict the share of DTA %d", m.Index)
			}
		}
	}
	return out
}

// evaluate computes the result from the board.
func (b *board) evaluate() (*Result, error) {
	qual, err := b.qualify()
	if err != nil {
		return nil, err
	}
	s, t := b.s, b.s.Threshold
	xs := []uint32{0}
	for _, m := range s.Members {
		xs = append(xs, m.Index)
	}
	total := make([]*pairing.G1, t) // Σ over dealers of their commitment polynomials
	add := func(k int, p *pairing.G1) {
		if total[k] == nil {
			total[k] = p
		} else {
			total[k] = total[k].Add(p)
		}
	}
	extra := make([]*pairing.Scalar, len(xs)) // Σ of reconstructed f_i(x), public
	for k := range extra {
		extra[k] = new(pairing.Scalar)
	}
	if s.Reshare != nil {
		lambda, err := pairing.LagrangeCoefficients(qual)
		if err != nil {
			return nil, fmt.Errorf("dkg: %w", err)
		}
		for n, i := range qual {
			for k, a := range b.get(KindDeal, i).Points {
				add(k, a.Mul(lambda[n]))
			}
		}
	} else {
		recon := b.toReconstruct(qual)
		for _, i := range qual {
			if why := recon[i]; why != "" {
				b.faults = append(b.faults, Fault{DTA: i, Role: "dealer", Reason: why + "; its contribution was reconstructed in public"})
				ys, err := b.reconstruct(i, xs)
				if err != nil {
					return nil, err
				}
				for k := range extra {
					extra[k].Add(extra[k], ys[k])
				}
				continue
			}
			for k, a := range b.get(KindFeldman, i).Points {
				add(k, a)
			}
		}
	}
	res := &Result{Qualified: qual, Faults: b.faults}
	for k, x := range xs {
		var c *pairing.G1
		if total[0] != nil {
			c = commitAt(total, x)
		}
		if !extra[k].IsZero() {
			e := pairing.G1Generator().Mul(extra[k])
			if c == nil {
				c = e
			} else {
				c = c.Add(e)
			}
		}
		if c == nil || c.IsIdentity() {
			return nil, fmt.Errorf("dkg: the commitment at %d is the identity", x)
		}
		c = c.PublicForm()
		if k == 0 {
			res.PublicKey = c
		} else {
			res.Commitments = append(res.Commitments, c)
		}
	}
	if r := s.Reshare; r != nil && !res.PublicKey.Equal(r.PublicKey) {
		return nil, fmt.Errorf("dkg: the old commitments do not interpolate to the public key")
	}
	return res, nil
}

// reconstruct interpolates the polynomial f_i of a cheating dealer from the members'
// revealed shares (each checked against its Pedersen commitments) and returns f_i(x)
// for each x in xs. These values become public; the other dealers' keep s secret.
func (b *board) reconstruct(i uint32, xs []uint32) ([]*pairing.Scalar, error) {
	deal := b.get(KindDeal, i)
	var at []uint32
	var ys []*pairing.Scalar
	for _, m := range b.s.Members {
		r := b.get(KindReveal, m.Index)
		if r == nil || len(at) == b.s.Threshold {
			continue
		}
		k := slices.IndexFunc(r.Pairs, func(p Pair) bool { return p.Index == i })
		if k < 0 {
			continue
		}
		if p := r.Pairs[k]; shareOK(deal.Points, m.Index, p.F, p.G, true) {
			at, ys = append(at, m.Index), append(ys, p.F)
		} else {
			b.faults = append(b.faults, Fault{DTA: m.Index, Role: "member", Reason: fmt.Sprintf("revealed a share of DTA %d that its deal does not commit to", i)})
		}
	}
	if len(at) < b.s.Threshold {
		return nil, fmt.Errorf("dkg: cannot reconstruct the contribution of DTA %d: %d valid reveals, need %d", i, len(at), b.s.Threshold)
	}
	out := make([]*pairing.Scalar, len(xs))
	for k, x := range xs {
		l := lagrangeAt(at, x)
		out[k] = new(pairing.Scalar)
		for n := range at {
			out[k].Add(out[k], new(pairing.Scalar).Mul(l[n], ys[n]))
		}
	}
	return out, nil
}

// lagrangeAt returns the Lagrange basis L_n(x) = Π_{m≠n} (x − x_m)/(x_n − x_m) for the
// distinct non-zero public points xs (pairing.LagrangeCoefficients is the case x = 0).
func lagrangeAt(xs []uint32, x uint32) []*pairing.Scalar {
	out := make([]*pairing.Scalar, len(xs))
	for n, xn := range xs {
		num, den := pairing.NewScalar(1), pairing.NewScalar(1)
		for m, xm := range xs {
			if m != n {
				num.Mul(num, new(pairing.Scalar).Sub(pairing.NewScalar(uint64(x)), pairing.NewScalar(uint64(xm))))
				den.Mul(den, new(pairing.Scalar).Sub(pairing.NewScalar(uint64(xn)), pairing.NewScalar(uint64(xm))))
			}
		}
		inv, err := new(pairing.Scalar).InvertVarTime(den)
		if err != nil {
			panic("dkg: repeated interpolation points") // unreachable: member indices are distinct
		}
		out[n] = num.Mul(num, inv)
	}
	return out
}

// commitAt returns Σ_k x^k·points[k] by Horner's rule.
func commitAt(points []*pairing.G1, x uint32) *pairing.G1 {
	X := pairing.NewScalar(uint64(x))
	r := points[len(points)-1]
	for k := len(points) - 2; k >= 0; k-- {
		r = r.Mul(X).Add(points[k])
	}
	return r
}

// shareOK checks a share of a dealer at x against the dealer's commitments: f·P1 + g·H
// with Pedersen commitments, f·P1 with Feldman commitments (g is then ignored).
func shareOK(points []*pairing.G1, x uint32, f, g *pairing.Scalar, pedersen bool) bool {
	if f == nil || f.IsZero() || (pedersen && (g == nil || g.IsZero())) {
		return false
	}
	lhs := pairing.G1Generator().Mul(f)
	if pedersen {
		lhs = lhs.Add(pedersenH.Mul(g))
	}
	return lhs.Equal(commitAt(points, x))
}
