package pairing

import (
	"bytes"
	"crypto"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/cloudflare/circl/expander"
	bls "github.com/consensys/gnark-crypto/ecc/bls12-381"
	"github.com/consensys/gnark-crypto/ecc/bls12-381/fr"
	"github.com/consensys/gnark-crypto/field/hash"
)

// Test vectors of RFC 9380, kept in testdata/rfc9380 in our own format. Each file
// names its source; the values are the RFC's.

type rfcHashToG1File struct {
	Source  string `json:"source"`
	Note    string `json:"note"`
	Suite   string `json:"suite"`
	DST     string `json:"dst"`
	Vectors []struct {
		Msg string `json:"msg"`
		X   string `json:"x"`
		Y   string `json:"y"`
	} `json:"vectors"`
}

type rfcExpandFile struct {
	Source  string `json:"source"`
	Note    string `json:"note"`
	Hash    string `json:"hash"`
	DST     string `json:"dst"`
	Vectors []struct {
		Msg          string `json:"msg"`
		LenInBytes   string `json:"len_in_bytes"`
		DSTPrime     string `json:"dst_prime"`
		MsgPrime     string `json:"msg_prime"`
		UniformBytes string `json:"uniform_bytes"`
	} `json:"vectors"`
}

func rfcLoad(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func rfcUnhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.TrimPrefix(s, "0x"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rfcMsgName gives the short name the RFC uses for a message.
func rfcMsgName(msg string) string {
	switch {
	case msg == "":
		return "empty"
	case len(msg) > 16:
		return msg[:5] + "..." + strconv.Itoa(len(msg))
	default:
		return msg
	}
}

// TestHashToG1RFC9380 checks HashToG1 against RFC 9380, Appendix J.9.1.
func TestHashToG1RFC9380(t *testing.T) {
	var f rfcHashToG1File
	rfcLoad(t, "testdata/rfc9380/hash_to_g1_sha256_ro.json", &f)
	if !strings.Contains(f.Source, "RFC 9380, Appendix J.9.1") {
		t.Fatalf("unexpected source %q", f.Source)
	}
	if f.Suite != "BLS12381G1_XMD:SHA-256_SSWU_RO_" || f.DST != "QUUX-V01-CS02-with-BLS12381G1_XMD:SHA-256_SSWU_RO_" {
		t.Fatalf("unexpected suite %q / dst %q", f.Suite, f.DST)
	}
	wantMsgs := []string{"", "abc", "abcdef0123456789", "q128_" + strings.Repeat("q", 128), "a512_" + strings.Repeat("a", 512)}
	if len(f.Vectors) != len(wantMsgs) {
		t.Fatalf("%d vectors, want %d", len(f.Vectors), len(wantMsgs))
	}
	for i, v := range f.Vectors {
		if v.Msg != wantMsgs[i] {
			t.Fatalf("vector %d: msg %q, want %q", i, v.Msg, wantMsgs[i])
		}
		t.Run(rfcMsgName(v.Msg), func(t *testing.T) {
			var want bls.G1Affine
			if _, err := want.X.SetString(v.X); err != nil {
				t.Fatal(err)
			}
			if _, err := want.Y.SetString(v.Y); err != nil {
				t.Fatal(err)
			}
			if !want.IsOnCurve() || !want.IsInSubGroup() {
				t.Fatal("expected point is not in G1: bad vector file")
			}
			// Uncompressed: the coordinates, byte for byte.
			wantXY := append(rfcUnhex(t, v.X), rfcUnhex(t, v.Y)...)
			if raw := want.RawBytes(); !bytes.Equal(raw[:], wantXY) {
				t.Fatalf("gnark re-encoding of the vector differs: %x", raw)
			}

			got := HashToG1([]byte(v.Msg), []byte(f.DST))
			if got.ct == nil {
				t.Fatal("HashToG1 should return the constant-time (circl) form")
			}
			if raw := got.ct.Bytes(); !bytes.Equal(raw, wantXY) {
				t.Errorf("HashToG1 (circl) uncompressed\n got %x\nwant %x", raw, wantXY)
			}
			wantC := want.Bytes()
			if !bytes.Equal(got.Bytes(), wantC[:]) {
				t.Errorf("HashToG1 compressed\n got %x\nwant %x", got.Bytes(), wantC)
			}
			// The reference library agrees with the RFC too.
			ref, err := bls.HashToG1([]byte(v.Msg), []byte(f.DST))
			if err != nil {
				t.Fatal(err)
			}
			if !ref.Equal(&want) {
				t.Errorf("gnark-crypto HashToG1 disagrees with the RFC")
			}
		})
	}
}

// TestExpandMessageXMDRFC9380 checks expand_message_xmd(SHA-256) in both libraries
// against RFC 9380, Appendix K.1. HashToScalar relies on circl's expander.
func TestExpandMessageXMDRFC9380(t *testing.T) {
	var f rfcExpandFile
	rfcLoad(t, "testdata/rfc9380/expand_message_xmd_sha256.json", &f)
	if !strings.Contains(f.Source, "RFC 9380, Appendix K.1") {
		t.Fatalf("unexpected source %q", f.Source)
	}
	if f.Hash != "SHA256" || f.DST != "QUUX-V01-CS02-with-expander-SHA256-128" {
		t.Fatalf("unexpected hash %q / dst %q", f.Hash, f.DST)
	}
	if len(f.Vectors) != 10 {
		t.Fatalf("%d vectors, want 10 (5 messages × len_in_bytes 0x20, 0x80)", len(f.Vectors))
	}
	dst := []byte(f.DST)
	wantDSTPrime := append(append([]byte(nil), dst...), byte(len(dst)))
	for _, v := range f.Vectors {
		n, err := strconv.ParseUint(v.LenInBytes, 0, 16)
		if err != nil || (n != 0x20 && n != 0x80) {
			t.Fatalf("bad len_in_bytes %q", v.LenInBytes)
		}
		t.Run(rfcMsgName(v.Msg)+"/"+v.LenInBytes, func(t *testing.T) {
			want := rfcUnhex(t, v.UniformBytes)
			if len(want) != int(n) {
				t.Fatalf("uniform_bytes is %d bytes, want %d", len(want), n)
			}
			if !bytes.Equal(rfcUnhex(t, v.DSTPrime), wantDSTPrime) {
				t.Fatalf("DST_prime in the file does not match DST")
			}
			// msg_prime = Z_pad ‖ msg ‖ I2OSP(len_in_bytes, 2) ‖ I2OSP(0, 1) ‖ DST_prime
			mp := append(make([]byte, 64), v.Msg...)
			mp = append(mp, byte(n>>8), byte(n), 0)
			mp = append(mp, wantDSTPrime...)
			if !bytes.Equal(rfcUnhex(t, v.MsgPrime), mp) {
				t.Fatalf("msg_prime in the file does not match msg")
			}

			got := expander.NewExpanderMD(crypto.SHA256, dst).Expand([]byte(v.Msg), uint(n))
			if !bytes.Equal(got, want) {
				t.Errorf("circl expander\n got %x\nwant %x", got, want)
			}
			got2, err := hash.ExpandMsgXmd([]byte(v.Msg), dst, int(n))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got2, want) {
				t.Errorf("gnark-crypto ExpandMsgXmd\n got %x\nwant %x", got2, want)
			}
		})
	}
}

// TestHashToScalarMatchesGnark checks HashToScalar against gnark-crypto's fr.Hash,
// which implements RFC 9380 hash_to_field for Fr with L = 48, on random inputs and on
// the protocol's own tags.
func TestHashToScalarMatchesGnark(t *testing.T) {
	rng := rand.New(rand.NewChaCha8([32]byte{'h', '2', 's'}))
	check := func(msg, dst []byte) {
		t.Helper()
		want, err := fr.Hash(msg, dst, 1)
		if err != nil {
			t.Fatal(err)
		}
		wb := want[0].Bytes()
		if got := HashToScalar(msg, dst).Bytes(); !bytes.Equal(got, wb[:]) {
			t.Fatalf("HashToScalar(%x, %q)\n got %x\nwant %x", msg, dst, got, wb)
		}
	}
	check(nil, []byte(DSTPIN))
	check([]byte{}, []byte("x"))
	for _, dst := range []string{DSTPIN, DSTDLEQ, DSTNonce, DSTLogin} {
		check([]byte("polyroot"), []byte(dst))
	}
	for i := 0; i < 200; i++ {
		msg := make([]byte, rng.IntN(300))
		dst := make([]byte, 1+rng.IntN(255)) // gnark-crypto refuses DSTs over 255 bytes
		for j := range msg {
			msg[j] = byte(rng.Uint32())
		}
		for j := range dst {
			dst[j] = byte(rng.Uint32())
		}
		check(msg, dst)
	}
}
