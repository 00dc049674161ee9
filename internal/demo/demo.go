// Package demo tells the story of a polyroot domain in one process, step by step.
package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/polyroot/polyroot/pairing"
)

const (
	domainName = "api.example.com"
	alicePIN   = "4821"
)

// Run prints each step to w and returns an error as soon as a step does not behave
// as it should.
func Run(ctx context.Context, w io.Writer) error {
	d := &story{w: w, domain: pairing.Domain{Name: domainName, PermitPeriod: 86400}, now: time.Now()}
	steps := []func() error{d.setUp, d.provisionServer, d.enrolAlice, d.login, d.wrongPIN, d.incompleteServer}
	for i, step := range steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		fmt.Fprintf(w, "\n%d. ", i+1)
		if err := step(); err != nil {
			fmt.Fprintf(w, "   FAILED: %v\n", err)
			return fmt.Errorf("demo step %d: %w", i+1, err)
		}
	}
	fmt.Fprintln(w, "\nEvery step behaved as expected.")
	return nil
}

type story struct {
	w       io.Writer
	domain  pairing.Domain
	now     time.Time
	masters []*pairing.Scalar
	commits []*pairing.G1
	shares  []*pairing.G2 // s_i·Q as each DTA hands it to the server
	key     *pairing.ServerKey
	alice   *pairing.Client
}

func (d *story) say(format string, args ...any) { fmt.Fprintf(d.w, format+"\n", args...) }

func (d *story) setUp() error {
	d.say("Three independent DTAs set up the domain %s.", d.domain.Name)
	for i := 1; i <= 3; i++ {
		s, err := pairing.RandomScalar(nil)
		if err != nil {
			return err
		}
		d.masters = append(d.masters, s)
		d.commits = append(d.commits, pairing.G1Generator().Mul(s))
		d.say("   DTA %d keeps its master share to itself and publishes C_%d = %x…", i, i, d.commits[i-1].Bytes()[:8])
	}
	d.say("   No single DTA knows the domain key s = s_1 + s_2 + s_3.")
	return nil
}

func (d *story) provisionServer() error {
	d.say("The auth server collects its key share s_i·Q from each DTA and checks it.")
	var sQ *pairing.G2
	for i, s := range d.masters {
		share := pairing.G2Generator().Mul(s)
		if err := pairing.VerifyServerShare(d.commits[i], share); err != nil {
			return fmt.Errorf("share of DTA %d: %w", i+1, err)
		}
		d.shares = append(d.shares, share)
		d.say("   share of DTA %d matches C_%d: e(C_%d, Q) = e(P1, s_%d·Q)", i+1, i+1, i+1, i+1)
		if sQ == nil {
			sQ = share
		} else {
			sQ = sQ.Add(share)
		}
	}
	key, err := pairing.NewServerKey(sQ)
	if err != nil {
		return err
	}
	d.key = key
	d.say("   the server combines them into sQ and precomputes its pairing lines.")
	return nil
}

func (d *story) enrolAlice() error {
	salt := make([]byte, pairing.SaltSize)
	id, err := pairing.NewIDHash(d.domain.Name, "alice@example.com", salt)
	if err != nil {
		return err
	}
	d.say("alice enrols. The DTAs only ever see her identity hash %x….", id[:8])
	slot := d.domain.Slot(d.now)
	a, t := pairing.IdentityPoint(id), pairing.PermitPoint(id, slot, d.domain.PermitPeriod)
	var clientShares, permitShares []pairing.IssuedShare
	var indices []uint32
	start := time.Now()
	for i, s := range d.masters {
		index := uint32(i + 1)
		S, proof, err := pairing.IssueShare(nil, s, d.commits[i], a, pairing.ShareContext(d.domain.Name, index, "client", 0))
		if err != nil {
			return err
		}
		P, pproof, err := pairing.IssueShare(nil, s, d.commits[i], t, pairing.ShareContext(d.domain.Name, index, "permit", slot))
		if err != nil {
			return err
		}
		clientShares = append(clientShares, pairing.IssuedShare{Index: index, Commitment: d.commits[i], Share: S, Proof: proof})
		permitShares = append(permitShares, pairing.IssuedShare{Index: index, Commitment: d.commits[i], Share: P, Proof: pproof})
		indices = append(indices, index)
	}
	d.say("   three DTAs issued a client share and a time permit share each (%v).", time.Since(start).Round(time.Millisecond))
	ctxClient := func(i uint32) []byte { return pairing.ShareContext(d.domain.Name, i, "client", 0) }
	ctxPermit := func(i uint32) []byte { return pairing.ShareContext(d.domain.Name, i, "permit", slot) }
	if err := pairing.VerifyShares(a, clientShares, ctxClient); err != nil {
		return err
	}
	if err := pairing.VerifyShares(t, permitShares, ctxPermit); err != nil {
		return err
	}
	d.say("   alice's client checked all six DLEQ proofs: every share was made with its DTA's published key.")
	sA, err := pairing.Combine(pairing.Additive, indices, pick(clientShares))
	if err != nil {
		return err
	}
	permit, err := pairing.Combine(pairing.Additive, indices, pick(permitShares))
	if err != nil {
		return err
	}
	d.alice = &pairing.Client{Domain: d.domain, IDHash: id, Token: pairing.ExtractPIN(d.domain.Name, id, sA, []byte(alicePIN)), Permit: permit, Slot: slot}
	d.say("   she chose the PIN %s; the client stores only the token s·A − π·A, which is useless without it.", alicePIN)
	return nil
}

func pick(shares []pairing.IssuedShare) []*pairing.G1 {
	out := make([]*pairing.G1, len(shares))
	for i, s := range shares {
		out[i] = s.Share
	}
	return out
}

// login runs one login against a server holding key and returns both session keys.
func (d *story) loginWith(key *pairing.ServerKey, pin string) (clientKey, serverKey []byte, err error) {
	cs, p1, err := d.alice.Start(nil, []byte(pin))
	if err != nil {
		return nil, nil, err
	}
	v := &pairing.Verifier{Domain: d.domain, Key: key}
	ss, ch, err := v.Challenge(nil, p1, d.now)
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

func (d *story) login() error {
	d.say("alice logs in with her PIN (M-Pin Full, two passes).")
	start := time.Now()
	ck, sk, err := d.loginWith(d.key, alicePIN)
	if err != nil {
		return err
	}
	if !bytes.Equal(ck, sk) {
		return errors.New("the two sides derived different session keys")
	}
	d.say("   the server verified her proof, and the server proved it holds sQ: no certificate authority involved.")
	d.say("   both sides hold the same session key %x… (%v for the whole exchange).", ck[:8], time.Since(start).Round(time.Millisecond))
	return nil
}

func (d *story) wrongPIN() error {
	d.say("someone with alice's phone tries the PIN 1111.")
	_, _, err := d.loginWith(d.key, "1111")
	if !errors.Is(err, pairing.ErrAuthFailed) {
		return fmt.Errorf("wrong PIN: got %v, want a refusal", err)
	}
	d.say("   refused: %v. The server never learns how wrong the PIN was.", err)
	return nil
}

func (d *story) incompleteServer() error {
	d.say("an impostor server got key shares from only two of the three DTAs.")
	partial := d.shares[0].Add(d.shares[1])
	key, err := pairing.NewServerKey(partial)
	if err != nil {
		return err
	}
	_, _, err = d.loginWith(key, alicePIN)
	if !errors.Is(err, pairing.ErrAuthFailed) {
		return fmt.Errorf("impostor server: got %v, want a refusal", err)
	}
	d.say("   it cannot verify alice (%v), nor make the tag her client checks: two DTAs alone cannot make a working server key.", err)
	return nil
}
