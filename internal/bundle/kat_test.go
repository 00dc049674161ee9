package bundle

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/polyroot/polyroot/pairing"
)

var update = flag.Bool("update", false, "rewrite testdata/kat (make vectors)")

// The bundle known answer: a fixed bundle signed with a fixed registrar key (Ed25519
// signatures are deterministic), the exact bytes that are signed, and the file.
const (
	katBundleFile   = "testdata/kat/bundle.json"
	katSignedInput  = "testdata/kat/bundle.signed-input" // exactly the signed bytes, no newline
	katRegistrarTag = "polyroot bundle known answer: registrar"
)

func katSeed(label string) []byte {
	h := sha256.Sum256([]byte(label))
	return h[:]
}

// katBundle is the known-answer bundle; its second URL has a character that the
// encoding escapes (& as \u0026).
func katBundle() (*Bundle, ed25519.PrivateKey) {
	reg := ed25519.NewKeyFromSeed(katSeed(katRegistrarTag))
	b := &Bundle{Version: 1, Protocol: pairing.ProtocolVersion, Domain: "api.example.com", Mode: "additive", Threshold: 2,
		PermitPeriod: 86400, RegistrarKey: hex.EncodeToString(reg.Public().(ed25519.PublicKey))}
	urls := []string{"https://dta1.example.net:8441", "https://dta2.example.org/polyroot?region=eu&tier=1"}
	for i, u := range urls {
		index := uint32(i + 1)
		signing := ed25519.NewKeyFromSeed(katSeed("polyroot bundle known answer: DTA " + string(rune('0'+index))))
		b.DTAs = append(b.DTAs, DTA{Index: index, URL: u,
			Commitment: hex.EncodeToString(pairing.G1Generator().Mul(pairing.NewScalar(uint64(1000 + index))).Bytes()),
			SigningKey: hex.EncodeToString(signing.Public().(ed25519.PublicKey)),
			LogOrigin:  "polyroot/api.example.com/dta-" + string(rune('0'+index))})
	}
	return b, reg
}

// TestBundleKnownAnswer: Sign makes the committed file byte for byte; the signed input
// is the compact JSON of the "bundle" member, also committed; the signature verifies
// over it with the registrar key. docs/protocol.md (the trust bundle) describes it.
func TestBundleKnownAnswer(t *testing.T) {
	b, reg := katBundle()
	file, fp, err := Sign(b, reg)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.MkdirAll(filepath.Dir(katBundleFile), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(katBundleFile, file, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(katSignedInput, signed, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	wantFile, err := os.ReadFile(katBundleFile)
	if err != nil {
		t.Fatalf("%v (run make vectors)", err)
	}
	wantSigned, err := os.ReadFile(katSignedInput)
	if err != nil {
		t.Fatalf("%v (run make vectors)", err)
	}
	if !bytes.Equal(file, wantFile) {
		t.Fatalf("Sign makes another file than %s:\n%s", katBundleFile, file)
	}
	if !bytes.Equal(signed, wantSigned) {
		t.Fatalf("the signed input is not %s:\n%s", katSignedInput, signed)
	}
	// What a verifier does: the "bundle" member's bytes as they are in the file, with the
	// whitespace outside strings removed.
	var s struct {
		Bundle    json.RawMessage `json:"bundle"`
		Signature string          `json:"signature"`
	}
	if err := json.Unmarshal(wantFile, &s); err != nil {
		t.Fatal(err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, s.Bundle); err != nil {
		t.Fatal(err)
	}
	sig, _ := hex.DecodeString(s.Signature)
	if !bytes.Equal(compact.Bytes(), wantSigned) || !ed25519.Verify(reg.Public().(ed25519.PublicKey), wantSigned, sig) {
		t.Fatal("the signature does not verify over the compacted bundle member")
	}
	if !bytes.Contains(wantSigned, []byte(`region=eu\u0026tier=1`)) {
		t.Fatal("the signed input does not escape & as \\u0026")
	}
	if _, err := ParsePinned(wantFile, fp); err != nil {
		t.Fatal(err)
	}
	t.Logf("fingerprint %s, signed input %d bytes", fp, len(wantSigned))
}
