package wire

import (
	"bytes"
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/cloudflare/circl/dh/x25519"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestHPKEVector: RFC 9180, Appendix A.2.1 (DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
// ChaCha20-Poly1305, base mode), the message of sequence number 0.
func TestHPKEVector(t *testing.T) {
	var (
		info  = unhex(t, "4f6465206f6e2061204772656369616e2055726e")
		skEm  = unhex(t, "f4ec9b33b792c372c1d2c2063507b684ef925b8c75a42dbcbf57d63ccd381600")
		pkRm  = unhex(t, "4310ee97d88cc1f088a5576c77ab0cf5c3ac797f3d95139c6c84b5429c59662a")
		skRm  = unhex(t, "8057991eef8f1f1af18f4a9491d16a1ce333f695d4db8e38da75975c4478e0fb")
		enc   = unhex(t, "1afa08d3dec047a643885163f1180476fa7ddb54c6a8029ea33f95796bf2ac4a")
		aad   = unhex(t, "436f756e742d30")
		pt    = unhex(t, "4265617574792069732074727574682c20747275746820626561757479")
		ct    = unhex(t, "1c5250d8034ec2b784ba2cfd69dbdb8af406cfe3ff938e131f0def8c8b60b4db21993c62ce81883d2dd1b51a28")
		want  = append(enc, ct...)
		pk, _ = sealKey(pkRm)
		sk, _ = sealKey(skRm)
	)
	got, err := hpkeSeal(bytes.NewReader(skEm), pk, info, aad, pt)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("seal: %x, %v\nwant %x", got, err, want)
	}
	if got, err := hpkeOpen(sk, info, aad, want); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("open: %x, %v", got, err)
	}
	for name, sealed := range map[string][]byte{
		"fail/tag":         append(want[:len(want)-1:len(want)-1], want[len(want)-1]^1),
		"fail/enc":         append([]byte{enc[0] ^ 1}, want[1:]...),
		"fail/short":       want[:len(enc)+15],
		"fail/small-order": append(make([]byte, 32), ct...),
	} {
		if _, err := hpkeOpen(sk, info, aad, sealed); err != ErrSealed {
			t.Errorf("%s: %v, want ErrSealed", name, err)
		}
	}
	var zero x25519.Key
	if _, err := hpkeSeal(rand.Reader, &zero, info, aad, pt); err != errHPKEKey {
		t.Errorf("seal to a key of small order: %v, want errHPKEKey", err)
	}
}

// FuzzHPKEStdlib: what hpkeSeal seals crypto/hpke opens, and what crypto/hpke seals
// hpkeOpen opens, for any info, aad and plaintext.
func FuzzHPKEStdlib(f *testing.F) {
	f.Add([]byte("info"), []byte("aad"), []byte("plaintext"))
	f.Add([]byte{}, []byte{}, []byte{})
	kem := hpke.DHKEM(ecdh.X25519())
	f.Fuzz(func(t *testing.T, info, aad, pt []byte) {
		pub, priv, err := NewSealKey()
		if err != nil {
			t.Fatal(err)
		}
		pk, _ := sealKey(pub)
		sk, _ := sealKey(priv)
		stdPriv, err := kem.NewPrivateKey(priv)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(stdPriv.PublicKey().Bytes(), pub) {
			t.Fatal("crypto/hpke derives another public key")
		}

		sealed, err := hpkeSeal(rand.Reader, pk, info, aad, pt)
		if err != nil {
			t.Fatal(err)
		}
		r, err := hpke.NewRecipient(sealed[:32], stdPriv, hpke.HKDFSHA256(), hpke.ChaCha20Poly1305(), info)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := r.Open(aad, sealed[32:]); err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("crypto/hpke opens %x, %v", got, err)
		}

		enc, s, err := hpke.NewSender(stdPriv.PublicKey(), hpke.HKDFSHA256(), hpke.ChaCha20Poly1305(), info)
		if err != nil {
			t.Fatal(err)
		}
		ct, err := s.Seal(aad, pt)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := hpkeOpen(sk, info, aad, append(enc, ct...)); err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("hpkeOpen opens %x, %v", got, err)
		}
	})
}
