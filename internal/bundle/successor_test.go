package bundle

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/polyroot/polyroot/pairing"
)

// thresholdExample is a t-of-n bundle whose shares are of s (random when nil); it
// returns the bundle, the registrar key and s.
func thresholdExample(t testing.TB, s *pairing.Scalar, threshold, n int) (*Bundle, ed25519.PrivateKey, *pairing.Scalar) {
	t.Helper()
	b, priv := example(t, n)
	if s == nil {
		s, _ = pairing.RandomScalar(nil)
	}
	shares, err := pairing.SplitSecret(nil, s, threshold, n)
	if err != nil {
		t.Fatal(err)
	}
	b.Mode, b.Threshold = "threshold", threshold
	for i := range b.DTAs {
		b.DTAs[i].Commitment = hex.EncodeToString(pairing.G1Generator().Mul(shares[i]).Bytes())
	}
	return b, priv, s
}

// reshared is old with fresh shares of the same s (threshold mode, same DTAs), a
// greater serial.
func reshared(t testing.TB, old *Bundle, s *pairing.Scalar) *Bundle {
	t.Helper()
	next := *old
	next.DTAs = append([]DTA(nil), old.DTAs...)
	shares, err := pairing.SplitSecret(nil, s, next.Threshold, len(next.DTAs))
	if err != nil {
		t.Fatal(err)
	}
	for i := range next.DTAs {
		next.DTAs[i].Commitment = hex.EncodeToString(pairing.G1Generator().Mul(shares[int(next.DTAs[i].Index)-1]).Bytes())
	}
	next.Serial = old.Serial + 1
	return &next
}

func TestPublicKey(t *testing.T) {
	t.Run("ok/additive", func(t *testing.T) {
		b, _ := example(t, 3)
		want, _ := b.DTAs[0].CommitmentPoint()
		for _, d := range b.DTAs[1:] {
			c, _ := d.CommitmentPoint()
			want = want.Add(c)
		}
		got, err := b.PublicKey()
		if err != nil || !got.Equal(want) {
			t.Fatalf("got %v, %v", got, err)
		}
	})
	for _, tn := range [][2]int{{2, 3}, {3, 5}, {3, 3}} {
		t.Run(fmt.Sprintf("ok/threshold-%d-of-%d", tn[0], tn[1]), func(t *testing.T) {
			b, _, s := thresholdExample(t, nil, tn[0], tn[1])
			got, err := b.PublicKey()
			if err != nil || !got.Equal(pairing.G1Generator().Mul(s)) {
				t.Fatalf("got %v, %v", got, err)
			}
		})
	}
	t.Run("fail/no-dtas", func(t *testing.T) {
		b, _ := example(t, 2)
		b.DTAs = nil
		if _, err := b.PublicKey(); !errors.Is(err, ErrInvalid) {
			t.Fatalf("got %v", err)
		}
	})
}

func TestCheckSuccessor(t *testing.T) {
	old, priv, s := thresholdExample(t, nil, 3, 5)
	old.Serial = 4
	if _, _, err := Sign(old, priv); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		mutate func(next *Bundle)
		want   error // nil: accepted
	}{
		{"ok/reshared", func(*Bundle) {}, nil},
		{"ok/serial-skips", func(n *Bundle) { n.Serial = 100 }, nil},
		{"ok/one-retired", func(n *Bundle) { n.DTAs, n.Serial = n.DTAs[:4], 9 }, nil},
		{"ok/one-added", func(n *Bundle) {
			sh, _ := pairing.SplitSecret(nil, s, 3, 6)
			n.DTAs = append(n.DTAs, DTA{Index: 6, URL: "https://dta6.example.net", SigningKey: n.DTAs[0].SigningKey, LogOrigin: "polyroot/api.example.com/dta-6"})
			for i := range n.DTAs {
				n.DTAs[i].Commitment = hex.EncodeToString(pairing.G1Generator().Mul(sh[i]).Bytes())
			}
		}, nil},
		{"ok/threshold-changes", func(n *Bundle) {
			sh, _ := pairing.SplitSecret(nil, s, 2, 5)
			n.Threshold = 2
			for i := range n.DTAs {
				n.DTAs[i].Commitment = hex.EncodeToString(pairing.G1Generator().Mul(sh[i]).Bytes())
			}
		}, nil},
		{"ok/to-additive", func(n *Bundle) {
			// s = s1 + s2 + s3
			a, _ := pairing.RandomScalar(nil)
			b, _ := pairing.RandomScalar(nil)
			c := new(pairing.Scalar).Sub(s, a)
			c.Sub(c, b)
			n.Mode, n.Threshold, n.DTAs = "additive", 3, n.DTAs[:3]
			for i, x := range []*pairing.Scalar{a, b, c} {
				n.DTAs[i].Commitment = hex.EncodeToString(pairing.G1Generator().Mul(x).Bytes())
			}
		}, nil},
		{"fail/serial-equal", func(n *Bundle) { n.Serial = 4 }, ErrNotSuccessor},
		{"fail/serial-not-greater", func(n *Bundle) { n.Serial = 3 }, ErrNotSuccessor},
		{"fail/serial-absent", func(n *Bundle) { n.Serial = 0 }, ErrNotSuccessor},
		{"fail/other-registrar", func(n *Bundle) {
			pub, _, _ := ed25519.GenerateKey(nil)
			n.RegistrarKey = hex.EncodeToString(pub)
		}, ErrNotSuccessor},
		{"fail/other-domain", func(n *Bundle) { n.Domain = "api.example.org" }, ErrNotSuccessor},
		{"fail/other-protocol", func(n *Bundle) { n.Protocol = "polyroot/v0" }, ErrNotSuccessor},
		{"fail/other-permit-period", func(n *Bundle) { n.PermitPeriod = 3600 }, ErrNotSuccessor},
		{"fail/other-key", func(n *Bundle) {
			other, _ := pairing.RandomScalar(nil)
			sh, _ := pairing.SplitSecret(nil, other, 3, 5)
			for i := range n.DTAs {
				n.DTAs[i].Commitment = hex.EncodeToString(pairing.G1Generator().Mul(sh[i]).Bytes())
			}
		}, ErrNotSuccessor},
		{"fail/off-polynomial", func(n *Bundle) {
			other, _ := pairing.RandomScalar(nil)
			n.DTAs[4].Commitment = hex.EncodeToString(pairing.G1Generator().Mul(other).Bytes())
		}, ErrInvalid},
		{"fail/malformed", func(n *Bundle) { n.DTAs[1].URL = "ftp://x" }, ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			next := reshared(t, old, s)
			tc.mutate(next)
			err := CheckSuccessor(old, next)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

// TestCheckSuccessorAnchoring: a successor keeps the anchoring its predecessor names,
// and may name one where its predecessor did not.
func TestCheckSuccessorAnchoring(t *testing.T) {
	anchored := &Anchoring{ChainID: 1, Contract: testContract}
	cases := []struct {
		name      string
		old, next *Anchoring
		ok        bool
	}{
		{"ok/kept", anchored, &Anchoring{ChainID: 1, Contract: testContract}, true},
		{"ok/added", nil, anchored, true},
		{"ok/none", nil, nil, true},
		{"fail/dropped", anchored, nil, false},
		{"fail/other-contract", anchored, &Anchoring{ChainID: 1, Contract: "0x" + strings.Repeat("ab", 20)}, false},
		{"fail/other-chain", anchored, &Anchoring{ChainID: 10, Contract: testContract}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			old, _, s := thresholdExample(t, nil, 2, 3)
			old.Anchoring = tc.old
			next := reshared(t, old, s)
			next.Anchoring = tc.next
			err := CheckSuccessor(old, next)
			if tc.ok != (err == nil) || err != nil && !errors.Is(err, ErrNotSuccessor) {
				t.Fatalf("got %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// TestParseSuccessor: the file's signature is checked with the pinned registrar key,
// whatever key the file names.
func TestParseSuccessor(t *testing.T) {
	old, priv, s := thresholdExample(t, nil, 2, 3)
	next := reshared(t, old, s)
	file, _, err := Sign(next, priv)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("ok", func(t *testing.T) {
		got, err := ParseSuccessor(old, file)
		if err != nil || got.Serial != 1 {
			t.Fatalf("got %+v, %v", got, err)
		}
	})
	t.Run("fail/other-registrar", func(t *testing.T) {
		// A bundle that names another registrar and is signed by it: Parse accepts it
		// on its own, ParseSuccessor does not.
		pub, other, _ := ed25519.GenerateKey(nil)
		evil := *next
		evil.RegistrarKey = hex.EncodeToString(pub)
		f, _, err := Sign(&evil, other)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Parse(f); err != nil {
			t.Fatal(err)
		}
		if _, err := ParseSuccessor(old, f); !errors.Is(err, ErrNotSuccessor) || !errors.Is(err, ErrInvalid) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("fail/tampered", func(t *testing.T) {
		bad := bytes.Replace(file, []byte(`"serial": 1`), []byte(`"serial": 2`), 1)
		bad = bytes.Replace(bad, []byte(`"serial":1`), []byte(`"serial":2`), 1)
		if bytes.Equal(bad, file) {
			t.Fatal("no serial in the file")
		}
		if _, err := ParseSuccessor(old, bad); !errors.Is(err, ErrNotSuccessor) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("fail/same", func(t *testing.T) {
		f, _, _ := Sign(old, priv)
		if _, err := ParseSuccessor(old, f); !errors.Is(err, ErrNotSuccessor) {
			t.Fatalf("got %v", err)
		}
	})
}

// TestIsPredecessor: only an earlier bundle of the domain, signed by the pinned
// registrar, or the pinned one encoded otherwise, is a predecessor.
func TestIsPredecessor(t *testing.T) {
	old, priv, s := thresholdExample(t, nil, 2, 3)
	next := reshared(t, old, s)
	oldFile, _, err := Sign(old, priv)
	if err != nil {
		t.Fatal(err)
	}
	nextFile, _, err := Sign(next, priv)
	if err != nil {
		t.Fatal(err)
	}
	pub, other, _ := ed25519.GenerateKey(nil)
	evil := *old
	evil.RegistrarKey = hex.EncodeToString(pub)
	forged, _, err := Sign(&evil, other) // an earlier bundle, as another registrar signs it
	if err != nil {
		t.Fatal(err)
	}
	var reindented bytes.Buffer // the same bundle, as a tool that rewrites JSON leaves it
	if err := json.Indent(&reindented, nextFile, "", "    "); err != nil {
		t.Fatal(err)
	}
	sameSerial := *next
	sameSerial.MinPINLength++
	otherContent, _, err := Sign(&sameSerial, priv)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		pinned *Bundle
		file   []byte
		want   bool
	}{
		{"ok/earlier", next, oldFile, true},
		{"ok/same", next, nextFile, true},
		{"ok/same-reindented", next, reindented.Bytes(), true},
		{"fail/later", old, nextFile, false},
		{"fail/same-serial-other-content", next, otherContent, false},
		{"fail/other-signer", next, forged, false},
		{"fail/garbage", next, []byte("{}"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsPredecessor(tc.pinned, tc.file); got != tc.want {
				t.Fatalf("got %v", got)
			}
		})
	}
}

// TestSerialOmitted: a bundle with serial 0 has no serial member, so bundles from
// before serials keep their bytes (and fingerprints); one with a serial has it.
func TestSerialOmitted(t *testing.T) {
	b, priv := example(t, 2)
	file, _, err := Sign(b, priv)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(file, []byte("serial")) {
		t.Fatalf("serial 0 is in the file:\n%s", file)
	}
	b.Serial = 7
	file, _, err = Sign(b, priv)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(file)
	if err != nil || got.Serial != 7 {
		t.Fatalf("got %+v, %v", got, err)
	}
}

func FuzzParseSuccessor(f *testing.F) {
	old, priv, s := thresholdExample(f, nil, 2, 3)
	next := reshared(f, old, s)
	file, _, _ := Sign(next, priv)
	f.Add(file)
	f.Add([]byte(`{"bundle":{},"signature":""}`))
	oldKey, _ := old.PublicKey()
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, err := ParseSuccessor(old, raw)
		if err != nil {
			return
		}
		k, err := got.PublicKey()
		if err != nil || !k.Equal(oldKey) || got.Serial <= old.Serial || got.RegistrarKey != old.RegistrarKey {
			t.Fatalf("accepted a bundle that is no successor: %+v", got)
		}
	})
}
