package middleware

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// fuzzKey is a fixed Ed25519 key, so that tokens signed with it in the seed corpus
// (and in any crasher the fuzzer saves) stay valid from one run to the next.
var fuzzKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))

// fuzzNow is the fixed clock the fuzzed tokens are checked at, for the same reason.
var fuzzNow = time.Unix(1_800_000_000, 0)

// FuzzParseJWKS: a JWKS fetched from the auth server either fails or yields only
// 32-byte Ed25519 keys, and the key set it yields, written out again as a JWKS,
// parses to the same keys.
func FuzzParseJWKS(f *testing.F) {
	pub := fuzzKey.Public().(ed25519.PublicKey)
	good, _ := json.Marshal(JWKS{Keys: []JWK{PublicJWK(pub)}})
	f.Add(good)
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AAAA","kid":"a"},{"kty":"EC"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","alg":"ES256","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ks, err := ParseJWKS(data)
		if err != nil {
			if ks != nil {
				t.Fatal("an error and a key set")
			}
			return
		}
		if len(ks.keys) == 0 {
			t.Fatal("a key set without keys")
		}
		var again JWKS
		for kid, k := range ks.keys {
			if len(k) != ed25519.PublicKeySize {
				t.Fatalf("key %q has %d bytes", kid, len(k))
			}
			again.Keys = append(again.Keys, JWK{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(k), Kid: kid})
		}
		enc, err := json.Marshal(again)
		if err != nil {
			t.Fatal(err)
		}
		ks2, err := ParseJWKS(enc)
		if err != nil {
			t.Fatalf("the key set written out again does not parse: %v\n%s", err, enc)
		}
		if !maps.EqualFunc(ks.keys, ks2.keys, func(a, b ed25519.PublicKey) bool { return a.Equal(b) }) {
			t.Fatalf("the keys changed on a round trip: %v, %v", ks.keys, ks2.keys)
		}
	})
}

// FuzzVerify: a bearer token from the network is accepted (by Verify, and by the
// middleware, which then calls the handler) only if it is an EdDSA JWT whose signature
// verifies with the key set's key, with a subject, the audience and issuer asked for,
// and an expiry after now; anything else gets a 401 JSON answer, never a panic.
func FuzzVerify(f *testing.F) {
	pub := fuzzKey.Public().(ed25519.PublicKey)
	ks := NewKeySet(pub)
	const aud, iss = "example.test", "example.test"
	c := claims(fuzzNow, aud, iss, time.Minute)
	f.Add(sign(f, fuzzKey, c, KeyID(pub)))
	f.Add(sign(f, fuzzKey, c, ""))
	f.Add(sign(f, fuzzKey, c, "other"))
	noSub := c
	noSub.Subject = ""
	f.Add(sign(f, fuzzKey, noSub, ""))
	multi := c
	multi.Audience = jwt.ClaimStrings{"x", aud}
	f.Add(sign(f, fuzzKey, multi, ""))
	f.Add(sign(f, fuzzKey, claims(fuzzNow.Add(-time.Hour), aud, iss, time.Minute), ""))
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, c).SignedString(jwt.UnsafeAllowNoneSignatureType)
	f.Add(none)
	hs, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(pub))
	f.Add(hs)
	f.Add("a.b.c")
	f.Add("")
	called := false
	h := NewWithConfig(Config{Keys: ks, Audience: aud, Issuer: iss, Now: func() time.Time { return fuzzNow }})(
		http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true }))
	f.Fuzz(func(t *testing.T, token string) {
		got, err := ks.Verify(token, aud, iss, fuzzNow)
		if err == nil {
			parts := strings.Split(token, ".")
			if len(parts) != 3 {
				t.Fatalf("accepted a token of %d parts", len(parts))
			}
			sig, derr := base64.RawURLEncoding.DecodeString(parts[2])
			if derr != nil || !ed25519.Verify(pub, []byte(parts[0]+"."+parts[1]), sig) {
				t.Fatalf("accepted a token whose signature does not verify: %q", token)
			}
			var hdr struct {
				Alg string `json:"alg"`
			}
			raw, _ := base64.RawURLEncoding.DecodeString(parts[0])
			if json.Unmarshal(raw, &hdr) != nil || hdr.Alg != "EdDSA" {
				t.Fatalf("accepted a token with header %q", raw)
			}
			if got.Subject == "" || got.Issuer != iss || got.ExpiresAt == nil || !fuzzNow.Before(got.ExpiresAt.Add(Leeway)) {
				t.Fatalf("accepted claims %+v", got)
			}
			if !strings.Contains(strings.Join(got.Audience, "\x00")+"\x00", aud+"\x00") {
				t.Fatalf("accepted audience %q", got.Audience)
			}
		} else if got != nil {
			t.Fatal("an error and claims")
		}

		// Through the middleware, with the token in the header as a client sends it.
		// A header value cannot hold a line break; the transport refuses one.
		if strings.ContainsAny(token, "\r\n\x00") {
			return
		}
		called = false
		req := httptest.NewRequest("GET", "/api", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		trimmed := strings.TrimSpace(token)
		_, verr := ks.Verify(trimmed, aud, iss, fuzzNow)
		switch {
		case trimmed != "" && verr == nil:
			if !called || rec.Code != 200 {
				t.Fatalf("a valid token got %d (handler called: %v)", rec.Code, called)
			}
		default:
			var body map[string]string
			if called || rec.Code != 401 || json.Unmarshal(rec.Body.Bytes(), &body) != nil || body["code"] == "" {
				t.Fatalf("an invalid token got %d %q (handler called: %v)", rec.Code, rec.Body, called)
			}
		}
	})
}

// answerTransport answers every request with status and body, so that the
// introspection answer is whatever the fuzzer makes it, without a network.
type answerTransport struct {
	status int
	body   []byte
}

func (a answerTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: a.status, Body: io.NopCloser(bytes.NewReader(a.body)), Header: http.Header{}}, nil
}

// FuzzIntrospectionAnswer: the auth server's answer to an introspection (read by the
// app's middleware) gives an error or a verdict, never a panic; a token is taken as
// active only when the answer's first JSON value says so for this very token.
func FuzzIntrospectionAnswer(f *testing.F) {
	f.Add(200, []byte(`{"active":true,"sub":"alice","jti":"jti-1"}`))
	f.Add(200, []byte(`{"active":true,"sub":"alice","jti":"jti-2"}`))
	f.Add(200, []byte(`{"active":false}`))
	f.Add(200, []byte(`{"active":"yes"}`))
	f.Add(200, []byte(`{"active":true,"sub":"alice","jti":"jti-1"} trailing`))
	f.Add(401, []byte(`{"active":true}`))
	f.Add(200, []byte(``))
	c := claims(fuzzNow, "example.test", "example.test", time.Minute)
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		in := NewIntrospector("https://auth.example", "secret", &http.Client{Transport: answerTransport{status, body}}, -1)
		in.now = func() time.Time { return fuzzNow }
		revoked, err := in.Revoked(context.Background(), "tok", &c)
		if err != nil {
			if revoked {
				t.Fatal("an error and a verdict")
			}
			return
		}
		if status != 200 {
			t.Fatalf("status %d read as a verdict", status)
		}
		var res struct {
			Active bool   `json:"active"`
			Sub    string `json:"sub"`
			JTI    string `json:"jti"`
		}
		if json.NewDecoder(bytes.NewReader(body)).Decode(&res) != nil {
			t.Fatalf("a verdict from a body that is not JSON: %q", body)
		}
		if !revoked && (!res.Active || res.Sub != c.Subject || res.JTI != c.ID) {
			t.Fatalf("active from %q", body)
		}
		if revoked && res.Active {
			t.Fatalf("revoked from %q", body)
		}
	})
}
