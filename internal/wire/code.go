package wire

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"strings"
)

// Enrolment codes. The registrar hands a one-time code to the user out of band; the
// client proves it knows the code without sending it: it sends the code's ID, a hash
// that names the code without revealing it, and an HMAC keyed by another hash of the
// code over its own seal key. Someone who sees the request (a TLS interceptor the
// device trusts) learns neither the code nor anything that lets it redeem the code
// for a key of its own; a request whose key was replaced fails the proof. A code is
// 20 characters of the RFC 4648 base32 alphabet: 100 random bits, out of reach of
// offline search from its ID.

// CodeLength is the number of characters of an enrolment code.
const CodeLength = 20

const (
	codeIDContext    = "polyroot/v1 enrolment code id"
	codeKeyContext   = "polyroot/v1 enrolment code key"
	codeProofContext = "polyroot/v1 enrolment proof"
)

// ErrCode reports a string that is not an enrolment code.
var ErrCode = errors.New("wire: an enrolment code is 20 characters A–Z and 2–7")

// NormalizeCode returns code in its canonical form: upper case, without spaces or
// dashes (people copy codes in groups).
func NormalizeCode(code string) (string, error) {
	c := strings.Map(func(r rune) rune {
		switch {
		case r == ' ' || r == '-' || r == '\t':
			return -1
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		}
		return r
	}, code)
	if len(c) != CodeLength {
		return "", ErrCode
	}
	for _, r := range c {
		if !(r >= 'A' && r <= 'Z' || r >= '2' && r <= '7') {
			return "", ErrCode
		}
	}
	return c, nil
}

// CodeSecrets returns the ID and the proof key of a normalised code: ID =
// SHA-256("polyroot/v1 enrolment code id" ‖ code), key = SHA-256("polyroot/v1
// enrolment code key" ‖ code). The registrar stores both, never the code.
func CodeSecrets(code string) (id, key [32]byte) {
	return sha256.Sum256([]byte(codeIDContext + code)), sha256.Sum256([]byte(codeKeyContext + code))
}

// CodeProof returns HMAC-SHA256(key, "polyroot/v1 enrolment proof" ‖ lp(domain) ‖
// lp(clientKey)), lp a uint32 big-endian length prefix: the proof that whoever sent
// clientKey knows the code behind key.
func CodeProof(key [32]byte, domain string, clientKey []byte) []byte {
	m := hmac.New(sha256.New, key[:])
	m.Write([]byte(codeProofContext))
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(domain)))
	m.Write(n[:])
	m.Write([]byte(domain))
	binary.BigEndian.PutUint32(n[:], uint32(len(clientKey)))
	m.Write(n[:])
	m.Write(clientKey)
	return m.Sum(nil)
}

// NewRedeemRequest makes the request that redeems code for the client's seal key.
func NewRedeemRequest(code, domain string, clientKey []byte) (*RedeemRequest, error) {
	c, err := NormalizeCode(code)
	if err != nil {
		return nil, err
	}
	id, key := CodeSecrets(c)
	return &RedeemRequest{CodeID: id[:], ClientKey: clientKey, Proof: CodeProof(key, domain, clientKey)}, nil
}
