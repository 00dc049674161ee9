package ticket

import (
	"crypto/ed25519"
	"encoding/base64"
	"strings"
	"time"

	"github.com/polyroot/polyroot/internal/flatjson"
)

// The fast path of Verify. Every ticket Sign makes has the same header and claims in
// plain JSON (no escapes, whole-second times), and decoding them with golang-jwt
// (a map for the header, reflection and a JSON decoder per date for the claims) costs
// a DTA about half as much as the Ed25519 check itself, for every share it issues.
// verifyCompact decides exactly as verifyJWT for the tickets it takes, and leaves
// every other token to it: another header, an escape or a byte outside printable
// ASCII in a string, a number that is not a plain non-negative integer, a null, an
// unknown or repeated key (encoding/json matches keys case-insensitively and keeps the
// last of repeated ones), anything unusual. A differential fuzz test holds the two
// together (FuzzVerifyCompact).

// compactHeader is the header of every ticket Sign makes: base64url of
// {"alg":"EdDSA","typ":"JWT"}.
var compactHeader = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"EdDSA","typ":"JWT"}`))

// segmentEncoding decodes the payload and signature: strict, so that a non-zero
// trailing bit is refused rather than dropped, as golang-jwt's WithStrictDecoding does
// for verifyJWT (one string per ticket: see base64urlParts).
var segmentEncoding = base64.RawURLEncoding.Strict()

// verifyCompact verifies a ticket in the form Sign gives it, as verifyJWT would. ok is
// false if the token is not in that form; verifyJWT then decides.
func verifyCompact(token string, registrar ed25519.PublicKey, now time.Time) (c *claims, err error, ok bool) {
	header, rest, found := strings.Cut(token, ".")
	if !found || header != compactHeader {
		return nil, nil, false
	}
	payload, sig, found := strings.Cut(rest, ".")
	if !found || strings.Contains(sig, ".") {
		return nil, nil, false
	}
	body, err := segmentEncoding.DecodeString(payload)
	if err != nil {
		return nil, nil, false
	}
	c, times, ok := parseCompactClaims(body)
	if !ok {
		return nil, nil, false
	}
	// From here on the answer is verifyJWT's: the signature, then the times.
	rawSig, err := segmentEncoding.DecodeString(sig)
	if err != nil || len(registrar) != ed25519.PublicKeySize ||
		!ed25519.Verify(registrar, []byte(token[:len(header)+1+len(payload)]), rawSig) {
		return nil, ErrInvalid, true
	}
	switch {
	case times.exp == nil:
		return nil, ErrInvalid, true
	case !now.Before(time.Unix(*times.exp, 0)):
		return nil, ErrExpired, true
	case times.nbf != nil && now.Before(time.Unix(*times.nbf, 0)):
		return nil, ErrInvalid, true
	}
	c.ExpiresAt = time.Unix(*times.exp, 0)
	return c, nil, true
}

// compactKeys are the claims the fast path knows.
var compactKeys = []string{"kind", "first_slot", "last_slot", "seal_key", "iss", "sub", "aud", "exp", "nbf", "iat", "jti"}

// compactTimes are the time claims, in Unix seconds.
type compactTimes struct{ exp, nbf, iat *int64 }

// maxCompactInt bounds the integers of the fast path: below 2^53, golang-jwt's float64
// holds them exactly.
const maxCompactInt = 1 << 52

// parseCompactClaims decodes a claims object in the plain form. ok is false for
// anything else.
func parseCompactClaims(b []byte) (c *claims, t compactTimes, ok bool) {
	p := flatjson.NewScanner(b)
	c = new(claims)
	ok = p.Object(compactKeys, func(key string) (ok bool) {
		switch key {
		case "kind":
			c.Kind, ok = p.Text()
		case "seal_key":
			c.SealKey, ok = p.Text()
		case "iss":
			c.Issuer, ok = p.Text()
		case "sub":
			c.Subject, ok = p.Text()
		case "jti":
			c.ID, ok = p.Text()
		case "aud":
			c.Audience, ok = audience(p)
		case "first_slot":
			c.FirstSlot, ok = p.Uint(1<<64 - 1)
		case "last_slot":
			c.LastSlot, ok = p.Uint(1<<64 - 1)
		case "exp", "nbf", "iat":
			var v uint64
			if v, ok = p.Uint(maxCompactInt); ok {
				n := int64(v)
				switch key {
				case "exp":
					t.exp = &n
				case "nbf":
					t.nbf = &n
				default:
					t.iat = &n
				}
			}
		}
		return ok
	})
	if !ok {
		return nil, t, false
	}
	return c, t, true
}

// audience reads aud as golang-jwt's ClaimStrings: a string, or an array of strings.
func audience(p *flatjson.Scanner) ([]string, bool) {
	if p.Peek() != '[' {
		s, ok := p.Text()
		return []string{s}, ok
	}
	var aud []string
	ok := p.Array(func() bool {
		s, ok := p.Text()
		aud = append(aud, s)
		return ok
	})
	return aud, ok
}
