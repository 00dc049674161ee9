package middleware

import (
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// sign signs c with key, with kid in the header unless it is empty.
func sign(t testing.TB, key ed25519.PrivateKey, c Claims, kid string) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func claims(now time.Time, aud, iss string, ttl time.Duration) Claims {
	return Claims{IDHash: strings.Repeat("ab", 32), RegisteredClaims: jwt.RegisteredClaims{
		Issuer: iss, Subject: "alice", Audience: jwt.ClaimStrings{aud}, ID: "jti-1",
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}}
}

func TestMiddleware(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	_, other, _ := ed25519.GenerateKey(nil)
	jwks, _ := json.Marshal(JWKS{Keys: []JWK{PublicJWK(pub)}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/.well-known/jwks.json" {
			w.Write(jwks)
		}
	}))
	defer srv.Close()
	keys, err := FetchKeys(t.Context(), nil, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	app := New(keys, "example.test", "example.test")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := ClaimsFrom(r.Context())
		if !ok || c.Subject != "alice" {
			t.Error("claims missing in the context")
		}
		w.Write([]byte("hello " + c.Subject))
	}))
	now := time.Now()
	kid := KeyID(pub)
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims(now, "example.test", "example.test", time.Minute)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	hs, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims(now, "example.test", "example.test", time.Minute)).SignedString([]byte(pub))
	noExp := claims(now, "example.test", "example.test", time.Minute)
	noExp.ExpiresAt = nil
	cases := map[string]struct {
		token string
		want  int
	}{
		"valid":                     {sign(t, priv, claims(now, "example.test", "example.test", time.Minute), kid), 200},
		"valid, no kid":             {sign(t, priv, claims(now, "example.test", "example.test", time.Minute), ""), 200},
		"expired":                   {sign(t, priv, claims(now.Add(-time.Hour), "example.test", "example.test", time.Minute), kid), 401},
		"not yet valid":             {sign(t, priv, claims(now.Add(time.Hour), "example.test", "example.test", time.Minute), kid), 401},
		"wrong audience":            {sign(t, priv, claims(now, "other.test", "example.test", time.Minute), kid), 401},
		"wrong issuer":              {sign(t, priv, claims(now, "example.test", "evil.test", time.Minute), kid), 401},
		"no expiry":                 {sign(t, priv, noExp, kid), 401},
		"other key":                 {sign(t, other, claims(now, "example.test", "example.test", time.Minute), kid), 401},
		"alg none":                  {none, 401},
		"HS256 with the public key": {hs, 401},
		"garbage":                   {"a.b.c", 401},
		"missing":                   {"", 401},
	}
	for name, c := range cases {
		req := httptest.NewRequest("GET", "/api", nil)
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		rec := httptest.NewRecorder()
		app.ServeHTTP(rec, req)
		if rec.Code != c.want {
			t.Errorf("%s: %d, want %d", name, rec.Code, c.want)
		}
		if rec.Code == 401 {
			var body map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body["code"] == "" {
				t.Errorf("%s: 401 body is not JSON {code, message}: %s", name, rec.Body)
			}
		}
	}
}

func TestParseJWKS(t *testing.T) {
	for _, bad := range []string{`{}`, `{"keys":[{"kty":"EC","crv":"P-256","x":"AA"}]}`, `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AAAA"}]}`, `nope`} {
		if _, err := ParseJWKS([]byte(bad)); err == nil {
			t.Errorf("ParseJWKS(%s) accepted", bad)
		}
	}
	// RFC 8037 appendix A.3: the thumbprint of the example key.
	x := "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
	ks, err := ParseJWKS([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + x + `"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ks.keys["kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"]; !ok {
		t.Fatalf("kid is not the RFC 7638 thumbprint: %v", ks.keys)
	}
}
