//go:build !js

package pairing_test

import (
	"bytes"
	"fmt"
	"time"

	"github.com/polyroot/polyroot/pairing"
)

// A domain with two DTAs, one client, one login.
func Example() {
	domain := pairing.Domain{Name: "api.example.com", PermitPeriod: 86400}
	now := time.Now()

	// Each DTA: a master share and its public commitment.
	s1, _ := pairing.RandomScalar(nil)
	s2, _ := pairing.RandomScalar(nil)
	c1, c2 := pairing.G1Generator().Mul(s1), pairing.G1Generator().Mul(s2)

	// The server combines the DTAs' shares of sQ.
	sQ := pairing.G2Generator().Mul(s1).Add(pairing.G2Generator().Mul(s2))
	key, _ := pairing.NewServerKey(sQ)
	verifier := &pairing.Verifier{Domain: domain, Key: key}

	// The client gets shares of s·A and of its permit s·T_k, checks them, combines them.
	id, _ := pairing.NewIDHash(domain.Name, "alice@example.com", make([]byte, pairing.SaltSize))
	slot := domain.Slot(now)
	a, t := pairing.IdentityPoint(id), pairing.PermitPoint(id, slot, domain.PermitPeriod)
	issue := func(s *pairing.Scalar, c *pairing.G1, index uint32, base *pairing.G1, kind string, slot uint64) pairing.IssuedShare {
		share, proof, _ := pairing.IssueShare(nil, s, c, base, pairing.ShareContext(domain.Name, index, kind, slot))
		return pairing.IssuedShare{Index: index, Commitment: c, Share: share, Proof: proof}
	}
	shares := []pairing.IssuedShare{issue(s1, c1, 1, a, "client", 0), issue(s2, c2, 2, a, "client", 0)}
	permits := []pairing.IssuedShare{issue(s1, c1, 1, t, "permit", slot), issue(s2, c2, 2, t, "permit", slot)}
	err := pairing.VerifyShares(a, shares, func(i uint32) []byte { return pairing.ShareContext(domain.Name, i, "client", 0) })
	fmt.Println("shares verified:", err == nil)
	sA, _ := pairing.Combine(pairing.Additive, []uint32{1, 2}, []*pairing.G1{shares[0].Share, shares[1].Share})
	tp, _ := pairing.Combine(pairing.Additive, []uint32{1, 2}, []*pairing.G1{permits[0].Share, permits[1].Share})
	client := &pairing.Client{Domain: domain, IDHash: id, Token: pairing.ExtractPIN(domain.Name, id, sA, []byte("1234")), Permit: tp, Slot: slot}

	// Login: pass 1, challenge, pass 2, server tag.
	cs, pass1, _ := client.Start(nil, []byte("1234"))
	ss, challenge, _ := verifier.Challenge(nil, pass1, now)
	pass2, _ := cs.Respond(challenge, nil)
	finish, serverKey, err := ss.Finish(pass2, nil)
	fmt.Println("server accepts:", err == nil)
	clientKey, err := cs.Finish(finish)
	fmt.Println("server authentic:", err == nil)
	fmt.Println("same session key:", bytes.Equal(clientKey, serverKey))
	// Output:
	// shares verified: true
	// server accepts: true
	// server authentic: true
	// same session key: true
}
