package wire

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"
	"time"
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
	r, err := NewRedeemRequest(code, "api.example.com", key1, nil)
	if err != nil {
		t.Fatal(err)
	}
	id, key := CodeSecrets(n)
	if !bytes.Equal(r.CodeID, id[:]) || bytes.Contains(r.CodeID, []byte(n)) || !bytes.Equal(r.Proof, CodeProof(key, "api.example.com", key1, nil)) {
		t.Fatal("request does not carry the code's ID and proof")
	}
	if bytes.Equal(r.Proof, CodeProof(key, "api.example.com", key2, nil)) || bytes.Equal(r.Proof, CodeProof(key, "api.example.org", key1, nil)) {
		t.Fatal("the proof does not bind the key and the domain")
	}
	two, err := NewRedeemRequest(code, "api.example.com", key1, key2)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(two.PermitKey, key2) || !bytes.Equal(two.Proof, CodeProof(key, "api.example.com", key1, key2)) ||
		bytes.Equal(two.Proof, r.Proof) || bytes.Equal(two.Proof, CodeProof(key, "api.example.com", key2, key1)) {
		t.Fatal("the proof does not bind the permit key")
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

// TestPackageMAC: the MAC covers every field of the answer and the client key, depends
// on the code's key, and survives the JSON round trip (not_after in another zone).
func TestPackageMAC(t *testing.T) {
	_, key := CodeSecrets("ABCDEFGHIJKLMNOPQRST")
	_, otherKey := CodeSecrets("BBCDEFGHIJKLMNOPQRST")
	notAfter := time.Date(2027, 1, 2, 3, 4, 5, 600, time.FixedZone("X", 3600))
	clientKey := bytes.Repeat([]byte{7}, 32)
	base := EnrolPackage{Domain: "api.example.com", ID: "alice", Salt: bytes.Repeat([]byte{1}, 16), IDHash: "ab",
		NotAfter: &notAfter, ClientTicket: "ct", PermitTicket: "pt", FirstSlot: 5, LastSlot: 9, BundleFingerprint: "fp"}
	mac := PackageMAC(key, &base, clientKey, nil)
	b, _ := json.Marshal(base)
	var back EnrolPackage
	if err := json.Unmarshal(b, &back); err != nil || !bytes.Equal(PackageMAC(key, &back, clientKey, nil), mac) {
		t.Fatalf("the MAC does not survive JSON: %v", err)
	}
	later := notAfter.Add(time.Nanosecond)
	for name, change := range map[string]func(p *EnrolPackage){
		"domain": func(p *EnrolPackage) { p.Domain += "x" }, "id": func(p *EnrolPackage) { p.ID = "mallory" },
		"salt": func(p *EnrolPackage) { p.Salt = p.Salt[:15] }, "idhash": func(p *EnrolPackage) { p.IDHash = "cd" },
		"device": func(p *EnrolPackage) { p.Device = true }, "not_after": func(p *EnrolPackage) { p.NotAfter = &later },
		"no-not_after":  func(p *EnrolPackage) { p.NotAfter = nil },
		"client_ticket": func(p *EnrolPackage) { p.ClientTicket = "cu" }, "permit_ticket": func(p *EnrolPackage) { p.PermitTicket = "" },
		"first_slot": func(p *EnrolPackage) { p.FirstSlot++ }, "last_slot": func(p *EnrolPackage) { p.LastSlot-- },
		"bundle": func(p *EnrolPackage) { p.BundleFingerprint = "fq" },
		// Length prefixes: a byte moved from one field to the next changes the MAC.
		"boundary": func(p *EnrolPackage) { p.Domain, p.ID = "api.example.co", "malice" },
	} {
		p := base
		change(&p)
		if bytes.Equal(PackageMAC(key, &p, clientKey, nil), mac) {
			t.Errorf("fail/%s: the MAC does not cover it", name)
		}
	}
	if bytes.Equal(PackageMAC(otherKey, &base, clientKey, nil), mac) {
		t.Error("fail/other-code: same MAC")
	}
	if bytes.Equal(PackageMAC(key, &base, bytes.Repeat([]byte{8}, 32), nil), mac) {
		t.Error("fail/other-client-key: same MAC")
	}
	withPermit := PackageMAC(key, &base, clientKey, bytes.Repeat([]byte{8}, 32))
	if bytes.Equal(withPermit, mac) || bytes.Equal(withPermit, PackageMAC(key, &base, clientKey, bytes.Repeat([]byte{9}, 32))) {
		t.Error("fail/other-permit-key: same MAC")
	}
	// The known answer of docs/protocol.md (6.4), also computed from that text alone
	// with Python's hmac.
	_, katKey := CodeSecrets("ABCDEFGHIJKLMNOP2345")
	katNotAfter := time.Date(2027, 1, 2, 3, 4, 5, 600, time.UTC)
	kat := EnrolPackage{Domain: "api.example.com", ID: "alice@example.com", Salt: bytes.Repeat([]byte{1}, 16), IDHash: "ab",
		NotAfter: &katNotAfter, ClientTicket: "ct", PermitTicket: "pt", FirstSlot: 5, LastSlot: 9, BundleFingerprint: "fp"}
	if got := hex.EncodeToString(PackageMAC(katKey, &kat, bytes.Repeat([]byte{7}, 32), nil)); got != "93629dc58849c6185d41681b7f00726846b4b5f7bddf0e9026497deb3d31d39c" {
		t.Errorf("known answer: %s", got)
	}
	if got := hex.EncodeToString(PackageMAC(katKey, &kat, bytes.Repeat([]byte{7}, 32), bytes.Repeat([]byte{8}, 32))); got != katWithPermitKey {
		t.Errorf("known answer with a permit key: %s", got)
	}
	if got := hex.EncodeToString(CodeProof(katKey, "api.example.com", bytes.Repeat([]byte{7}, 32), bytes.Repeat([]byte{8}, 32))); got != katProofWithPermitKey {
		t.Errorf("known answer of the proof with a permit key: %s", got)
	}
}

// The known answers of docs/protocol.md (6.4) with a permit key (32 bytes 08),
// computed from that text alone with Python's hmac.
const (
	katWithPermitKey      = "eaac5bd7290c6eb18d7d7d65b9ad869f23beb4dc602f3bd2ac5fe927f941e555"
	katProofWithPermitKey = "ee63a4f8ff52b1a524bdcc2e4f5e9c022ece69d7dd7e68c05301d9d33fc7c94a"
)
