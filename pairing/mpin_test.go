package pairing

import (
	"bytes"
	"errors"
	"testing"
	"time"
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
	w := &world{domain: Domain{Name: name, PermitPeriod: 86400}, now: time.Unix(1_800_000_000, 0)}
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

func (w *world) login(t testing.TB, c *Client, pin []byte) (clientKey, serverKey []byte, err error) {
	t.Helper()
	cs, p1, err := c.Start(nil, pin)
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
	fin, serverKey, err := ss.Finish(p2, nil)
	if err != nil {
		return nil, nil, err
	}
	clientKey, err = cs.Finish(fin)
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
