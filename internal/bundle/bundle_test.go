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

func example(t testing.TB, n int) (*Bundle, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, _ := ed25519.GenerateKey(nil)
	b := &Bundle{Version: 1, Protocol: pairing.ProtocolVersion, Domain: "api.example.com", Mode: "additive", Threshold: n,
		PermitPeriod: 86400, RegistrarKey: hex.EncodeToString(pub)}
	for i := 1; i <= n; i++ {
		s, _ := pairing.RandomScalar(nil)
		dpub, _, _ := ed25519.GenerateKey(nil)
		b.DTAs = append(b.DTAs, DTA{Index: uint32(i), URL: fmt.Sprintf("https://dta%d.example.net", i),
			Commitment: hex.EncodeToString(pairing.G1Generator().Mul(s).Bytes()), SigningKey: hex.EncodeToString(dpub),
			LogOrigin: fmt.Sprintf("polyroot/api.example.com/dta-%d", i)})
	}
	return b, priv
}

func TestSignParse(t *testing.T) {
	b, priv := example(t, 3)
	file, fp, err := Sign(b, priv)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParsePinned(file, fp)
	if err != nil {
		t.Fatal(err)
	}
	if got.Domain != b.Domain || len(got.DTAs) != 3 || got.SharingMode() != pairing.Additive {
		t.Fatalf("got %+v", got)
	}
	if d, ok := got.Find(2); !ok || d.Index != 2 {
		t.Fatal("Find(2)")
	}
	t.Run("fail/other-fingerprint", func(t *testing.T) {
		if _, err := ParsePinned(file, strings.Repeat("0", 64)); !errors.Is(err, ErrInvalid) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("fail/tampered", func(t *testing.T) {
		bad := strings.Replace(string(file), "api.example.com", "api.example.org", 1)
		if _, err := Parse([]byte(bad)); !errors.Is(err, ErrInvalid) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("fail/signed-by-another-key", func(t *testing.T) {
		_, other, _ := ed25519.GenerateKey(nil)
		if _, _, err := Sign(b, other); !errors.Is(err, ErrInvalid) {
			t.Fatalf("got %v", err)
		}
	})
}

func TestCheck(t *testing.T) {
	cases := map[string]func(*Bundle){
		"fail/version":             func(b *Bundle) { b.Version = 2 },
		"fail/protocol":            func(b *Bundle) { b.Protocol = "polyroot/v0" },
		"fail/no-domain":           func(b *Bundle) { b.Domain = "" },
		"fail/no-dtas":             func(b *Bundle) { b.DTAs = nil },
		"fail/additive-threshold":  func(b *Bundle) { b.Threshold = 2 },
		"fail/threshold-too-large": func(b *Bundle) { b.Mode, b.Threshold = "threshold", 4 },
		"fail/threshold-one":       func(b *Bundle) { b.Mode, b.Threshold = "threshold", 1 },
		"fail/min-pin-negative":    func(b *Bundle) { b.MinPINLength = -1 },
		"fail/min-pin-too-long":    func(b *Bundle) { b.MinPINLength = MaxMinPINLength + 1 },
		"fail/one-dta":             func(b *Bundle) { b.DTAs, b.Threshold = b.DTAs[:1], 1 },
		"fail/mode":                func(b *Bundle) { b.Mode = "majority" },
		"fail/repeated-index":      func(b *Bundle) { b.DTAs[1].Index = 1 },
		"fail/zero-index":          func(b *Bundle) { b.DTAs[0].Index = 0 },
		"fail/url":                 func(b *Bundle) { b.DTAs[0].URL = "ftp://x" },
		"fail/repeated-origin":     func(b *Bundle) { b.DTAs[1].LogOrigin = b.DTAs[0].LogOrigin },
		"fail/identity-commitment": func(b *Bundle) { b.DTAs[0].Commitment = "c0" + strings.Repeat("00", 47) },
		"fail/bad-commitment":      func(b *Bundle) { b.DTAs[0].Commitment = "zz" },
		"fail/signing-key":         func(b *Bundle) { b.DTAs[0].SigningKey = "00" },
		"fail/transcript-additive": func(b *Bundle) { b.TranscriptSHA256 = strings.Repeat("ab", 32) },
		"fail/transcript-short": func(b *Bundle) {
			b.Mode, b.TranscriptSHA256 = "threshold", strings.Repeat("ab", 31)
		},
		"fail/transcript-upper": func(b *Bundle) {
			b.Mode, b.TranscriptSHA256 = "threshold", strings.Repeat("AB", 32)
		},
		"fail/anchoring-chain-zero":    func(b *Bundle) { b.Anchoring = &Anchoring{Contract: testContract} },
		"fail/anchoring-no-contract":   func(b *Bundle) { b.Anchoring = &Anchoring{ChainID: 1} },
		"fail/anchoring-zero-contract": func(b *Bundle) { b.Anchoring = &Anchoring{ChainID: 1, Contract: "0x" + strings.Repeat("0", 40)} },
		"fail/anchoring-upper-case":    func(b *Bundle) { b.Anchoring = &Anchoring{ChainID: 1, Contract: strings.ToUpper(testContract)} },
		"fail/anchoring-short":         func(b *Bundle) { b.Anchoring = &Anchoring{ChainID: 1, Contract: testContract[:41]} },
		"fail/anchoring-no-0x":         func(b *Bundle) { b.Anchoring = &Anchoring{ChainID: 1, Contract: "00" + testContract[2:]} },
		"fail/anchoring-not-hex":       func(b *Bundle) { b.Anchoring = &Anchoring{ChainID: 1, Contract: testContract[:41] + "g"} },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			b, priv := example(t, 3)
			mutate(b)
			if _, _, err := Sign(b, priv); !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v", err)
			}
		})
	}
}

// TestTranscriptHash: a threshold bundle names its transcript's SHA-256, which Sign
// writes after serial and Parse reads back; without it the member is absent.
func TestTranscriptHash(t *testing.T) {
	b, priv := example(t, 3)
	b.Mode, b.Serial = "threshold", 2
	file, _, err := Sign(b, priv)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(file), "transcript_sha256") {
		t.Fatalf("empty transcript hash written:\n%s", file)
	}
	b.TranscriptSHA256 = strings.Repeat("0f", 32)
	if file, _, err = Sign(b, priv); err != nil {
		t.Fatal(err)
	}
	compact := signedInput(t, file)
	if want := `,"serial":2,"transcript_sha256":"` + b.TranscriptSHA256 + `"}`; !strings.HasSuffix(compact, want) {
		t.Fatalf("signed input %s\ndoes not end with %s", compact, want)
	}
	got, err := Parse(file)
	if err != nil {
		t.Fatal(err)
	}
	if got.TranscriptSHA256 != b.TranscriptSHA256 {
		t.Fatalf("transcript %q, want %q", got.TranscriptSHA256, b.TranscriptSHA256)
	}
}

// signedInput returns the bytes a bundle file's signature is over.
func signedInput(t *testing.T, file []byte) string {
	t.Helper()
	var sf signed
	if err := json.Unmarshal(file, &sf); err != nil {
		t.Fatal(err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, sf.Bundle); err != nil {
		t.Fatal(err)
	}
	return compact.String()
}

// testContract is a well-formed contract address.
const testContract = "0x5fbdb2315678afecb367f032d93f642f64180aa3"

// TestAnchoring: a bundle names the chain and the contract of its anchors last, and
// Parse reads them back; without them the member is absent.
func TestAnchoring(t *testing.T) {
	b, priv := example(t, 3)
	file, _, err := Sign(b, priv)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(file), "anchoring") {
		t.Fatalf("no anchoring, yet the member is written:\n%s", file)
	}
	b.MinPINLength, b.Anchoring = 6, &Anchoring{ChainID: 11155111, Contract: testContract}
	if file, _, err = Sign(b, priv); err != nil {
		t.Fatal(err)
	}
	compact := signedInput(t, file)
	if want := `,"min_pin_length":6,"anchoring":{"chain_id":11155111,"contract":"` + testContract + `"}}`; !strings.HasSuffix(compact, want) {
		t.Fatalf("signed input %s\ndoes not end with %s", compact, want)
	}
	got, err := Parse(file)
	if err != nil {
		t.Fatal(err)
	}
	if got.Anchoring == nil || *got.Anchoring != *b.Anchoring {
		t.Fatalf("anchoring %+v, want %+v", got.Anchoring, b.Anchoring)
	}
}

// TestThresholdCommitments: a threshold bundle's commitments must lie on one
// polynomial of degree t−1, so that any t DTAs make the same keys.
func TestThresholdCommitments(t *testing.T) {
	for _, tc := range []struct {
		name  string
		wrong int // index into DTAs whose commitment is replaced, -1 for none
		ok    bool
	}{
		{"ok/3-of-5", -1, true},
		{"fail/last-off-polynomial", 4, false},
		{"fail/first-off-polynomial", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, priv := example(t, 5)
			b.Mode, b.Threshold = "threshold", 3
			s, _ := pairing.RandomScalar(nil)
			shares, err := pairing.SplitSecret(nil, s, 3, 5)
			if err != nil {
				t.Fatal(err)
			}
			for i := range b.DTAs {
				b.DTAs[i].Commitment = hex.EncodeToString(pairing.G1Generator().Mul(shares[i]).Bytes())
			}
			if tc.wrong >= 0 {
				other, _ := pairing.RandomScalar(nil)
				b.DTAs[tc.wrong].Commitment = hex.EncodeToString(pairing.G1Generator().Mul(other).Bytes())
			}
			_, _, err = Sign(b, priv)
			if tc.ok != (err == nil) || (err != nil && !errors.Is(err, ErrInvalid)) {
				t.Fatalf("got %v", err)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	b, priv := example(f, 2)
	file, _, _ := Sign(b, priv)
	f.Add(file)
	f.Add([]byte(`{"bundle":{},"signature":""}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, err := Parse(raw)
		if err != nil {
			return
		}
		for i := range got.DTAs {
			if _, err := got.DTAs[i].CommitmentPoint(); err != nil {
				t.Fatalf("accepted a bundle with a bad commitment: %v", err)
			}
		}
	})
}
