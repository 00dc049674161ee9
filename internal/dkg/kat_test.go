package dkg

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hpke"
	"encoding/hex"
	"encoding/json"
	"flag"
	"io"
	"os"
	"testing"

	"github.com/polyroot/polyroot/pairing"
)

var update = flag.Bool("update", false, "rewrite testdata/kat.json")

// katNodes makes members whose Ed25519 and X25519 keys both come from rng, so the
// session ID is deterministic too.
func katNodes(t testing.TB, rng io.Reader, n int) []node {
	var out []node
	for i := 1; i <= n; i++ {
		seed := make([]byte, 64)
		io.ReadFull(rng, seed)
		key := ed25519.NewKeyFromSeed(seed[:32])
		sk, err := hpke.DHKEM(ecdh.X25519()).DeriveKeyPair(seed[32:])
		if err != nil {
			t.Fatal(err)
		}
		pub := sk.PublicKey().Bytes()
		priv, _ := sk.Bytes()
		out = append(out, node{key: key, seal: priv, m: Member{Index: uint32(i), SigningKey: key.Public().(ed25519.PublicKey), SealKey: pub}})
	}
	return out
}

type katVector struct {
	Comment     string              `json:"comment"`
	Seed        string              `json:"seed"`
	N           int                 `json:"n"`
	T           int                 `json:"t"`
	SessionID   string              `json:"session_id"`
	Deals       map[string][]string `json:"deals"`   // dealer → C_ik
	Feldman     map[string][]string `json:"feldman"` // dealer → A_ik
	PublicKey   string              `json:"public_key"`
	Commitments []string            `json:"commitments"`
	Shares      []string            `json:"shares"`
}

const katSeed = "polyroot dkg kat v1"

// TestKAT runs a 3-of-5 key generation from a ChaCha8 stream (math/rand/v2, key = the
// seed string zero-padded to 32 bytes) and compares with testdata/kat.json. The stream
// is consumed as: per member 64 bytes (Ed25519 seed ‖ X25519 DeriveKeyPair seed), then
// per dealer in index order a_0, b_0, a_1, b_1, … each as pairing.RandomScalar (48
// bytes reduced mod r, redrawn if zero). The test also recomputes s = Σ a_i0 from the
// stream directly, without the package, and checks s·P1 against the public key.
// Sealed shares use crypto/rand (wire.Seal) and are not part of the vector.
func TestKAT(t *testing.T) {
	rng := testRNG(katSeed)
	nodes := katNodes(t, rng, 5)
	s := newSession(nodes, 3)
	res, shares, msgs, err := run(t, s, nodes, nil, rng, nil)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := s.ID()
	v := katVector{Comment: "3-of-5 internal/dkg key generation; see TestKAT for the randomness", Seed: katSeed, N: 5, T: 3,
		SessionID: hex.EncodeToString(id[:]), Deals: map[string][]string{}, Feldman: map[string][]string{},
		PublicKey: hex.EncodeToString(res.PublicKey.Bytes()), Commitments: hexPoints(res.Commitments)}
	for _, m := range msgs {
		switch m.Kind {
		case KindDeal:
			v.Deals[string(rune('0'+m.From))] = hexPoints(m.Points)
		case KindFeldman:
			v.Feldman[string(rune('0'+m.From))] = hexPoints(m.Points)
		}
	}
	for i := uint32(1); i <= 5; i++ {
		v.Shares = append(v.Shares, hex.EncodeToString(shares[i].Bytes()))
	}
	got, _ := json.MarshalIndent(v, "", "  ")
	if *update {
		os.WriteFile("testdata/kat.json", append(got, '\n'), 0o644)
	}
	want, err := os.ReadFile("testdata/kat.json")
	if err != nil {
		t.Fatal(err)
	}
	if string(want) != string(got)+"\n" {
		t.Fatalf("vector mismatch:\n%s", got)
	}

	// Independent replay of the stream.
	replay := testRNG(katSeed)
	io.ReadFull(replay, make([]byte, 64*5))
	sum := new(pairing.Scalar)
	for range 5 {
		for k := range 3 {
			a, _ := pairing.RandomScalar(replay)
			pairing.RandomScalar(replay) // b_k
			if k == 0 {
				sum.Add(sum, a)
			}
		}
	}
	if !pairing.G1Generator().Mul(sum).Equal(res.PublicKey) {
		t.Fatal("the public key is not Σ a_i0·P1 from the stream")
	}
}
