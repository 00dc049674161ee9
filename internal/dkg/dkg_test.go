package dkg

import (
	"crypto/ed25519"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/pairing"
)

type node struct {
	key  ed25519.PrivateKey
	seal []byte
	m    Member
}

func newNodes(t testing.TB, rng io.Reader, indices ...uint32) []node {
	var out []node
	for _, i := range indices {
		seed := make([]byte, 32)
		io.ReadFull(rng, seed)
		key := ed25519.NewKeyFromSeed(seed)
		pub, priv, err := wire.NewSealKey()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, node{key: key, seal: priv, m: Member{Index: i, SigningKey: key.Public().(ed25519.PublicKey), SealKey: pub}})
	}
	return out
}

func members(ns []node) []Member {
	var out []Member
	for _, n := range ns {
		out = append(out, n.m)
	}
	return out
}

// hooks let a test corrupt a participant's message of a kind.
type hooks map[uint32]func(k Kind, m *Message, key ed25519.PrivateKey) []*Message

// run plays every round in process and returns the shares by member index.
func run(t testing.TB, s *Session, nodes []node, old map[uint32]*pairing.Scalar, rng io.Reader, h hooks) (*Result, map[uint32]*pairing.Scalar, []*Message, error) {
	var ps []*Participant
	var pIdx []uint32
	seen := map[string]bool{}
	for k, n := range nodes {
		if seen[string(n.key)] {
			continue
		}
		seen[string(n.key)] = true
		seal := n.seal // a DTA in both committees receives with its new seal key
		for _, o := range nodes[k+1:] {
			if string(o.key) == string(n.key) {
				seal = o.seal
			}
		}
		p, err := NewParticipant(s, n.key, seal, old[n.m.Index])
		if err != nil {
			t.Fatal(err)
		}
		ps, pIdx = append(ps, p), append(pIdx, n.m.Index)
	}
	var msgs []*Message
	round := func(k Kind, f func(p *Participant, msgs []*Message) (*Message, error)) error {
		var out []*Message
		for n, p := range ps {
			m, err := f(p, msgs)
			if err != nil {
				return err
			}
			if m == nil {
				continue
			}
			if hk := h[pIdx[n]]; hk != nil {
				out = append(out, hk(k, m, p.key)...)
			} else {
				out = append(out, m)
			}
		}
		msgs = append(msgs, out...)
		return nil
	}
	steps := []struct {
		k Kind
		f func(p *Participant, msgs []*Message) (*Message, error)
	}{
		{KindDeal, func(p *Participant, _ []*Message) (*Message, error) { return p.Deal(rng) }},
		{KindComplaint, (*Participant).Complain},
		{KindAnswer, (*Participant).Answer},
		{KindFeldman, (*Participant).Feldman},
		{KindDisclose, (*Participant).Disclose},
		{KindReveal, (*Participant).Reveal},
	}
	for _, st := range steps {
		if err := round(st.k, st.f); err != nil {
			return nil, nil, msgs, err
		}
	}
	shares := map[uint32]*pairing.Scalar{}
	var res *Result
	for n, p := range ps {
		r, sh, err := p.Finish(msgs)
		if err != nil {
			return nil, nil, msgs, err
		}
		if sh != nil {
			shares[p.member] = sh
		}
		res = r
		_ = n
	}
	for _, p := range ps {
		p.Erase() // must leave the public messages intact (TestTranscript verifies them after)
	}
	return res, shares, msgs, nil
}

func newSession(nodes []node, tt int) *Session {
	return &Session{Domain: "example.org", Epoch: 1, Threshold: tt, Members: members(nodes)}
}

func combine(t testing.TB, shares map[uint32]*pairing.Scalar, idx ...uint32) *pairing.G1 {
	l, err := pairing.LagrangeCoefficients(idx)
	if err != nil {
		t.Fatal(err)
	}
	s := new(pairing.Scalar)
	for n, i := range idx {
		s.Add(s, new(pairing.Scalar).Mul(l[n], shares[i]))
	}
	return pairing.G1Generator().Mul(s)
}

func testRNG(seed string) *rand.ChaCha8 {
	var s [32]byte
	copy(s[:], seed)
	return rand.NewChaCha8(s)
}

func checkAll(t *testing.T, res *Result, shares map[uint32]*pairing.Scalar, s *Session) {
	t.Helper()
	var idx []uint32
	for k, m := range s.Members {
		if sh, ok := shares[m.Index]; ok {
			idx = append(idx, m.Index)
			if !pairing.G1Generator().Mul(sh).Equal(res.Commitments[k]) {
				t.Fatalf("C_%d does not match the share", m.Index)
			}
		}
	}
	// Every t-subset (contiguous windows and a spread one) combines to the key.
	tt := s.Threshold
	for start := 0; start+tt <= len(idx); start++ {
		if !combine(t, shares, idx[start:start+tt]...).Equal(res.PublicKey) {
			t.Fatalf("shares %v do not combine to the public key", idx[start:start+tt])
		}
	}
}

func TestDKG3of5(t *testing.T) {
	rng := testRNG("dkg 3 of 5")
	nodes := newNodes(t, rng, 1, 2, 3, 4, 5)
	s := newSession(nodes, 3)
	res, shares, msgs, err := run(t, s, nodes, nil, rng, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Qualified) != 5 || len(res.Faults) != 0 || len(shares) != 5 {
		t.Fatalf("qual %v faults %v", res.Qualified, res.Faults)
	}
	checkAll(t, res, shares, s)
	if !combine(t, shares, 1, 3, 5).Equal(res.PublicKey) || !combine(t, shares, 2, 4, 5).Equal(res.PublicKey) {
		t.Fatal("shares do not combine")
	}
	// Two colluding members (below t) do not get the key.
	if combine(t, shares, 1, 2).Equal(res.PublicKey) || pairing.G1Generator().Mul(new(pairing.Scalar).Add(shares[1], shares[2])).Equal(res.PublicKey) {
		t.Fatal("two shares give the key")
	}
	_ = msgs
}

// badShareTo replaces the sealed share to member `to` with a sealed wrong share.
func badShareTo(s *Session, nodes []node, to uint32) func(Kind, *Message, ed25519.PrivateKey) []*Message {
	return func(k Kind, m *Message, key ed25519.PrivateKey) []*Message {
		if k != KindDeal {
			return []*Message{m}
		}
		id, _ := s.ID()
		p := &Participant{s: s, id: id}
		for n, sd := range m.Sealed {
			if sd.To == to {
				box, _ := wire.Seal(nodes[n].m.SealKey, p.sealContext(m.From, to), sharePayload(pairing.NewScalar(7), pairing.NewScalar(8)))
				m.Sealed[n].Box = box
			}
		}
		m.sign(key)
		return []*Message{m}
	}
}

func TestBadShareAnsweredStaysQualified(t *testing.T) {
	// The dealer sends a bad share, then answers the complaint with the right one: it stays.
	rng := testRNG("bad share answered")
	nodes := newNodes(t, rng, 1, 2, 3, 4, 5)
	s := newSession(nodes, 3)
	res, shares, _, err := run(t, s, nodes, nil, rng, hooks{2: badShareTo(s, nodes, 4)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Qualified) != 5 {
		t.Fatalf("qual %v", res.Qualified)
	}
	checkAll(t, res, shares, s)
}

func TestBadAnswerExcluded(t *testing.T) {
	rng := testRNG("bad answer")
	nodes := newNodes(t, rng, 1, 2, 3, 4, 5)
	s := newSession(nodes, 3)
	h := badShareTo(s, nodes, 4)
	res, shares, _, err := run(t, s, nodes, nil, rng, hooks{2: func(k Kind, m *Message, key ed25519.PrivateKey) []*Message {
		if k == KindAnswer {
			m.Pairs[0].F = pairing.NewScalar(9)
			m.sign(key)
			return []*Message{m}
		}
		return h(k, m, key)
	}})
	if err != nil {
		t.Fatal(err)
	}
	wantExcluded(t, res, 2, "answer to the complaint of DTA 4 does not verify")
	checkAll(t, res, shares, s)
}

func TestBadShareUnansweredExcluded(t *testing.T) {
	rng := testRNG("bad share unanswered")
	nodes := newNodes(t, rng, 1, 2, 3, 4, 5)
	s := newSession(nodes, 3)
	h := badShareTo(s, nodes, 3)
	res, shares, _, err := run(t, s, nodes, nil, rng, hooks{5: func(k Kind, m *Message, key ed25519.PrivateKey) []*Message {
		if k == KindAnswer {
			return nil
		}
		return h(k, m, key)
	}})
	if err != nil {
		t.Fatal(err)
	}
	wantExcluded(t, res, 5, "did not answer the complaint of DTA 3")
	checkAll(t, res, shares, s)
}

func wantExcluded(t *testing.T, res *Result, dta uint32, reason string) {
	t.Helper()
	for _, q := range res.Qualified {
		if q == dta {
			t.Fatalf("DTA %d qualified: %v", dta, res.Faults)
		}
	}
	for _, f := range res.Faults {
		if f.DTA == dta && f.Excluded && strings.Contains(f.Reason, reason) {
			return
		}
	}
	t.Fatalf("DTA %d not excluded for %q: %v", dta, reason, res.Faults)
}

func TestEquivocatingDealerExcluded(t *testing.T) {
	rng := testRNG("equivocation")
	nodes := newNodes(t, rng, 1, 2, 3, 4, 5)
	s := newSession(nodes, 3)
	res, shares, _, err := run(t, s, nodes, nil, rng, hooks{1: func(k Kind, m *Message, key ed25519.PrivateKey) []*Message {
		if k != KindDeal {
			return []*Message{m}
		}
		m2 := *m
		m2.Points = append([]*pairing.G1(nil), m.Points...)
		m2.Points[1] = m2.Points[1].Add(pairing.G1Generator())
		m2.sign(key)
		return []*Message{m, &m2}
	}})
	if err != nil {
		t.Fatal(err)
	}
	wantExcluded(t, res, 1, "equivocation")
	checkAll(t, res, shares, s)
}

func TestInconsistentFeldmanReconstructed(t *testing.T) {
	rng := testRNG("feldman")
	nodes := newNodes(t, rng, 1, 2, 3, 4, 5)
	s := newSession(nodes, 3)
	res, shares, _, err := run(t, s, nodes, nil, rng, hooks{3: func(k Kind, m *Message, key ed25519.PrivateKey) []*Message {
		if k == KindFeldman {
			m.Points[0] = m.Points[0].Add(pairing.G1Generator()) // shift its contribution to the key
			m.sign(key)
		}
		return []*Message{m}
	}})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range res.Faults {
		found = found || (f.DTA == 3 && !f.Excluded && strings.Contains(f.Reason, "reconstructed"))
	}
	if !found || len(res.Qualified) != 5 {
		t.Fatalf("faults %v qual %v", res.Faults, res.Qualified)
	}
	checkAll(t, res, shares, s) // the key is Σ of the true f_i(0): the shift had no effect
}

func TestTooFewHonest(t *testing.T) {
	rng := testRNG("too few")
	nodes := newNodes(t, rng, 1, 2, 3, 4, 5)
	s := newSession(nodes, 3)
	silent := func(k Kind, m *Message, key ed25519.PrivateKey) []*Message {
		if k == KindDeal {
			return nil
		}
		return []*Message{m}
	}
	_, _, _, err := run(t, s, nodes, nil, rng, hooks{2: silent, 3: silent, 4: silent})
	var tf *TooFewError
	if !errors.As(err, &tf) || tf.Qualified != 2 || !strings.Contains(err.Error(), "DTA 2") || !strings.Contains(err.Error(), "DTA 4 (dealer: sent no deal)") {
		t.Fatalf("err = %v", err)
	}
	t.Log(err)
}

func reshare(t *testing.T, rng io.Reader, old []node, s0 *Session, res0 *Result, shares0 map[uint32]*pairing.Scalar, newNodes []node, tt int) (*Session, *Result, map[uint32]*pairing.Scalar) {
	s := &Session{Domain: "example.org", Epoch: 2, Threshold: tt, Members: members(newNodes),
		Reshare: &Reshare{Threshold: s0.Threshold, Dealers: members(old), Commitments: res0.Commitments, PublicKey: res0.PublicKey}}
	all := append(append([]node(nil), old...), newNodes...)
	res, shares, _, err := run(t, s, all, shares0, rng, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res.PublicKey.Equal(res0.PublicKey) {
		t.Fatal("resharing changed the public key")
	}
	checkAll(t, res, shares, s)
	return s, res, shares
}

func TestReshare(t *testing.T) {
	rng := testRNG("reshare")
	nodes := newNodes(t, rng, 1, 2, 3, 4, 5)
	s0 := newSession(nodes, 3)
	res0, shares0, _, err := run(t, s0, nodes, nil, rng, nil)
	if err != nil {
		t.Fatal(err)
	}
	// 3-of-5 → 3-of-4: DTA 5 retires, with fresh seal keys (new session).
	next := newNodes(t, rng, 1, 2, 3, 4)
	for k := range next {
		next[k].key, next[k].m.SigningKey = nodes[k].key, nodes[k].m.SigningKey
	}
	_, _, shares1 := reshare(t, rng, nodes, s0, res0, shares0, next, 3)
	// A mix of old and new shares does not combine.
	mixed := map[uint32]*pairing.Scalar{1: shares0[1], 2: shares1[2], 3: shares1[3]}
	if combine(t, mixed, 1, 2, 3).Equal(res0.PublicKey) {
		t.Fatal("old and new shares combine")
	}
	// 3-of-5 → fresh 3-of-5.
	fresh := newNodes(t, rng, 1, 2, 3, 4, 5)
	for k := range fresh {
		fresh[k].key, fresh[k].m.SigningKey = nodes[k].key, nodes[k].m.SigningKey
	}
	_, _, shares2 := reshare(t, rng, nodes, s0, res0, shares0, fresh, 3)
	for i := uint32(1); i <= 5; i++ {
		if shares2[i].Equal(shares0[i]) {
			t.Fatalf("share %d unchanged", i)
		}
	}
}

func TestTComplaintsExcluded(t *testing.T) {
	// t members complain about dealer 1 (falsely): an honest dealer must not answer t
	// complaints, so it is excluded, and its shares stay secret.
	rng := testRNG("t complaints")
	nodes := newNodes(t, rng, 1, 2, 3, 4, 5)
	s := newSession(nodes, 3)
	complain := func(k Kind, m *Message, key ed25519.PrivateKey) []*Message {
		if k == KindComplaint {
			m.Indices = []uint32{1}
			m.sign(key)
		}
		return []*Message{m}
	}
	res, shares, msgs, err := run(t, s, nodes, nil, rng, hooks{2: complain, 3: complain, 4: complain})
	if err != nil {
		t.Fatal(err)
	}
	wantExcluded(t, res, 1, "3 complaints")
	for _, m := range msgs {
		if m.Kind == KindAnswer && m.From == 1 {
			t.Fatal("dealer 1 answered t complaints")
		}
	}
	checkAll(t, res, shares, s)
}

func TestReshareBadDealerAndNewMember(t *testing.T) {
	rng := testRNG("reshare bad dealer")
	nodes := newNodes(t, rng, 1, 2, 3, 4, 5)
	s0 := newSession(nodes, 3)
	res0, shares0, _, err := run(t, s0, nodes, nil, rng, nil)
	if err != nil {
		t.Fatal(err)
	}
	// New committee: 2, 3, 4 keep their keys under new indices 1..3, plus a new DTA 4.
	next := newNodes(t, rng, 1, 2, 3, 4)
	for k := range 3 {
		next[k].key, next[k].m.SigningKey = nodes[k+1].key, nodes[k+1].m.SigningKey
	}
	s := &Session{Domain: "example.org", Epoch: 2, Threshold: 3, Members: members(next),
		Reshare: &Reshare{Threshold: 3, Dealers: members(nodes), Commitments: res0.Commitments, PublicKey: res0.PublicKey}}
	// Old DTA 5 deals a different secret (it re-signs a deal of a fresh polynomial).
	lie := func(k Kind, m *Message, key ed25519.PrivateKey) []*Message {
		if k == KindDeal {
			m.Points[0] = m.Points[0].Add(pairing.G1Generator())
			m.sign(key)
		}
		return []*Message{m}
	}
	all := append(append([]node(nil), nodes...), next...)
	res, shares, _, err := run(t, s, all, shares0, rng, hooks{5: lie})
	if err != nil {
		t.Fatal(err)
	}
	wantExcluded(t, res, 5, "A_i0 ≠ C_i")
	if !res.PublicKey.Equal(res0.PublicKey) || len(res.Qualified) != 4 {
		t.Fatalf("qual %v", res.Qualified)
	}
	checkAll(t, res, shares, s)
	if !combine(t, shares, 1, 2, 4).Equal(res0.PublicKey) {
		t.Fatal("new member's share does not combine")
	}
	// Fewer than the old threshold of old DTAs dealing: a clean error naming them.
	silent := func(k Kind, m *Message, key ed25519.PrivateKey) []*Message { return nil }
	_, _, _, err = run(t, s, all, shares0, rng, hooks{1: silent, 2: silent, 5: lie})
	var tf *TooFewError
	if !errors.As(err, &tf) || tf.Need != 3 {
		t.Fatalf("err = %v", err)
	}
}

// A member whose complaint is not among the messages (lost on the way) holds no share
// from the dealer it complained about, which qualifies without answering it: the member
// must fail with an error naming that dealer, not panic.
func TestLostComplaint(t *testing.T) {
	drop := func(k Kind, m *Message, key ed25519.PrivateKey) []*Message {
		if k == KindComplaint {
			return nil
		}
		return []*Message{m}
	}
	both := func(f, g func(Kind, *Message, ed25519.PrivateKey) []*Message) func(Kind, *Message, ed25519.PrivateKey) []*Message {
		return func(k Kind, m *Message, key ed25519.PrivateKey) []*Message {
			var out []*Message
			for _, m := range f(k, m, key) {
				out = append(out, g(k, m, key)...)
			}
			return out
		}
	}
	rng := testRNG("lost complaint")
	nodes := newNodes(t, rng, 1, 2, 3, 4, 5)
	s0 := newSession(nodes, 3)
	res0, shares0, _, err := run(t, s0, nodes, nil, rng, nil)
	if err != nil {
		t.Fatal(err)
	}
	next := newNodes(t, rng, 1, 2, 3, 4, 5)
	for k := range next {
		next[k].key, next[k].m.SigningKey = nodes[k].key, nodes[k].m.SigningKey
	}
	rs := &Session{Domain: "example.org", Epoch: 2, Threshold: 3, Members: members(next),
		Reshare: &Reshare{Threshold: 3, Dealers: members(nodes), Commitments: res0.Commitments, PublicKey: res0.PublicKey}}
	for _, tc := range []struct {
		name  string
		s     *Session
		nodes []node
		old   map[uint32]*pairing.Scalar
		h     hooks
	}{
		{"fail/no answer at all", s0, nodes, nil, hooks{1: badShareTo(s0, nodes, 3), 3: drop}},
		{"fail/an answer to another member only", s0, nodes, nil, hooks{1: both(badShareTo(s0, nodes, 2), badShareTo(s0, nodes, 3)), 3: drop}},
		{"fail/reshare", rs, append(append([]node(nil), nodes...), next...), shares0, hooks{1: badShareTo(rs, next, 3), 3: drop}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, _, err := run(t, tc.s, tc.nodes, tc.old, testRNG(tc.name), tc.h)
			if err == nil || !strings.Contains(err.Error(), "DTA 3 holds no valid share from qualified dealer 1") {
				t.Fatalf("err = %v", err)
			}
		})
	}
}
