package ticket

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var (
	now     = time.Unix(1_800_000_000, 0)
	idh     = strings.Repeat("ab", 32)
	sealKey = strings.Repeat("cd", SealKeySize)
	pub     ed25519.PublicKey
	priv    ed25519.PrivateKey
	other   ed25519.PrivateKey
)

func init() {
	pub, priv, _ = ed25519.GenerateKey(nil)
	_, other, _ = ed25519.GenerateKey(nil)
}

func sign(t *testing.T, tk Ticket, key ed25519.PrivateKey) string {
	t.Helper()
	s, err := Sign(tk, key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// claimsToken signs the claims of a client ticket for api.example.com, changed by
// mutate, under header, without Sign's checks: what a registrar's key could sign.
func claimsToken(t *testing.T, header string, mutate func(claims map[string]any)) string {
	t.Helper()
	c := map[string]any{"kind": KindClient, "seal_key": sealKey, "iss": issuer, "sub": idh, "aud": []string{"api.example.com"},
		"exp": now.Add(time.Hour).Unix(), "jti": strings.Repeat("01", 16)}
	mutate(c)
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return compactToken(header, string(b), priv)
}

func TestVerify(t *testing.T) {
	client := Ticket{Domain: "api.example.com", Kind: KindClient, IDHash: idh, SealKey: sealKey, NotAfter: now.Add(time.Hour)}
	permit := Ticket{Domain: "api.example.com", Kind: KindPermit, IDHash: idh, SealKey: sealKey, FirstSlot: 10, LastSlot: 12, NotAfter: now.Add(time.Hour)}
	server := Ticket{Domain: "api.example.com", Kind: KindServer, SealKey: sealKey, NotAfter: now.Add(time.Hour)}
	noneAlg, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"aud": "api.example.com", "kind": "client", "sub": idh, "exp": now.Add(time.Hour).Unix(), "jti": strings.Repeat("00", 16)}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	hsConfusion, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"aud": "api.example.com", "kind": "client", "sub": idh, "exp": now.Add(time.Hour).Unix(), "jti": strings.Repeat("00", 16)}).SignedString([]byte(pub))
	const signHeader, jwtHeader = `{"alg":"EdDSA","typ":"JWT"}`, `{"typ":"JWT","alg":"EdDSA"}` // the fast path, golang-jwt
	set := func(kv ...any) func(map[string]any) {
		return func(c map[string]any) {
			for i := 0; i < len(kv); i += 2 {
				if kv[i+1] == nil {
					delete(c, kv[i].(string))
				} else {
					c[kv[i].(string)] = kv[i+1]
				}
			}
		}
	}
	upper := strings.ToUpper(idh)
	cases := []struct {
		name   string
		token  string
		domain string
		kind   string
		want   error
	}{
		{"ok/claims-fast", claimsToken(t, signHeader, set()), "api.example.com", KindClient, nil},
		{"ok/claims-jwt", claimsToken(t, jwtHeader, set()), "api.example.com", KindClient, nil},
		{"fail/no-issuer", claimsToken(t, signHeader, set("iss", nil)), "api.example.com", KindClient, ErrInvalid},
		{"fail/other-issuer", claimsToken(t, signHeader, set("iss", "someone-else")), "api.example.com", KindClient, ErrInvalid},
		{"fail/other-issuer-jwt", claimsToken(t, jwtHeader, set("iss", "someone-else")), "api.example.com", KindClient, ErrInvalid},
		{"fail/client-upper-case-idhash", claimsToken(t, signHeader, set("sub", upper)), "api.example.com", KindClient, ErrInvalid},
		{"fail/client-upper-case-idhash-jwt", claimsToken(t, jwtHeader, set("sub", upper)), "api.example.com", KindClient, ErrInvalid},
		{"fail/permit-upper-case-idhash", claimsToken(t, signHeader, set("kind", KindPermit, "sub", upper, "first_slot", 1, "last_slot", 1)), "api.example.com", KindPermit, ErrInvalid},
		{"fail/revoke-upper-case-idhash", claimsToken(t, signHeader, set("kind", KindRevoke, "sub", upper, "seal_key", nil)), "api.example.com", KindRevoke, ErrInvalid},
		{"fail/client-long-idhash", claimsToken(t, signHeader, set("sub", idh+"00")), "api.example.com", KindClient, ErrInvalid},
		{"fail/server-with-idhash", claimsToken(t, signHeader, set("kind", KindServer)), "api.example.com", KindServer, ErrInvalid},
		{"fail/server-long-sub", claimsToken(t, signHeader, set("kind", KindServer, "sub", idh+"00")), "api.example.com", KindServer, ErrInvalid},
		{"fail/server-with-idhash-jwt", claimsToken(t, jwtHeader, set("kind", KindServer)), "api.example.com", KindServer, ErrInvalid},
		{"ok/client", sign(t, client, priv), "api.example.com", KindClient, nil},
		{"ok/permit", sign(t, permit, priv), "api.example.com", KindPermit, nil},
		{"ok/server", sign(t, server, priv), "api.example.com", KindServer, nil},
		{"fail/expired", sign(t, Ticket{Domain: "api.example.com", Kind: KindClient, IDHash: idh, SealKey: sealKey, NotAfter: now.Add(-time.Second)}, priv), "api.example.com", KindClient, ErrExpired},
		{"fail/forged", sign(t, client, other), "api.example.com", KindClient, ErrInvalid},
		{"fail/wrong-kind", sign(t, client, priv), "api.example.com", KindPermit, ErrKind},
		{"fail/other-domain", sign(t, client, priv), "api.example.org", KindClient, ErrDomain},
		{"fail/alg-none", noneAlg, "api.example.com", KindClient, ErrInvalid},
		{"fail/alg-confusion-hs256", hsConfusion, "api.example.com", KindClient, ErrInvalid},
		{"fail/garbage", "not.a.jwt", "api.example.com", KindClient, ErrInvalid},
		{"fail/empty", "", "api.example.com", KindClient, ErrInvalid},
		{"fail/oversized", strings.Repeat("a", 5000), "api.example.com", KindClient, ErrInvalid},
		{"fail/truncated", sign(t, client, priv)[:40], "api.example.com", KindClient, ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Verify(tc.token, pub, tc.domain, tc.kind, now)
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if got.Domain != tc.domain || got.Kind != tc.kind || len(got.Nonce) != 32 {
					t.Fatalf("got %+v", got)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestSignRejects(t *testing.T) {
	base := Ticket{Domain: "d", Kind: KindPermit, IDHash: idh, SealKey: sealKey, NotAfter: now}
	cases := map[string]func(*Ticket){
		"fail/no-domain":          func(t *Ticket) { t.Domain = "" },
		"fail/no-expiry":          func(t *Ticket) { t.NotAfter = time.Time{} },
		"fail/short-idhash":       func(t *Ticket) { t.IDHash = "abcd" },
		"fail/slots-reversed":     func(t *Ticket) { t.FirstSlot, t.LastSlot = 5, 4 },
		"fail/too-many-slots":     func(t *Ticket) { t.LastSlot = MaxPermitSlots },
		"fail/unknown-kind":       func(t *Ticket) { t.Kind = "master" },
		"fail/bad-nonce":          func(t *Ticket) { t.Nonce = "xyz" },
		"fail/server-no-key":      func(t *Ticket) { t.Kind, t.SealKey = KindServer, "" },
		"fail/server-bad-key":     func(t *Ticket) { t.Kind, t.SealKey = KindServer, "zz" },
		"fail/client-no-key":      func(t *Ticket) { t.Kind, t.SealKey = KindClient, "" },
		"fail/permit-no-key":      func(t *Ticket) { t.SealKey = "" },
		"fail/short-key":          func(t *Ticket) { t.SealKey = "0102" },
		"fail/upper-case-key":     func(t *Ticket) { t.SealKey = strings.ToUpper(sealKey) },
		"fail/revoke-with-key":    func(t *Ticket) { t.Kind = KindRevoke },
		"fail/slot-wraps":         func(t *Ticket) { t.FirstSlot, t.LastSlot = 1<<64-2, 1<<64-1 },
		"fail/slot-beyond-max":    func(t *Ticket) { t.FirstSlot, t.LastSlot = MaxSlot, MaxSlot+1 },
		"fail/client-no-idhash":   func(t *Ticket) { t.Kind, t.IDHash = KindClient, "" },
		"fail/upper-case-idhash":  func(t *Ticket) { t.IDHash = strings.ToUpper(idh) },
		"fail/server-with-idhash": func(t *Ticket) { t.Kind = KindServer },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			tk := base
			mutate(&tk)
			if _, err := Sign(tk, priv); err == nil {
				t.Fatal("signed an invalid ticket")
			}
		})
	}
}

func TestNonceIsFresh(t *testing.T) {
	tk := Ticket{Domain: "d", Kind: KindClient, IDHash: idh, SealKey: sealKey, NotAfter: now.Add(time.Hour)}
	a, _ := Verify(sign(t, tk, priv), pub, "d", KindClient, now)
	b, _ := Verify(sign(t, tk, priv), pub, "d", KindClient, now)
	if a.Nonce == b.Nonce {
		t.Fatal("two tickets share a nonce")
	}
	if _, err := hex.DecodeString(a.Nonce); err != nil {
		t.Fatal(err)
	}
}

func FuzzVerify(f *testing.F) {
	tk := Ticket{Domain: "d", Kind: KindClient, IDHash: idh, SealKey: sealKey, NotAfter: now.Add(time.Hour)}
	good, _ := Sign(tk, priv)
	f.Add(good)
	f.Add(good[:len(good)-3])
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add(flipSigTrailingBit(f, good))
	f.Add(good[:len(good)-40] + "\r\n" + good[len(good)-40:])
	f.Add(good + "==")
	f.Fuzz(func(t *testing.T, token string) {
		got, err := Verify(token, pub, "d", KindClient, now)
		if err != nil {
			return
		}
		if got.Domain != "d" || got.Kind != KindClient {
			t.Fatalf("accepted %+v", got)
		}
		// One string per ticket: what is accepted is the canonical encoding of its parts.
		for _, part := range strings.Split(token, ".") {
			b, _ := base64.RawURLEncoding.DecodeString(part)
			if base64.RawURLEncoding.EncodeToString(b) != part {
				t.Fatalf("accepted %q, not in its canonical encoding", token)
			}
		}
	})
}
