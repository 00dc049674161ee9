package oidcop

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// FuzzCheckAssertion: a private_key_jwt client assertion posted to the token
// endpoint never panics the check that runs before the library's; the check refuses
// (and the store records) only assertions validly signed by their client's key, and
// an assertion it lets through once, if fresh and validly signed, is refused the
// second time.
func FuzzCheckAssertion(f *testing.F) {
	key, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), bytes.Repeat([]byte{7}, 32))
	if err != nil {
		f.Fatal(err)
	}
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	now := time.Unix(1_800_000_000, 0)
	_, signing, _ := ed25519.GenerateKey(nil)
	p, err := New(Config{Issuer: "https://auth.example/oidc", LoginURL: "https://auth.example/login", SigningKey: signing,
		Store: &memStore{m: map[string]memEntry{}}, Now: func() time.Time { return now },
		Authenticate: func(string, time.Time) (*Login, error) { return nil, nil },
		Clients:      []Client{{ID: "svc", AuthMethod: AuthPrivateKeyJWT, JWKS: jwks, RedirectURIs: []string{"https://svc.example/cb"}}}})
	if err != nil {
		f.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1").WithType("JWT"))
	if err != nil {
		f.Fatal(err)
	}
	assertion := func(c jwt.Claims) string {
		s, err := jwt.Signed(signer).Claims(c).Serialize()
		if err != nil {
			f.Fatal(err)
		}
		return s
	}
	base := jwt.Claims{Issuer: "svc", Subject: "svc", Audience: jwt.Audience{"https://auth.example/oidc"}, ID: "jti-1",
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute))}
	f.Add(assertion(base))
	noJTI := base
	noJTI.ID = ""
	f.Add(assertion(noJTI))
	long := base
	long.ID, long.Expiry = "jti-2", jwt.NewNumericDate(now.Add(time.Hour))
	f.Add(assertion(long))
	old := base
	old.ID, old.IssuedAt, old.Expiry = "jti-3", jwt.NewNumericDate(now.Add(-time.Hour)), jwt.NewNumericDate(now.Add(-time.Hour+time.Minute))
	f.Add(assertion(old))
	other := base
	other.Issuer, other.ID = "shop", "jti-4"
	f.Add(assertion(other))
	f.Add(strings.Repeat("A", 20) + "." + strings.Repeat("B", 20) + "." + strings.Repeat("C", 20))
	f.Add("")
	check := func(raw string) error {
		r := httptest.NewRequest("POST", "/oidc/oauth/token", strings.NewReader(url.Values{"client_assertion": {raw}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return p.checkAssertion(r)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		err := check(raw)
		// What the check could rely on: the assertion verified with the client's key.
		var claims jwt.Claims
		tok, perr := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
		signed := perr == nil && len(tok.Headers) == 1 && tok.Headers[0].KeyID == "k1" && tok.Claims(&key.PublicKey, &claims) == nil && claims.Issuer == "svc"
		if err != nil {
			if !signed {
				t.Fatalf("refused an assertion not signed by the client: %v", err)
			}
			return
		}
		fresh := signed && claims.ID != "" && len(claims.ID) <= maxJTI && claims.IssuedAt != nil && claims.Expiry != nil &&
			claims.Expiry.Time().Sub(claims.IssuedAt.Time()) <= maxAssertionLife && claims.Expiry.Time().After(now.Add(-time.Second))
		if fresh && check(raw) == nil {
			t.Fatalf("a fresh assertion was let through twice: %+v", claims)
		}
	})
}
