package bench

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/big"
	"sync/atomic"
	"testing"

	bls "github.com/consensys/gnark-crypto/ecc/bls12-381"
	"github.com/consensys/gnark-crypto/ecc/bls12-381/fr"
	"github.com/polyroot/polyroot/internal/testdomain"
	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/pairing"
)

// lines are gnark-crypto's precomputed G2 lines of one point.
type lines = [2][len(bls.LoopCounter) - 1]bls.LineEvaluationAff

// limitSetup returns V, P ∈ G1 and the lines of Q and sQ with e(V, Q)·e(P, sQ) = 1:
// P = r·P1, V = −s·P for random r, s.
func limitSetup(tb testing.TB) (points []bls.G1Affine, linesQ, linesSQ lines) {
	tb.Helper()
	_, _, g1, g2 := bls.Generators()
	var s, r fr.Element
	if _, err := s.SetRandom(); err != nil {
		tb.Fatal(err)
	}
	if _, err := r.SetRandom(); err != nil {
		tb.Fatal(err)
	}
	var sBig, rBig big.Int
	s.BigInt(&sBig)
	r.BigInt(&rBig)
	var sQ bls.G2Affine
	sQ.ScalarMultiplication(&g2, &sBig)
	var p, v bls.G1Affine
	p.ScalarMultiplication(&g1, &rBig)
	v.ScalarMultiplication(&p, &sBig)
	v.Neg(&v)
	return []bls.G1Affine{v, p}, bls.PrecomputeLines(g2), bls.PrecomputeLines(sQ)
}

// BenchmarkLimitPairingCheckFixedQ is the floor of a login check: gnark-crypto's bare
// 2-pairing check with precomputed lines, and the copy of the lines it overwrites.
func BenchmarkLimitPairingCheckFixedQ(b *testing.B) {
	points, linesQ, linesSQ := limitSetup(b)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		// Building the slice copies the arrays: the pristine lines stay untouched.
		ok, err := bls.PairingCheckFixedQ(points, []lines{linesQ, linesSQ})
		if err != nil || !ok {
			b.Fatalf("pairing check failed: %v %v", ok, err)
		}
	}
}

// BenchmarkServerVerify is the unbatched pass-2 check: decoding and Verify.
func BenchmarkServerVerify(b *testing.B) {
	p := newPool(b, getFixture(b), poolSize)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		ss, ts := p.take(b, 1)
		p2 := new(pairing.Pass2)
		if err := p2.UnmarshalBinary(ts[0].pass2); err != nil {
			b.Fatal(err)
		}
		if err := ss[0].Verify(p2); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkServerVerifyAndKey is BenchmarkServerVerify plus the key confirmation.
func BenchmarkServerVerifyAndKey(b *testing.B) {
	p := newFreshPool(b, getFixture(b), poolSize)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		ss, ts := p.take(b, 1)
		p2 := new(pairing.Pass2)
		if err := p2.UnmarshalBinary(ts[0].pass2); err != nil {
			b.Fatal(err)
		}
		fin, key, err := ss[0].Finish(p2, nil)
		if err != nil || fin == nil || len(key) != pairing.SessionKeySize {
			b.Fatalf("Finish: %v", err)
		}
	}
}

// BenchmarkBatchVerify decodes size pass-2 messages and checks them with one call of
// VerifyBatch. The ns/login metric is the cost per login.
func BenchmarkBatchVerify(b *testing.B) {
	for _, size := range []int{1, 8, 64, 256} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			p := newPool(b, getFixture(b), max(poolSize, size))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				ss, ts := p.take(b, size)
				items := make([]pairing.BatchItem, size)
				for j := range items {
					p2 := new(pairing.Pass2)
					if err := p2.UnmarshalBinary(ts[j].pass2); err != nil {
						b.Fatal(err)
					}
					items[j] = pairing.BatchItem{Session: ss[j], Pass2: p2}
				}
				for j, err := range pairing.VerifyBatch(nil, items) {
					if err != nil {
						b.Fatalf("item %d: %v", j, err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size), "ns/login")
		})
	}
}

// BenchmarkClientPass1 is the client's Start: rebuilding SEC from token, PIN and permit,
// and the commitments U and Z.
func BenchmarkClientPass1(b *testing.B) {
	c := getFixture(b).clients[0]
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, _, err := c.Start(nil, testPIN); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkClientPass2 is the client's Respond to a decoded challenge: V, the
// constant-time pairing and the key derivation.
func BenchmarkClientPass2(b *testing.B) {
	f := getFixture(b)
	c := f.clients[0]
	sessions := make([]*pairing.ClientSession, poolSize)
	challenges := make([]*pairing.Challenge, poolSize)
	refill := func() {
		for i := range sessions {
			cs, ch, _, _, err := f.challenge(c)
			if err != nil {
				b.Fatal(err)
			}
			sessions[i], challenges[i] = cs, ch
		}
	}
	refill()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		j := i % poolSize
		if j == 0 && i > 0 {
			b.StopTimer()
			refill()
			b.StartTimer()
		}
		if _, err := sessions[j].Respond(challenges[j], nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIssueClientShare is a DTA's cryptographic work per client share, as the
// protocol defines the share it answers with: A = H1(idhash) for a new identity hash,
// the share s_i·A and its DLEQ proof, and the encoded share and proof sealed with HPKE
// to the ticket's X25519 key (wire.Seal: an ephemeral key, one X25519, the key
// schedule and ChaCha20-Poly1305), as dta.compute does for every share it issues.
func BenchmarkIssueClientShare(b *testing.B) {
	f := getFixture(b)
	b.ReportAllocs()
	b.ResetTimer()
	defer reportProcessCPU(b)()
	// In parallel, like BenchmarkDTAIssueHTTP, so the two compare at any GOMAXPROCS.
	b.RunParallel(func(pb *testing.PB) {
		share, err := newShareCrypto(f)
		if err != nil {
			b.Error(err)
			return
		}
		for pb.Next() {
			if err := share(); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// shareIDs numbers the identity hashes of newShareCrypto's shares across goroutines.
var shareIDs atomic.Uint64

// newShareCrypto returns a function that does the cryptography of one client share
// for a new identity hash (BenchmarkIssueClientShare), for one goroutine.
func newShareCrypto(f *fixture) (func() error, error) {
	s, commitment := f.masters[0], f.commits[0].PublicForm() // the commitment as a DTA keeps it
	ctx := pairing.ShareContext(f.domain.Name, 1, "client", 0)
	sealKey, err := hex.DecodeString(testdomain.SealKey)
	if err != nil {
		return nil, err
	}
	var id pairing.IDHash
	sc := &wire.SealContext{Domain: f.domain.Name, DTA: 1, Kind: "client"}
	if _, err := rand.Read(id[:]); err != nil {
		return nil, err
	}
	if _, err := rand.Read(sc.TicketSHA256[:]); err != nil {
		return nil, err
	}
	return func() error {
		binary.BigEndian.PutUint64(id[pairing.IDHashSize-8:], shareIDs.Add(1))
		a := pairing.IdentityPoint(id)
		share, proof, err := pairing.IssueShare(nil, s, commitment, a, ctx)
		if err != nil {
			return err
		}
		_, err = wire.Seal(sealKey, sc, append(share.Bytes(), proof.Bytes()...))
		return err
	}, nil
}

// BenchmarkLoginInProcess is a whole login, both sides, every message through its
// encoding: the baseline of a login over HTTP.
func BenchmarkLoginInProcess(b *testing.B) {
	f := getFixture(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := f.login(f.clients[i%len(f.clients)]); err != nil {
			b.Fatal(err)
		}
	}
}

// login runs a whole login of c as client and server would over a network.
func (w *world) login(c *pairing.Client) error {
	// Client: pass 1.
	cs, p1, err := c.Start(nil, testPIN)
	if err != nil {
		return err
	}
	msg, err := p1.MarshalBinary()
	if err != nil {
		return err
	}
	// Server: challenge.
	sp1 := new(pairing.Pass1)
	if err := sp1.UnmarshalBinary(msg); err != nil {
		return err
	}
	ss, ch, err := w.verifier.Challenge(nil, sp1, w.now)
	if err != nil {
		return err
	}
	if msg, err = ch.MarshalBinary(); err != nil {
		return err
	}
	// Client: pass 2.
	cch := new(pairing.Challenge)
	if err := cch.UnmarshalBinary(msg); err != nil {
		return err
	}
	p2, err := cs.Respond(cch, nil)
	if err != nil {
		return err
	}
	if msg, err = p2.MarshalBinary(); err != nil {
		return err
	}
	// Server: verify and confirm.
	sp2 := new(pairing.Pass2)
	if err := sp2.UnmarshalBinary(msg); err != nil {
		return err
	}
	fin, serverKey, err := ss.Finish(sp2, nil)
	if err != nil {
		return err
	}
	if msg, err = fin.MarshalBinary(); err != nil {
		return err
	}
	// Client: check the server.
	cfin := new(pairing.Finish)
	if err := cfin.UnmarshalBinary(msg); err != nil {
		return err
	}
	clientKey, err := cs.Finish(cfin)
	if err != nil {
		return err
	}
	if !bytes.Equal(clientKey, serverKey) || len(clientKey) != pairing.SessionKeySize {
		return fmt.Errorf("session keys differ: %x %x", clientKey, serverKey)
	}
	return nil
}

// TestBenchSetup runs the setup of the benchmarks once and checks that what they
// measure succeeds, so that go test ./bench exercises it without timing anything.
func TestBenchSetup(t *testing.T) {
	points, linesQ, linesSQ := limitSetup(t)
	for range 2 { // twice: the pristine lines must survive the first call
		if ok, err := bls.PairingCheckFixedQ(points, []lines{linesQ, linesSQ}); err != nil || !ok {
			t.Fatalf("limit setup: pairing check %v %v", ok, err)
		}
	}

	f := getFixture(t)
	if len(f.templates) != numTemplates {
		t.Fatalf("%d templates, want %d", len(f.templates), numTemplates)
	}
	if err := f.login(f.clients[0]); err != nil {
		t.Fatalf("login: %v", err)
	}

	// A template replays to a fresh session with the same ID, whose pairing equation its
	// pass 2 satisfies; the key confirmation needs a fresh login (the ML-KEM
	// encapsulation differs).
	tmpl := f.templates[0]
	ss1, err := f.session(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	ss2, err := f.session(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	if ss1.ID() != ss2.ID() {
		t.Fatal("replayed challenge gives another session ID")
	}
	for _, ss := range []*pairing.ServerSession{ss1, ss2} {
		p2 := new(pairing.Pass2)
		if err := p2.UnmarshalBinary(tmpl.pass2); err != nil {
			t.Fatal(err)
		}
		if err := ss.Verify(p2); err != nil {
			t.Fatalf("replayed session: %v", err)
		}
	}
	ss, fresh, err := f.fresh(f.clients[0])
	if err != nil {
		t.Fatal(err)
	}
	p2 := new(pairing.Pass2)
	if err := p2.UnmarshalBinary(fresh.pass2); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ss.Finish(p2, nil); err != nil {
		t.Fatalf("fresh session: %v", err)
	}

	// A batch of distinct templates verifies, and a bad item in it is found.
	const size = 8
	var items []pairing.BatchItem
	for _, tmpl := range f.templates[:size] {
		ss, err := f.session(tmpl)
		if err != nil {
			t.Fatal(err)
		}
		p2 := new(pairing.Pass2)
		if err := p2.UnmarshalBinary(tmpl.pass2); err != nil {
			t.Fatal(err)
		}
		items = append(items, pairing.BatchItem{Session: ss, Pass2: p2})
	}
	items[3].Pass2 = &pairing.Pass2{SessionID: items[3].Pass2.SessionID, V: items[4].Pass2.V}
	for j, err := range pairing.VerifyBatch(nil, items) {
		if (j == 3) != (err != nil) {
			t.Errorf("batch item %d: %v", j, err)
		}
	}

	// The client benchmarks' preparation.
	cs, ch, _, _, err := f.challenge(f.clients[1])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.Respond(ch, nil); err != nil {
		t.Fatal(err)
	}
}
