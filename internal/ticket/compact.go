package ticket

import (
	"crypto/ed25519"
	"encoding/base64"
	"strings"
	"time"
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

// compactKeys are the claims the fast path knows, each with its bit.
var compactKeys = map[string]uint16{"kind": 1, "first_slot": 2, "last_slot": 4, "seal_key": 8,
	"iss": 16, "sub": 32, "aud": 64, "exp": 128, "nbf": 256, "iat": 512, "jti": 1024}

// compactTimes are the time claims, in Unix seconds.
type compactTimes struct{ exp, nbf, iat *int64 }

// maxCompactInt bounds the integers of the fast path: below 2^53, golang-jwt's float64
// holds them exactly.
const maxCompactInt = 1 << 52

// parseCompactClaims decodes a claims object in the plain form. ok is false for
// anything else.
func parseCompactClaims(b []byte) (c *claims, t compactTimes, ok bool) {
	p := compactParser{b: b}
	c = new(claims)
	var seen uint16
	if !p.lit('{') {
		return nil, t, false
	}
	if p.ws(); p.peek() == '}' {
		p.i++
	} else {
		for {
			key, ok := p.str()
			bit := compactKeys[key]
			if !ok || bit == 0 || seen&bit != 0 || !p.lit(':') {
				return nil, t, false
			}
			seen |= bit
			switch key {
			case "kind":
				c.Kind, ok = p.str()
			case "seal_key":
				c.SealKey, ok = p.str()
			case "iss":
				c.Issuer, ok = p.str()
			case "sub":
				c.Subject, ok = p.str()
			case "jti":
				c.ID, ok = p.str()
			case "aud":
				c.Audience, ok = p.audience()
			case "first_slot":
				c.FirstSlot, ok = p.uint(1<<64 - 1)
			case "last_slot":
				c.LastSlot, ok = p.uint(1<<64 - 1)
			case "exp", "nbf", "iat":
				var v uint64
				if v, ok = p.uint(maxCompactInt); ok {
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
			if !ok {
				return nil, t, false
			}
			if p.ws(); p.peek() == ',' {
				p.i++
				continue
			}
			if !p.lit('}') {
				return nil, t, false
			}
			break
		}
	}
	if p.ws(); p.i != len(p.b) {
		return nil, t, false
	}
	return c, t, true
}

type compactParser struct {
	b []byte
	i int
}

func (p *compactParser) ws() {
	for p.i < len(p.b) && (p.b[p.i] == ' ' || p.b[p.i] == '\t' || p.b[p.i] == '\n' || p.b[p.i] == '\r') {
		p.i++
	}
}

func (p *compactParser) peek() byte {
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

func (p *compactParser) lit(c byte) bool {
	if p.ws(); p.peek() != c {
		return false
	}
	p.i++
	return true
}

// str reads a string of printable ASCII without escapes.
func (p *compactParser) str() (string, bool) {
	if !p.lit('"') {
		return "", false
	}
	start := p.i
	for p.i < len(p.b) && p.b[p.i] >= 0x20 && p.b[p.i] < 0x7f && p.b[p.i] != '"' && p.b[p.i] != '\\' {
		p.i++
	}
	if p.peek() != '"' {
		return "", false
	}
	p.i++
	return string(p.b[start : p.i-1]), true
}

// uint reads a JSON integer without sign, fraction or exponent, at most max.
func (p *compactParser) uint(max uint64) (uint64, bool) {
	p.ws()
	start := p.i
	var v uint64
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		d := uint64(p.b[p.i] - '0')
		if v > (max-d)/10 {
			return 0, false
		}
		v = v*10 + d
		p.i++
	}
	n := p.i - start
	if n == 0 || n > 1 && p.b[start] == '0' {
		return 0, false // no digits, or a leading zero: not JSON
	}
	if c := p.peek(); c == '.' || c == 'e' || c == 'E' {
		return 0, false
	}
	return v, true
}

// audience reads aud as golang-jwt's ClaimStrings: a string, or an array of strings.
func (p *compactParser) audience() ([]string, bool) {
	if p.ws(); p.peek() != '[' {
		s, ok := p.str()
		return []string{s}, ok
	}
	p.i++
	var aud []string
	if p.ws(); p.peek() == ']' {
		p.i++
		return aud, true
	}
	for {
		s, ok := p.str()
		if !ok {
			return nil, false
		}
		aud = append(aud, s)
		if p.ws(); p.peek() == ',' {
			p.i++
			continue
		}
		return aud, p.lit(']')
	}
}
