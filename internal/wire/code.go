package wire

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash"
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
	codeIDContext      = "polyroot/v1 enrolment code id"
	codeKeyContext     = "polyroot/v1 enrolment code key"
	codeProofContext   = "polyroot/v1 enrolment proof"
	packageMACContext  = "polyroot/v1 enrolment package"
	packageMACNotAfter = "2006-01-02T15:04:05.999999999Z" // RFC 3339 in UTC, as few fraction digits as needed
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
// lp(clientKey) [‖ lp(permitKey)]), lp a uint32 big-endian length prefix, the last
// part only when permitKey is not empty: the proof that whoever sent the keys knows
// the code behind key.
func CodeProof(key [32]byte, domain string, clientKey, permitKey []byte) []byte {
	m := hmac.New(sha256.New, key[:])
	m.Write([]byte(codeProofContext))
	writeLP(m, []byte(domain))
	writeLP(m, clientKey)
	if len(permitKey) != 0 {
		writeLP(m, permitKey)
	}
	return m.Sum(nil)
}

// writeLP writes b to h with its length before it, a uint32 big-endian (lp).
func writeLP(h hash.Hash, b []byte) {
	h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(b))))
	h.Write(b)
}

// PackageMAC returns the registrar's authentication of its answer p to the
// redemption of the code behind key for clientKey: HMAC-SHA256(key, "polyroot/v1
// enrolment package" ‖ lp(domain) ‖ lp(id) ‖ lp(salt) ‖ lp(idhash) ‖ device ‖
// lp(not_after) ‖ lp(client_ticket) ‖ lp(permit_ticket) ‖ u64(first_slot) ‖
// u64(last_slot) ‖ lp(bundle_fingerprint) ‖ lp(clientKey) [‖ lp(permitKey)]), the
// last part only when permitKey is not empty, where lp is a uint32
// big-endian length prefix, device one byte (1 or 0), not_after RFC 3339 in UTC with
// as few fraction digits as needed (empty when absent), u64 8 bytes big-endian. Only
// the registrar and the code's holder have key: an interceptor that redeems a code of
// its own for the victim's client key (its proof it can make) cannot pass its answer
// off as the answer to the victim's code, nor alter any field of the answer.
func PackageMAC(key [32]byte, p *EnrolPackage, clientKey, permitKey []byte) []byte {
	m := hmac.New(sha256.New, key[:])
	m.Write([]byte(packageMACContext))
	lp := func(b []byte) { writeLP(m, b) }
	lp([]byte(p.Domain))
	lp([]byte(p.ID))
	lp(p.Salt)
	lp([]byte(p.IDHash))
	device := byte(0)
	if p.Device {
		device = 1
	}
	m.Write([]byte{device})
	var notAfter string
	if p.NotAfter != nil {
		notAfter = p.NotAfter.UTC().Format(packageMACNotAfter)
	}
	lp([]byte(notAfter))
	lp([]byte(p.ClientTicket))
	lp([]byte(p.PermitTicket))
	m.Write(binary.BigEndian.AppendUint64(nil, p.FirstSlot))
	m.Write(binary.BigEndian.AppendUint64(nil, p.LastSlot))
	lp([]byte(p.BundleFingerprint))
	lp(clientKey)
	if len(permitKey) != 0 {
		lp(permitKey)
	}
	return m.Sum(nil)
}

// NewRedeemRequest makes the request that redeems code for the client's seal keys:
// clientKey for its client shares, permitKey (if not empty) for its permits.
func NewRedeemRequest(code, domain string, clientKey, permitKey []byte) (*RedeemRequest, error) {
	c, err := NormalizeCode(code)
	if err != nil {
		return nil, err
	}
	id, key := CodeSecrets(c)
	return &RedeemRequest{CodeID: id[:], ClientKey: clientKey, PermitKey: permitKey,
		Proof: CodeProof(key, domain, clientKey, permitKey)}, nil
}
