// Package middleware lets an app backend accept only requests that carry a valid
// polyroot access token: a JWT signed with EdDSA (Ed25519) by the auth server, whose
// keys the server publishes at /.well-known/jwks.json.
//
//	keys, err := middleware.FetchKeys(ctx, nil, "https://auth.example.com")
//	mw := middleware.New(keys, "example.com", "example.com")
//	http.Handle("/api/", mw(api))
//	// in api: c, _ := middleware.ClaimsFrom(r.Context()); c.Subject is the app-level ID
//
// Security invariants: only EdDSA is accepted (never "none", never HMAC with a public
// key as secret); the signature, exp (required), nbf, iat, aud and iss are checked with
// a small clock leeway; a refused request gets 401 JSON {code, message} and the handler
// is not called.
//
// # Caveats
//
// Access tokens are bearer tokens: anyone who holds one can use it until it expires.
// For proof of possession, an app in the auth server's process can look up the login's
// session key by the token's ID (server.Server.SessionKey). Keys fetched with FetchKeys
// are not refreshed: fetch again after the server rotates its key.
//
// # Revocation
//
// New checks tokens without the network, so it cannot see a revocation: a revoked
// token (POST /v1/admin/tokens/revoke on the auth server, or any token of a revoked
// identity) is accepted until it expires, up to the server's token lifetime (15
// minutes by default). An app that must refuse revoked tokens sooner sets
// Config.Revoked, usually to an Introspector's Revoked:
//
//	in := middleware.NewIntrospector("https://auth.example.com", os.Getenv("INTROSPECTION_TOKEN"), nil, 0)
//	mw := middleware.NewWithConfig(middleware.Config{Keys: keys, Audience: "example.com",
//		Issuer: "example.com", Revoked: in.Revoked})
//
// The Introspector asks the server's POST /v1/token/introspect (RFC 7662, with the
// server's introspection token) about each token once per CacheFor (default 5 s) and
// remembers the answer: a revocation takes effect in the app within CacheFor (the
// revocation delay), at the cost of one request to the auth server per token and
// CacheFor while the token is in use. While the auth server cannot be reached, requests
// fail with 503 "revocation_unknown" once their token's answer is older than CacheFor:
// the middleware fails closed. CacheFor trades the delay against that load and
// dependency; New is the other end (no dependency, a delay of the token lifetime).
// Config.Revoked may also be any other check, e.g. a list the app keeps itself.
package middleware

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Leeway is the clock skew tolerated on exp, nbf and iat.
const Leeway = 5 * time.Second

// Claims are an access token's claims: the standard ones (Subject is the app-level
// identity, ID the token's jti) and the identity hash.
type Claims struct {
	IDHash string `json:"idh"` // hex
	// AMR lists how the identity logged in (RFC 8176 authentication methods):
	// MethodMPin always, MethodPIN for a person, MethodChannelBound when the login was
	// bound to the client's TLS channel. Tokens issued before this claim have none.
	AMR []string `json:"amr,omitempty"`
	// AuthRequest is the OpenID Provider auth request the login was for
	// (wire.FinishRequest.AuthRequest), if any: only a token that names it completes
	// that request.
	AuthRequest string `json:"auth_request,omitempty"`
	jwt.RegisteredClaims
}

// Authentication methods of the amr claim.
const (
	// MethodMPin: the M-Pin Full mutual login (token, permit and, for a person, PIN).
	MethodMPin = "mpin"
	// MethodPIN: a PIN was part of the proof (RFC 8176 "pin"); devices log in without.
	MethodPIN = "pin"
	// MethodChannelBound: the login transcript held the RFC 9266 tls-exporter binding
	// of the client's TLS connection, so an interceptor of that connection would have
	// been detected. It says nothing of the connection the token arrives on: the token
	// is a bearer token. Browser logins (no exporter in a page) lack it.
	MethodChannelBound = "tls-cb"
)

// A JWK is one RFC 7517/8037 OKP Ed25519 public key.
type JWK struct {
	Kty string `json:"kty"` // "OKP"
	Crv string `json:"crv"` // "Ed25519"
	X   string `json:"x"`   // base64url public key
	Kid string `json:"kid"`
	Use string `json:"use,omitempty"`
	Alg string `json:"alg,omitempty"`
}

// A JWKS is a JSON Web Key Set.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// KeyID returns the RFC 7638 thumbprint of an Ed25519 public key, the kid the server
// uses.
func KeyID(pub ed25519.PublicKey) string {
	x := base64.RawURLEncoding.EncodeToString(pub)
	h := sha256.Sum256([]byte(`{"crv":"Ed25519","kty":"OKP","x":"` + x + `"}`))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// PublicJWK returns the JWK of an Ed25519 public key.
func PublicJWK(pub ed25519.PublicKey) JWK {
	return JWK{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(pub), Kid: KeyID(pub), Use: "sig", Alg: "EdDSA"}
}

// A KeySet holds the Ed25519 keys tokens may be signed with, by kid.
type KeySet struct {
	keys map[string]ed25519.PublicKey
}

// NewKeySet returns a key set of the given keys.
func NewKeySet(keys ...ed25519.PublicKey) *KeySet {
	ks := &KeySet{keys: map[string]ed25519.PublicKey{}}
	for _, k := range keys {
		ks.keys[KeyID(k)] = k
	}
	return ks
}

// ParseJWKS reads a JWKS, keeping its OKP Ed25519 keys; it fails if there are none.
func ParseJWKS(data []byte) (*KeySet, error) {
	var set JWKS
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("middleware: JWKS: %w", err)
	}
	ks := &KeySet{keys: map[string]ed25519.PublicKey{}}
	for _, k := range set.Keys {
		if k.Kty != "OKP" || k.Crv != "Ed25519" || (k.Alg != "" && k.Alg != "EdDSA") {
			continue
		}
		x, err := base64.RawURLEncoding.DecodeString(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("middleware: JWKS key %q is not an Ed25519 key", k.Kid)
		}
		kid := k.Kid
		if kid == "" {
			kid = KeyID(x)
		}
		ks.keys[kid] = ed25519.PublicKey(x)
	}
	if len(ks.keys) == 0 {
		return nil, errors.New("middleware: JWKS holds no Ed25519 key")
	}
	return ks, nil
}

// FetchKeys fetches the auth server's JWKS from serverURL + "/.well-known/jwks.json".
func FetchKeys(ctx context.Context, client *http.Client, serverURL string) (*KeySet, error) {
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(serverURL, "/")+"/.well-known/jwks.json", nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("middleware: fetching the JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("middleware: fetching the JWKS: HTTP %d", resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("middleware: fetching the JWKS: %w", err)
	}
	return ParseJWKS(data)
}

func (ks *KeySet) lookup(t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	if kid == "" && len(ks.keys) == 1 {
		for _, k := range ks.keys {
			return k, nil
		}
	}
	if k, ok := ks.keys[kid]; ok {
		return k, nil
	}
	return nil, errors.New("unknown key")
}

// Verify checks an access token and returns its claims.
func (ks *KeySet) Verify(token, audience, issuer string, now time.Time) (*Claims, error) {
	var c Claims
	_, err := jwt.ParseWithClaims(token, &c, ks.lookup,
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithAudience(audience),
		jwt.WithIssuer(issuer),
		jwt.WithLeeway(Leeway),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	if err != nil {
		return nil, err
	}
	if c.Subject == "" {
		return nil, errors.New("token without subject")
	}
	return &c, nil
}

type ctxKey struct{}

// ClaimsFrom returns the claims New put in a request's context.
func ClaimsFrom(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(ctxKey{}).(*Claims)
	return c, ok
}

// BearerToken returns the token of an "Authorization: Bearer" header.
func BearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if len(h) < 7 || !strings.EqualFold(h[:7], "Bearer ") {
		return "", false
	}
	t := strings.TrimSpace(h[7:])
	return t, t != ""
}

// New returns middleware that passes on only requests with a valid access token for
// audience from issuer (both the domain's name with polyroot's server), with the
// claims in the request's context, and answers 401 JSON otherwise. It does not check
// revocation: see NewWithConfig.
func New(keys *KeySet, audience, issuer string) func(http.Handler) http.Handler {
	return NewWithConfig(Config{Keys: keys, Audience: audience, Issuer: issuer})
}

// Config configures NewWithConfig.
type Config struct {
	Keys             *KeySet
	Audience, Issuer string // both the domain's name with polyroot's server
	// Revoked, if set, is asked about every token that verifies, before the handler
	// runs: true refuses the request with 401 "invalid_token", an error with 503
	// "revocation_unknown" (fail closed). Introspector.Revoked asks the auth server.
	// token is the access token itself (a secret): Revoked must not log it.
	Revoked func(ctx context.Context, token string, c *Claims) (bool, error)
	Now     func() time.Time // default time.Now
}

// NewWithConfig is New with the options of cfg: with cfg.Revoked, it also refuses
// revoked tokens.
func NewWithConfig(cfg Config) func(http.Handler) http.Handler {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tok, ok := BearerToken(r)
			if !ok {
				unauthorized(w, "missing_token", "send an access token: Authorization: Bearer <token>")
				return
			}
			c, err := cfg.Keys.Verify(tok, cfg.Audience, cfg.Issuer, now())
			if err != nil {
				unauthorized(w, "invalid_token", "the access token is invalid or expired; log in again")
				return
			}
			if cfg.Revoked != nil {
				revoked, err := cfg.Revoked(r.Context(), tok, c)
				switch {
				case err != nil:
					writeError(w, http.StatusServiceUnavailable, "revocation_unknown",
						"could not check whether the access token is revoked; try again later")
					return
				case revoked:
					unauthorized(w, "invalid_token", "the access token is revoked; log in again")
					return
				}
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, c)))
		})
	}
}

func unauthorized(w http.ResponseWriter, code, msg string) {
	w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	writeError(w, http.StatusUnauthorized, code, msg)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"code": code, "message": msg})
}
