// Package ticket makes and checks the registrar's signed authorisations that DTAs act
// on: enrolment tickets for client shares, permit tickets, the server's key-share
// request and revocation notices. A ticket is a JWT signed with the registrar's Ed25519
// key (EdDSA only; every other algorithm is refused).
//
// Security invariants: a Ticket is only returned by Verify after the signature, the
// issuer, the audience (the domain), the kind, the expiry and the form of its fields
// have been checked, and only for the one string that encodes it; the nonce's
// single use is the verifier's caller's job (each DTA records the nonces it has seen).
// Every ticket for shares (client, permit, server) names the X25519 key its shares are
// sealed to (SealKey), so a ticket seen by someone else is useless to them: the DTAs
// answer it only with ciphertexts for that key.
package ticket

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Kinds of ticket.
const (
	KindClient = "client" // a client share for IDHash, sealed to SealKey
	KindPermit = "permit" // time permit shares for IDHash, slots FirstSlot..LastSlot, sealed to SealKey
	KindServer = "server" // the domain server's key share, sealed to SealKey
	KindRevoke = "revoke" // a revocation notice for IDHash
)

// MaxPermitSlots bounds how many permit slots one ticket may ask for.
const MaxPermitSlots = 366

// MaxSlot bounds permit slots: slot k of a period of at least one second starts at
// unix time ≥ k, and 2^40 seconds is beyond year 36000. No slot loop can wrap.
const MaxSlot = 1 << 40

// SealKeySize is the length of an X25519 public key.
const SealKeySize = 32

// issuer is the iss of every ticket: Sign writes it and Verify requires it, so that a
// token of another kind that the registrar's key might sign is not taken for a ticket.
const issuer = "polyroot-registrar"

// Errors of Verify, for errors.Is.
var (
	ErrInvalid = errors.New("ticket: invalid ticket")
	ErrExpired = errors.New("ticket: expired")
	ErrDomain  = errors.New("ticket: for another domain")
	ErrKind    = errors.New("ticket: wrong kind")
)

// A Ticket is what the registrar authorises.
type Ticket struct {
	Domain    string
	Kind      string
	IDHash    string // hex SHA-256, for client, permit and revoke tickets
	FirstSlot uint64 // permit tickets: the slots asked for
	LastSlot  uint64
	// SealKey is the hex of the X25519 public key (32 bytes) that every share issued
	// under the ticket is sealed to: the client's enrolment key, or the server's key for
	// its share. Required for client, permit and server tickets; absent for revocations.
	SealKey  string
	NotAfter time.Time
	Nonce    string // hex, 16 random bytes; each DTA accepts it once
}

// claims are the verified claims of a ticket, whichever path decoded them.
type claims struct {
	Kind      string
	FirstSlot uint64
	LastSlot  uint64
	SealKey   string
	Issuer    string
	Subject   string
	Audience  []string
	ExpiresAt time.Time
	ID        string
}

// Verify checks a ticket's signature against the registrar's public key, that it is
// for domain and of kind wantKind, and that it has not expired at now.
func Verify(token string, registrar ed25519.PublicKey, domain, wantKind string, now time.Time) (*Ticket, error) {
	if len(token) > 4096 {
		return nil, fmt.Errorf("%w: %d bytes", ErrInvalid, len(token))
	}
	if !base64urlParts(token) {
		return nil, fmt.Errorf("%w: a byte outside base64url", ErrInvalid)
	}
	c, err, ok := verifyCompact(token, registrar, now)
	if !ok {
		c, err = verifyJWT(token, registrar, now)
	}
	if err != nil {
		return nil, err
	}
	return c.ticket(domain, wantKind)
}

// base64urlParts reports whether token is made only of the base64url alphabet and the
// dots between its parts. Each DTA keys its record of a ticket on the SHA-256 of the
// token's string, so a ticket must have exactly one: with this, and the strict decoding
// of both paths (no padding, no non-zero trailing bits), it has. The base64 decoders
// skip CR and LF even when strict, so a variant with them would otherwise verify, and,
// sent to the DTAs first, use up the genuine ticket's nonce.
func base64urlParts(token string) bool {
	for i := 0; i < len(token); i++ {
		switch c := token[i]; {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// ticket checks the verified claims c against the domain and kind and returns the
// ticket.
func (c *claims) ticket(domain, wantKind string) (*Ticket, error) {
	if c.Issuer != issuer {
		return nil, fmt.Errorf("%w: issuer %q", ErrInvalid, c.Issuer)
	}
	if len(c.Audience) != 1 || c.Audience[0] != domain {
		return nil, ErrDomain
	}
	if c.Kind != wantKind {
		return nil, fmt.Errorf("%w: %q, want %q", ErrKind, c.Kind, wantKind)
	}
	t := &Ticket{Domain: domain, Kind: c.Kind, IDHash: c.Subject, FirstSlot: c.FirstSlot, LastSlot: c.LastSlot,
		SealKey: c.SealKey, NotAfter: c.ExpiresAt, Nonce: c.ID}
	if err := t.validate(); err != nil {
		return nil, err
	}
	return t, nil
}

// validate checks the fields each kind needs.
func (t *Ticket) validate() error {
	if t.Domain == "" || t.NotAfter.IsZero() {
		return fmt.Errorf("%w: missing domain or expiry", ErrInvalid)
	}
	if n, err := hex.DecodeString(t.Nonce); err != nil || len(n) != 16 {
		return fmt.Errorf("%w: nonce must be 16 bytes of hex", ErrInvalid)
	}
	// One spelling per identity: the DTAs look a revocation up by this string, so an
	// idhash in upper case would escape its identity's revocation. A server ticket
	// names no identity; the DTAs log none for it.
	switch t.Kind {
	case KindClient, KindPermit, KindRevoke:
		if !lowerHex(t.IDHash, 32) {
			return fmt.Errorf("%w: idhash must be 32 bytes of lower-case hex", ErrInvalid)
		}
	case KindServer:
		if t.IDHash != "" {
			return fmt.Errorf("%w: a server ticket names no idhash", ErrInvalid)
		}
	}
	switch t.Kind {
	case KindClient, KindPermit, KindServer:
		if !lowerHex(t.SealKey, SealKeySize) {
			return fmt.Errorf("%w: a %s ticket must name the %d-byte X25519 key its shares are sealed to", ErrInvalid, t.Kind, SealKeySize)
		}
	case KindRevoke:
		if t.SealKey != "" {
			return fmt.Errorf("%w: a revocation has no seal key", ErrInvalid)
		}
	default:
		return fmt.Errorf("%w: unknown kind %q", ErrKind, t.Kind)
	}
	if t.Kind == KindPermit && (t.LastSlot < t.FirstSlot || t.LastSlot-t.FirstSlot >= MaxPermitSlots || t.LastSlot > MaxSlot) {
		return fmt.Errorf("%w: permit slots %d..%d (at most %d, none beyond %d)", ErrInvalid, t.FirstSlot, t.LastSlot, MaxPermitSlots, uint64(MaxSlot))
	}
	return nil
}

// lowerHex reports whether s is n bytes in lower-case hex, as hex.EncodeToString
// writes them.
func lowerHex(s string, n int) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == n && hex.EncodeToString(b) == s
}
