package bench

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/polyroot/polyroot/pairing"
)

// Sizes of the fixture: benchmarks cycle through these many distinct logins.
const (
	numDTAs      = 3
	numClients   = 8
	numTemplates = 256 // the largest batch size
	poolSize     = 64  // sessions prepared per refill for the unbatched benchmarks
)

var testPIN = []byte("1234")

// A world is a domain with numDTAs additive DTAs and enrolled clients.
type world struct {
	domain   pairing.Domain
	masters  []*pairing.Scalar
	commits  []*pairing.G1
	verifier *pairing.Verifier
	now      time.Time
	clients  []*pairing.Client // as loaded from storage: token and permit decoded
}

func newWorld(name string, dtas, clients int) (*world, error) {
	w := &world{
		domain: pairing.Domain{Name: name, PermitPeriod: 86400},
		now:    time.Unix(1_800_000_000, 0),
	}
	var sQ *pairing.G2
	for i := range dtas {
		s, err := pairing.RandomScalar(nil)
		if err != nil {
			return nil, err
		}
		w.masters = append(w.masters, s)
		w.commits = append(w.commits, pairing.G1Generator().Mul(s))
		share := pairing.G2Generator().Mul(s)
		if err := pairing.VerifyServerShare(w.commits[i], share); err != nil {
			return nil, err
		}
		if sQ == nil {
			sQ = share
		} else {
			sQ = sQ.Add(share)
		}
	}
	key, err := pairing.NewServerKey(sQ)
	if err != nil {
		return nil, err
	}
	w.verifier = &pairing.Verifier{Domain: w.domain, Key: key}
	for i := range clients {
		c, err := w.enrol(fmt.Sprintf("user%d@example.com", i), testPIN)
		if err != nil {
			return nil, err
		}
		w.clients = append(w.clients, c)
	}
	return w, nil
}

// enrol issues and checks the client and permit shares of every DTA, combines them and
// extracts the PIN. The client it returns holds its token and permit decoded from their
// encodings, as a client that loads them from storage does.
func (w *world) enrol(id string, pin []byte) (*pairing.Client, error) {
	salt := make([]byte, pairing.SaltSize)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	idh, err := pairing.NewIDHash(w.domain.Name, id, salt)
	if err != nil {
		return nil, err
	}
	slot := w.domain.Slot(w.now)
	a, tk := pairing.IdentityPoint(idh), pairing.PermitPoint(idh, slot, w.domain.PermitPeriod)
	var clientShares, permitShares []pairing.IssuedShare
	var idx []uint32
	var keyParts, permitParts []*pairing.G1
	for i, s := range w.masters {
		index := uint32(i + 1)
		S, proof, err := pairing.IssueShare(nil, s, w.commits[i], a, pairing.ShareContext(w.domain.Name, index, "client", 0))
		if err != nil {
			return nil, err
		}
		P, pproof, err := pairing.IssueShare(nil, s, w.commits[i], tk, pairing.ShareContext(w.domain.Name, index, "permit", slot))
		if err != nil {
			return nil, err
		}
		clientShares = append(clientShares, pairing.IssuedShare{Index: index, Commitment: w.commits[i], Share: S, Proof: proof})
		permitShares = append(permitShares, pairing.IssuedShare{Index: index, Commitment: w.commits[i], Share: P, Proof: pproof})
		idx = append(idx, index)
		keyParts, permitParts = append(keyParts, S), append(permitParts, P)
	}
	if err := pairing.VerifyShares(a, clientShares, func(i uint32) []byte { return pairing.ShareContext(w.domain.Name, i, "client", 0) }); err != nil {
		return nil, err
	}
	if err := pairing.VerifyShares(tk, permitShares, func(i uint32) []byte { return pairing.ShareContext(w.domain.Name, i, "permit", slot) }); err != nil {
		return nil, err
	}
	sA, err := pairing.Combine(pairing.Additive, idx, keyParts)
	if err != nil {
		return nil, err
	}
	permit, err := pairing.Combine(pairing.Additive, idx, permitParts)
	if err != nil {
		return nil, err
	}
	token, err := pairing.DecodeG1(pairing.ExtractPIN(w.domain.Name, idh, sA, pin).Bytes())
	if err != nil {
		return nil, err
	}
	if permit, err = pairing.DecodeG1(permit.Bytes()); err != nil {
		return nil, err
	}
	return &pairing.Client{Domain: w.domain, IDHash: idh, Token: token, Permit: permit, Slot: slot}, nil
}

// A template is one login recorded up to pass 2: the pass 1 as the server decoded it,
// the randomness its challenge was drawn from, and the encoding of the answering pass 2.
// Re-running Verifier.Challenge on pass1 with seed gives a fresh session with the same
// ID, y and P, whose pairing equation pass2 satisfies (Verify, VerifyBatch). Its ML-KEM
// encapsulation is new (crypto/mlkem draws its own randomness), so pass2's tag does not
// match it: what needs the key confirmation (Finish) uses a fresh pool.
type template struct {
	pass1 *pairing.Pass1
	seed  []byte
	pass2 []byte
}

// seedSize is more randomness than Challenge reads (a 48-byte scalar, a session ID, an
// X25519 key).
const seedSize = 256

// record runs a login of c up to pass 2, with every message through its encoding.
func (w *world) record(c *pairing.Client) (*template, error) {
	_, p2, p1, seed, err := w.respond(c)
	if err != nil {
		return nil, err
	}
	b, err := p2.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return &template{pass1: p1, seed: seed, pass2: b}, nil
}

// respond runs a login of c up to pass 2 and returns the client session with pass 2,
// the server's decoded pass 1 and the challenge randomness.
func (w *world) respond(c *pairing.Client) (*pairing.ClientSession, *pairing.Pass2, *pairing.Pass1, []byte, error) {
	cs, ch, p1, seed, err := w.challenge(c)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	p2, err := cs.Respond(ch, nil)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	return cs, p2, p1, seed, nil
}

// challenge starts a login of c and returns the client session, the challenge as the
// client decoded it, the pass 1 as the server decoded it and the challenge randomness.
func (w *world) challenge(c *pairing.Client) (*pairing.ClientSession, *pairing.Challenge, *pairing.Pass1, []byte, error) {
	cs, p1, err := c.Start(nil, testPIN)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	b, err := p1.MarshalBinary()
	if err != nil {
		return nil, nil, nil, nil, err
	}
	sp1 := new(pairing.Pass1)
	if err := sp1.UnmarshalBinary(b); err != nil {
		return nil, nil, nil, nil, err
	}
	seed := make([]byte, seedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, nil, nil, nil, err
	}
	_, ch, err := w.verifier.Challenge(bytes.NewReader(seed), sp1, w.now)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	if b, err = ch.MarshalBinary(); err != nil {
		return nil, nil, nil, nil, err
	}
	cch := new(pairing.Challenge)
	if err := cch.UnmarshalBinary(b); err != nil {
		return nil, nil, nil, nil, err
	}
	return cs, cch, sp1, seed, nil
}

// session returns a fresh server session whose pairing equation t.pass2 satisfies.
func (w *world) session(t *template) (*pairing.ServerSession, error) {
	ss, _, err := w.verifier.Challenge(bytes.NewReader(t.seed), t.pass1, w.now)
	return ss, err
}

// fresh runs a new login of c up to pass 2 and returns the server session with a
// template whose pass2 answers it completely, key confirmation included.
func (w *world) fresh(c *pairing.Client) (*pairing.ServerSession, *template, error) {
	cs, p1, err := c.Start(nil, testPIN)
	if err != nil {
		return nil, nil, err
	}
	ss, ch, err := w.verifier.Challenge(nil, p1, w.now)
	if err != nil {
		return nil, nil, err
	}
	p2, err := cs.Respond(ch, nil)
	if err != nil {
		return nil, nil, err
	}
	b, err := p2.MarshalBinary()
	if err != nil {
		return nil, nil, err
	}
	return ss, &template{pass1: p1, pass2: b}, nil
}

// A fixture is the world and templates that all benchmarks share; it is built once.
type fixture struct {
	*world
	templates []*template // numTemplates distinct logins
}

var (
	fixtureOnce sync.Once
	theFixture  *fixture
	fixtureErr  error
)

func getFixture(tb testing.TB) *fixture {
	tb.Helper()
	fixtureOnce.Do(func() {
		w, err := newWorld("api.example.com", numDTAs, numClients)
		if err != nil {
			fixtureErr = err
			return
		}
		f := &fixture{world: w}
		for i := range numTemplates {
			t, err := w.record(w.clients[i%len(w.clients)])
			if err != nil {
				fixtureErr = err
				return
			}
			f.templates = append(f.templates, t)
		}
		theFixture = f
	})
	if fixtureErr != nil {
		tb.Fatalf("bench setup: %v", fixtureErr)
	}
	return theFixture
}

// A pool hands out fresh server sessions with the pass 2 that answers each, one per
// template, and refills itself with the benchmark timer stopped. A replaying pool
// (newPool) replays the fixture's templates: their pass 2 satisfies the pairing
// equation but not the key confirmation. A fresh pool (newFreshPool) runs new logins
// at each refill, slower but complete.
type pool struct {
	w         *world
	templates []*template
	sessions  []*pairing.ServerSession
	next      int
	fresh     bool
}

func newPool(b *testing.B, f *fixture, size int) *pool {
	b.Helper()
	p := &pool{w: f.world, templates: f.templates[:size], sessions: make([]*pairing.ServerSession, size)}
	p.refill(b)
	return p
}

func newFreshPool(b *testing.B, f *fixture, size int) *pool {
	b.Helper()
	p := &pool{w: f.world, templates: make([]*template, size), sessions: make([]*pairing.ServerSession, size), fresh: true}
	p.refill(b)
	return p
}

func (p *pool) refill(tb testing.TB) {
	tb.Helper()
	if p.fresh {
		for i := range p.sessions {
			ss, t, err := p.w.fresh(p.w.clients[i%len(p.w.clients)])
			if err != nil {
				tb.Fatal(err)
			}
			p.sessions[i], p.templates[i] = ss, t
		}
		p.next = 0
		return
	}
	for i, t := range p.templates {
		ss, err := p.w.session(t)
		if err != nil {
			tb.Fatal(err)
		}
		p.sessions[i] = ss
	}
	p.next = 0
}

// take returns the next n sessions and pass-2 encodings, refilling the pool first
// (timer stopped) if fewer than n are left. n must divide the pool size.
func (p *pool) take(b *testing.B, n int) ([]*pairing.ServerSession, []*template) {
	if p.next+n > len(p.sessions) {
		b.StopTimer()
		p.refill(b)
		b.StartTimer()
	}
	i := p.next
	p.next += n
	return p.sessions[i:p.next], p.templates[i:p.next]
}
