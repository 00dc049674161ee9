//go:build !js

package pairing

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/cloudflare/circl/dh/x25519"
	bls "github.com/consensys/gnark-crypto/ecc/bls12-381"
)

// world is a domain with n additive DTAs and an enrolled client, built for tests.
type world struct {
	domain   Domain
	masters  []*Scalar
	commits  []*G1
	key      *ServerKey
	verifier *Verifier
	now      time.Time
}

func newWorld(t testing.TB, name string, n int) *world {
	t.Helper()
	w := &world{domain: Domain{Name: name, PermitPeriod: 86400}, now: time.Unix(1_799_971_200+60, 0)} // one minute after a slot boundary
	var sQ *G2
	for i := 0; i < n; i++ {
		s, err := RandomScalar(nil)
		if err != nil {
			t.Fatal(err)
		}
		w.masters = append(w.masters, s)
		w.commits = append(w.commits, G1Generator().Mul(s))
		share := G2Generator().Mul(s)
		if err := VerifyServerShare(w.commits[i], share); err != nil {
			t.Fatal(err)
		}
		if sQ == nil {
			sQ = share
		} else {
			sQ = sQ.Add(share)
		}
	}
	key, err := NewServerKey(sQ)
	if err != nil {
		t.Fatal(err)
	}
	w.key = key
	w.verifier = &Verifier{Domain: w.domain, Key: key}
	return w
}

// enrol issues and checks the client and permit shares, and extracts the PIN.
func (w *world) enrol(t testing.TB, id string, pin []byte) *Client {
	t.Helper()
	idh, err := NewIDHash(w.domain.Name, id, make([]byte, SaltSize))
	if err != nil {
		t.Fatal(err)
	}
	slot := w.domain.Slot(w.now)
	a, tk := IdentityPoint(idh), PermitPoint(idh, slot, w.domain.PermitPeriod)
	var clientShares, permitShares []IssuedShare
	var idx []uint32
	var keyParts, permitParts []*G1
	for i, s := range w.masters {
		index := uint32(i + 1)
		S, proof, err := IssueShare(nil, s, w.commits[i], a, ShareContext(w.domain.Name, index, "client", 0))
		if err != nil {
			t.Fatal(err)
		}
		P, pproof, err := IssueShare(nil, s, w.commits[i], tk, ShareContext(w.domain.Name, index, "permit", slot))
		if err != nil {
			t.Fatal(err)
		}
		clientShares = append(clientShares, IssuedShare{index, w.commits[i], S, proof})
		permitShares = append(permitShares, IssuedShare{index, w.commits[i], P, pproof})
		idx = append(idx, index)
		keyParts, permitParts = append(keyParts, S), append(permitParts, P)
	}
	if err := VerifyShares(a, clientShares, func(i uint32) []byte { return ShareContext(w.domain.Name, i, "client", 0) }); err != nil {
		t.Fatal(err)
	}
	if err := VerifyShares(tk, permitShares, func(i uint32) []byte { return ShareContext(w.domain.Name, i, "permit", slot) }); err != nil {
		t.Fatal(err)
	}
	sA, err := Combine(Additive, idx, keyParts)
	if err != nil {
		t.Fatal(err)
	}
	permit, err := Combine(Additive, idx, permitParts)
	if err != nil {
		t.Fatal(err)
	}
	return &Client{Domain: w.domain, IDHash: idh, Token: ExtractPIN(w.domain.Name, idh, sA, pin), Permit: permit, Slot: slot}
}

// inFlight is a login run up to pass 2.
type inFlight struct {
	cs *ClientSession
	p1 *Pass1
	ss *ServerSession
	ch *Challenge
	p2 *Pass2
}

// upToPass2 runs a login of c with pin up to pass 2, failing the test on any error.
func (w *world) upToPass2(t testing.TB, c *Client, pin []byte) inFlight {
	t.Helper()
	var f inFlight
	var err error
	if f.cs, f.p1, err = c.Start(nil, pin); err != nil {
		t.Fatal(err)
	}
	if f.ss, f.ch, err = w.verifier.Challenge(nil, f.p1, w.now); err != nil {
		t.Fatal(err)
	}
	if f.p2, err = f.cs.Respond(f.ch, nil); err != nil {
		t.Fatal(err)
	}
	return f
}

// login runs a whole login and returns both session keys.
func (w *world) login(t testing.TB, c *Client, pin []byte) (clientKey, serverKey []byte, err error) {
	t.Helper()
	f := w.upToPass2(t, c, pin)
	fin, serverKey, err := f.ss.Finish(f.p2, nil)
	if err != nil {
		return nil, nil, err
	}
	clientKey, err = f.cs.Finish(fin)
	return clientKey, serverKey, err
}

func TestLoginRoundTrip(t *testing.T) {
	w := newWorld(t, "api.example.com", 3)
	c := w.enrol(t, "alice@example.com", []byte("1234"))
	ck, sk, err := w.login(t, c, []byte("1234"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ck, sk) || len(ck) != SessionKeySize {
		t.Fatalf("keys differ: %x %x", ck, sk)
	}
	if _, _, err := w.login(t, c, []byte("1235")); !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("wrong PIN: got %v, want ErrAuthFailed", err)
	}
}

// flow is one login with hooks to tamper with each message.
type flow struct {
	pass1     func(*Pass1)
	challenge func(*Challenge)
	pass2     func(*Pass2)
	finish    func(*Finish)
	binding   [2][]byte // client's, server's
}

// run performs the login and returns the first error and which side raised it;
// on success it checks that both sides hold the same key. In every outcome it checks
// that no side ends with a key the other side would also have.
func (w *world) run(t *testing.T, c *Client, pin []byte, f flow) error {
	t.Helper()
	cs, p1, err := c.Start(nil, pin)
	if err != nil {
		return err
	}
	if f.pass1 != nil {
		f.pass1(p1)
	}
	ss, ch, err := w.verifier.Challenge(nil, p1, w.now)
	if err != nil {
		return err
	}
	if f.challenge != nil {
		f.challenge(ch)
	}
	p2, err := cs.Respond(ch, f.binding[0])
	if err != nil {
		return err
	}
	if f.pass2 != nil {
		f.pass2(p2)
	}
	fin, serverKey, err := ss.Finish(p2, f.binding[1])
	if err != nil {
		if serverKey != nil {
			t.Fatal("server returned a key with an error")
		}
		return err
	}
	if f.finish != nil {
		f.finish(fin)
	}
	clientKey, err := cs.Finish(fin)
	if err != nil {
		return err
	}
	if !bytes.Equal(clientKey, serverKey) {
		t.Fatal("both sides accepted but the keys differ")
	}
	return nil
}

func randomG1(t testing.TB) *G1 {
	k, err := RandomScalar(nil)
	if err != nil {
		t.Fatal(err)
	}
	return G1Generator().Mul(k)
}

func TestLoginProperties(t *testing.T) {
	w := newWorld(t, "api.example.com", 3)
	alice := w.enrol(t, "alice@example.com", []byte("1234"))
	bob := w.enrol(t, "bob@example.com", []byte("1234"))
	other := newWorld(t, "api.example.org", 3)
	other.now = w.now
	stranger := other.enrol(t, "alice@example.com", []byte("1234"))

	bobTokenAsAlice := *alice
	bobTokenAsAlice.Token, bobTokenAsAlice.Permit = bob.Token, bob.Permit
	stalePermit := *alice
	stalePermit.Slot-- // the permit is for the current slot, the claim for the previous one
	futureSlot := *alice
	futureSlot.Slot++
	renamedDomain := *alice
	renamedDomain.Domain.Name = "api.example.org"
	noPermit := *alice
	noPermit.Permit = nil

	one := NewScalar(1)
	cases := []struct {
		name   string
		client *Client
		pin    string
		w      *world
		flow   flow
		want   error // nil: success
	}{
		{name: "ok/right-pin", client: alice, pin: "1234"},
		{name: "ok/same-binding", client: alice, pin: "1234", flow: flow{binding: [2][]byte{[]byte("tls"), []byte("tls")}}},
		{name: "fail/wrong-pin", client: alice, pin: "1235", want: ErrAuthFailed},
		{name: "fail/empty-pin", client: alice, pin: "", want: ErrAuthFailed},
		{name: "fail/other-identity-token", client: &bobTokenAsAlice, pin: "1234", want: ErrAuthFailed},
		{name: "fail/permit-of-another-slot", client: &stalePermit, pin: "1234", want: ErrAuthFailed},
		{name: "fail/slot-not-current", client: &futureSlot, pin: "1234", want: ErrPermitSlot},
		{name: "fail/other-domain-key", client: stranger, pin: "1234", want: ErrAuthFailed},
		{name: "fail/renamed-domain", client: &renamedDomain, pin: "1234", want: ErrAuthFailed},
		{name: "fail/token-without-permit", client: &noPermit, pin: "1234", want: errAny},
		{name: "fail/tampered-U", client: alice, pin: "1234", flow: flow{pass1: func(m *Pass1) { m.U = randomG1(t) }}, want: ErrAuthFailed},
		{name: "fail/tampered-Z", client: alice, pin: "1234", flow: flow{pass1: func(m *Pass1) { m.Z = randomG1(t) }}, want: ErrChannelBinding},
		{name: "fail/tampered-idhash", client: alice, pin: "1234", flow: flow{pass1: func(m *Pass1) { m.IDHash = bob.IDHash }}, want: ErrAuthFailed},
		{name: "fail/tampered-y", client: alice, pin: "1234", flow: flow{challenge: func(m *Challenge) { m.Y = new(Scalar).Add(m.Y, one) }}, want: ErrAuthFailed},
		{name: "fail/tampered-key-share", client: alice, pin: "1234", flow: flow{pass1: func(m *Pass1) { m.KEM = randomKeyShare(t) }}, want: ErrChannelBinding},
		{name: "fail/tampered-ciphertext", client: alice, pin: "1234", flow: flow{challenge: func(m *Challenge) { m.KEM = randomCiphertext(t) }}, want: ErrChannelBinding},
		{name: "fail/tampered-ciphertext-mlkem", client: alice, pin: "1234", flow: flow{challenge: func(m *Challenge) { m.KEM.mlkem[0] ^= 1 }}, want: ErrChannelBinding},
		{name: "fail/tampered-ciphertext-x25519", client: alice, pin: "1234", flow: flow{challenge: func(m *Challenge) { m.KEM.x25519 = randomCiphertext(t).x25519 }}, want: ErrChannelBinding},
		{name: "fail/tampered-V", client: alice, pin: "1234", flow: flow{pass2: func(m *Pass2) { m.V = m.V.Add(G1Generator()) }}, want: ErrAuthFailed},
		{name: "fail/tampered-session-id", client: alice, pin: "1234", flow: flow{pass2: func(m *Pass2) { m.SessionID[0] ^= 1 }}, want: ErrAuthFailed},
		{name: "fail/tampered-client-tag", client: alice, pin: "1234", flow: flow{pass2: func(m *Pass2) { m.Tag[31] ^= 1 }}, want: ErrChannelBinding},
		{name: "fail/tampered-server-tag", client: alice, pin: "1234", flow: flow{finish: func(m *Finish) { m.Tag[0] ^= 1 }}, want: ErrServerNotAuthentic},
		{name: "fail/channel-binding-differs", client: alice, pin: "1234", flow: flow{binding: [2][]byte{[]byte("client-tls"), []byte("proxy-tls")}}, want: ErrChannelBinding},
		{name: "fail/identity-U", client: alice, pin: "1234", flow: flow{pass1: func(m *Pass1) { m.U = identityG1() }}, want: ErrIdentity},
		{name: "fail/identity-Z", client: alice, pin: "1234", flow: flow{pass1: func(m *Pass1) { m.Z = identityG1() }}, want: ErrIdentity},
		{name: "fail/small-order-client-x25519", client: alice, pin: "1234", flow: flow{pass1: func(m *Pass1) { m.KEM.x25519 = smallOrderX25519(t) }}, want: ErrIdentity},
		{name: "fail/small-order-server-x25519", client: alice, pin: "1234", flow: flow{challenge: func(m *Challenge) { m.KEM.x25519 = smallOrderX25519(t) }}, want: ErrIdentity},
		{name: "fail/identity-V", client: alice, pin: "1234", flow: flow{pass2: func(m *Pass2) { m.V = identityG1() }}, want: ErrAuthFailed},
		{name: "fail/zero-y", client: alice, pin: "1234", flow: flow{challenge: func(m *Challenge) { m.Y = new(Scalar) }}, want: ErrZeroScalar},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ww := w
			if tc.w != nil {
				ww = tc.w
			}
			err := ww.run(t, tc.client, []byte(tc.pin), tc.flow)
			switch {
			case tc.want == nil && err != nil:
				t.Fatalf("login failed: %v", err)
			case tc.want == errAny && err == nil, tc.want != nil && tc.want != errAny && !errors.Is(err, tc.want):
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

var errAny = errors.New("any error")

// randomKeyShare is a fresh client key share, as a man in the middle would send.
func randomKeyShare(t testing.TB) *EncapsulationKey {
	dk, err := newDecapsulationKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return dk.encapsulationKey()
}

// randomCiphertext is an encapsulation to a fresh key share.
func randomCiphertext(t testing.TB) *Ciphertext {
	e, err := newEncapsulator(nil)
	if err != nil {
		t.Fatal(err)
	}
	_, ct, err := e.run(randomKeyShare(t))
	if err != nil {
		t.Fatal(err)
	}
	return ct
}

// smallOrderX25519 is the X25519 public key u = 0, the point (0, 0) of order 2: its
// multiple by any X25519 private key (a multiple of 8) is the point at infinity, so the
// shared secret is all zero.
func smallOrderX25519(t testing.TB) x25519.Key {
	k, err := decodeX25519(make([]byte, X25519Size))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestIdentityIsNeutralInGnark shows why the verifier refuses the identity explicitly:
// the bare pairing check accepts V = P = identity.
func TestIdentityIsNeutralInGnark(t *testing.T) {
	w := newWorld(t, "api.example.com", 1)
	var inf bls.G1Affine
	ok, err := bls.PairingCheckFixedQ([]bls.G1Affine{inf, inf},
		[][2][len(bls.LoopCounter) - 1]bls.LineEvaluationAff{w.key.linesQ, w.key.linesSQ})
	if err != nil || !ok {
		t.Fatalf("expected gnark to accept the identity (ok=%v err=%v); if this changed, keep the explicit check anyway", ok, err)
	}
	if w.key.checkEquation(&inf, &inf) {
		t.Fatal("checkEquation accepted V = P = identity")
	}
}

// TestServerKeyLinesStayPristine checks the gnark pitfall: a ServerKey used many times,
// concurrently, keeps giving right answers (run with -race).
func TestServerKeyLinesStayPristine(t *testing.T) {
	w := newWorld(t, "api.example.com", 2)
	c := w.enrol(t, "carol@example.com", []byte("0000"))
	done := make(chan error, 8)
	for g := 0; g < 8; g++ {
		go func() {
			for i := 0; i < 3; i++ {
				if _, _, err := w.login(t, c, []byte("0000")); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for g := 0; g < 8; g++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

func TestReplay(t *testing.T) {
	w := newWorld(t, "api.example.com", 3)
	c := w.enrol(t, "alice@example.com", []byte("1234"))
	f := w.upToPass2(t, c, []byte("1234"))
	cs, p1, ss, ch, p2 := f.cs, f.p1, f.ss, f.ch, f.p2
	if _, _, err := ss.Finish(p2, nil); err != nil {
		t.Fatal(err)
	}
	t.Run("fail/reused-server-session", func(t *testing.T) {
		if _, _, err := ss.Finish(p2, nil); !errors.Is(err, ErrSessionUsed) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("fail/reused-client-session", func(t *testing.T) {
		if _, err := cs.Respond(ch, nil); !errors.Is(err, ErrSessionUsed) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("fail/pass2-replayed-into-new-session", func(t *testing.T) {
		ss2, ch2, err := w.verifier.Challenge(nil, p1, w.now) // the attacker replays pass 1 too
		if err != nil {
			t.Fatal(err)
		}
		replay := *p2
		replay.SessionID = ch2.SessionID
		if _, _, err := ss2.Finish(&replay, nil); !errors.Is(err, ErrAuthFailed) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("fail/client-finish-twice", func(t *testing.T) {
		f := w.upToPass2(t, c, []byte("1234"))
		cs := f.cs
		fin, _, err := f.ss.Finish(f.p2, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cs.Finish(fin); err != nil {
			t.Fatal(err)
		}
		if _, err := cs.Finish(fin); !errors.Is(err, ErrSessionUsed) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("fail/nil-pass1", func(t *testing.T) {
		if _, _, err := w.verifier.Challenge(nil, nil, w.now); err == nil {
			t.Fatal("accepted a nil pass 1")
		}
	})
	t.Run("fail/confirm-without-verify", func(t *testing.T) {
		ss3, _, err := w.verifier.Challenge(nil, p1, w.now)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := ss3.Confirm(p2, nil); err == nil {
			t.Fatal("Confirm accepted an unverified pass 2")
		}
	})
}

func TestAcceptSlot(t *testing.T) {
	v := &Verifier{Domain: Domain{Name: "d", PermitPeriod: 3600}, Grace: 5 * time.Minute}
	boundary := time.Unix(3600*500_000, 0)
	cur := v.Domain.Slot(boundary)
	cases := []struct {
		name string
		slot uint64
		now  time.Time
		want bool
	}{
		{"ok/current", cur, boundary.Add(time.Hour - time.Second), true},
		{"ok/previous-in-grace", cur - 1, boundary.Add(4 * time.Minute), true},
		{"fail/previous-after-grace", cur - 1, boundary.Add(5 * time.Minute), false},
		{"fail/next", cur + 1, boundary.Add(59 * time.Minute), false},
		{"fail/old", cur - 2, boundary, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := v.AcceptSlot(tc.slot, tc.now); got != tc.want {
				t.Fatalf("AcceptSlot(%d) = %v", tc.slot, got)
			}
		})
	}
	noPermits := &Verifier{Domain: Domain{Name: "d"}}
	if !noPermits.AcceptSlot(0, boundary) || noPermits.AcceptSlot(1, boundary) {
		t.Fatal("without permits only slot 0 is acceptable")
	}
}

// TestFinishWorkIsConstant: Finish and Reject run the same two pairings (the check and
// the key pairing) whatever pass 2 holds, so the time of a refusal does not tell a
// right PIN from a wrong one; Reject never succeeds.
func TestFinishWorkIsConstant(t *testing.T) {
	w := newWorld(t, "api.example.com", 3)
	c := w.enrol(t, "alice@example.com", []byte("1234"))
	type outcome struct {
		err  error
		keys bool
	}
	cases := []struct {
		name    string
		pin     string
		binding []byte // the server's; the client binds to nothing
		reject  bool
		want    error
	}{
		{name: "finish/right-pin", pin: "1234"},
		{name: "finish/wrong-pin", pin: "1235", want: ErrAuthFailed},
		{name: "finish/other-channel", pin: "1234", binding: []byte("another channel"), want: ErrChannelBinding},
		{name: "reject/right-pin", pin: "1234", reject: true, want: ErrAuthFailed},
		{name: "reject/wrong-pin", pin: "1235", reject: true, want: ErrAuthFailed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := w.upToPass2(t, c, []byte(tc.pin))
			before := w.key.Pairings()
			var got outcome
			if tc.reject {
				got.err = f.ss.Reject(f.p2, tc.binding)
			} else {
				fin, key, err := f.ss.Finish(f.p2, tc.binding)
				got = outcome{err, fin != nil || key != nil}
			}
			if n := w.key.Pairings() - before; n != 2 {
				t.Errorf("%d pairings, want 2", n)
			}
			if !errors.Is(got.err, tc.want) || (got.err != nil) == got.keys {
				t.Errorf("got %v (keys %v), want %v", got.err, got.keys, tc.want)
			}
			// The session is used up either way.
			before = w.key.Pairings()
			if err := f.ss.Reject(f.p2, tc.binding); !errors.Is(err, ErrSessionUsed) {
				t.Errorf("second use: %v", err)
			}
			if n := w.key.Pairings() - before; n != 0 {
				t.Errorf("a used session ran %d pairings", n)
			}
		})
	}
}

// TestSessionState moves a server session to another Verifier of the same domain and
// key, as replicas sharing a store do, and finishes the login there.
func TestSessionState(t *testing.T) {
	w := newWorld(t, "api.example.com", 3)
	c := w.enrol(t, "alice@example.com", []byte("1234"))
	f := w.upToPass2(t, c, []byte("1234"))
	state, err := f.ss.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	replica := &Verifier{Domain: w.domain, Key: w.key}
	ss, err := replica.RestoreSession(state)
	if err != nil {
		t.Fatal(err)
	}
	if ss.ID() != f.ss.ID() {
		t.Fatal("restored session has another ID")
	}
	again, err := ss.MarshalBinary()
	if err != nil || !bytes.Equal(again, state) {
		t.Fatalf("state does not round-trip: %v", err)
	}
	fin, serverKey, err := ss.Finish(f.p2, nil)
	if err != nil {
		t.Fatalf("restored session: %v", err)
	}
	clientKey, err := f.cs.Finish(fin)
	if err != nil || !bytes.Equal(clientKey, serverKey) {
		t.Fatalf("client: %v", err)
	}
	if _, err := ss.MarshalBinary(); !errors.Is(err, ErrSessionUsed) {
		t.Fatalf("state of a used session: %v", err)
	}

	// A wrong PIN still fails on the restored session.
	f = w.upToPass2(t, c, []byte("1235"))
	state, _ = f.ss.MarshalBinary()
	if ss, err = replica.RestoreSession(state); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ss.Finish(f.p2, nil); !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("wrong PIN on a restored session: %v", err)
	}

	// Another domain or period, a truncated state or a bad point: refused.
	renewals := &Verifier{Domain: Domain{Name: w.domain.Name}, Key: w.key}
	other := &Verifier{Domain: Domain{Name: "api.example.org", PermitPeriod: w.domain.PermitPeriod}, Key: w.key}
	for _, v := range []*Verifier{renewals, other} {
		if _, err := v.RestoreSession(state); err == nil {
			t.Errorf("restored for domain %+v", v.Domain)
		}
	}
	if _, err := replica.RestoreSession(state[:sessionStateHead-1]); !errors.Is(err, ErrLength) {
		t.Errorf("truncated state: %v", err)
	}
	bad := append([]byte(nil), state...)
	bad[SessionIDSize+SharedSecretSize] = 0xc0 // A' as the identity's flags
	if _, err := replica.RestoreSession(bad); err == nil {
		t.Error("restored a state with a bad point")
	}
}
