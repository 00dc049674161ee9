package wire

import (
	"bytes"
	"errors"
	"testing"
)

func TestSealRoundTrip(t *testing.T) {
	pub, priv, err := NewSealKey()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := SealPublicKey(priv); err != nil || !bytes.Equal(got, pub) {
		t.Fatalf("SealPublicKey: %x, %v", got, err)
	}
	c := SealContext{Domain: "api.example.com", DTA: 2, Kind: KindPermit, Slot: 7, TicketSHA256: [32]byte{1}}
	msg := []byte("share and proof")
	sealed, err := Seal(pub, &c, msg)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Open(priv, &c, sealed); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("Open: %q, %v", got, err)
	}
	_, other, _ := NewSealKey()
	for name, tc := range map[string]struct {
		priv []byte
		mut  func(*SealContext)
	}{
		"fail/other-key":    {other, func(*SealContext) {}},
		"fail/other-dta":    {priv, func(c *SealContext) { c.DTA = 3 }},
		"fail/other-kind":   {priv, func(c *SealContext) { c.Kind = KindClient }},
		"fail/other-slot":   {priv, func(c *SealContext) { c.Slot = 8 }},
		"fail/other-domain": {priv, func(c *SealContext) { c.Domain = "api.example.org" }},
		"fail/other-ticket": {priv, func(c *SealContext) { c.TicketSHA256[0] ^= 1 }},
	} {
		cc := c
		tc.mut(&cc)
		if _, err := Open(tc.priv, &cc, sealed); !errors.Is(err, ErrSealed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if again, _ := Seal(pub, &c, msg); bytes.Equal(again, sealed) {
		t.Fatal("sealing is not randomised: the hash of a sealed share would identify the share")
	}
}

func TestCodeProof(t *testing.T) {
	code := "abcd-efgh ijkl-mnop-2345"
	n, err := NormalizeCode(code)
	if err != nil || n != "ABCDEFGHIJKLMNOP2345" {
		t.Fatalf("NormalizeCode: %q, %v", n, err)
	}
	for _, bad := range []string{"", "ABCDEFGHIJKLMNOP234", "ABCDEFGHIJKLMNOP23456", "ABCDEFGHIJKLMNOP2341", "ÀBCDEFGHIJKLMNOP2345"} {
		if _, err := NormalizeCode(bad); !errors.Is(err, ErrCode) {
			t.Errorf("NormalizeCode(%q) accepted", bad)
		}
	}
	key1, key2 := []byte("client key one, 32 bytes long..."), []byte("client key two, 32 bytes long...")
	r, err := NewRedeemRequest(code, "api.example.com", key1)
	if err != nil {
		t.Fatal(err)
	}
	id, key := CodeSecrets(n)
	if !bytes.Equal(r.CodeID, id[:]) || bytes.Contains(r.CodeID, []byte(n)) || !bytes.Equal(r.Proof, CodeProof(key, "api.example.com", key1)) {
		t.Fatal("request does not carry the code's ID and proof")
	}
	if bytes.Equal(r.Proof, CodeProof(key, "api.example.com", key2)) || bytes.Equal(r.Proof, CodeProof(key, "api.example.org", key1)) {
		t.Fatal("the proof does not bind the key and the domain")
	}
}

func FuzzOpen(f *testing.F) {
	pub, priv, _ := NewSealKey()
	c := SealContext{Domain: "d", DTA: 1, Kind: KindClient}
	good, _ := Seal(pub, &c, []byte("x"))
	f.Add(good)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, sealed []byte) {
		if got, err := Open(priv, &c, sealed); err == nil && !bytes.Equal(sealed, good) {
			t.Fatalf("opened a forged ciphertext: %q", got)
		}
	})
}

func FuzzNormalizeCode(f *testing.F) {
	f.Add("ABCD-EFGH-IJKL-MNOP-2345")
	f.Fuzz(func(t *testing.T, code string) {
		n, err := NormalizeCode(code)
		if err != nil {
			return
		}
		if again, err := NormalizeCode(n); err != nil || again != n || len(n) != CodeLength {
			t.Fatalf("%q normalised to %q, then %q (%v)", code, n, again, err)
		}
	})
}
