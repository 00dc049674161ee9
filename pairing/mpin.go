package pairing

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	circl "github.com/cloudflare/circl/ecc/bls12381"
)

// LoginVersion names this version of the login protocol (docs/protocol.md 8, 9): it
// is the first field of every transcript, and the DST of h and the key schedule's salt
// and labels carry it too. Version 2 takes the session key's secrecy from a hybrid
// X25519 + ML-KEM-768 exchange instead of a Diffie–Hellman in G1.
const LoginVersion = "polyroot/v2"

// ProtocolVersion names the version of the keys and of their issuance: the encodings,
// the hashes to G1 and to scalars of identities, permits and PINs, the DLEQ proofs, the
// delivery of shares and the trust bundle, whose "protocol" member it is. Version 2 of
// the login changes none of these, so tokens, permits, server keys and pinned bundles
// stay valid, and this stays "polyroot/v1" (docs/protocol.md, "Versions").
const ProtocolVersion = "polyroot/v1"

// SessionKeySize is the length of the session key both sides derive.
const SessionKeySize = 32

// Domain holds the public parameters that a domain's clients and server share.
type Domain struct {
	Name string
	// PermitPeriod is the lifetime of a time permit in seconds; 0 disables permits,
	// and then slot is always 0 and A' = A.
	PermitPeriod uint64
}

// Slot returns the permit slot k = floor(unix time / period) at t (0 without permits).
func (d Domain) Slot(t time.Time) uint64 {
	if d.PermitPeriod == 0 || t.Unix() < 0 {
		return 0
	}
	return uint64(t.Unix()) / d.PermitPeriod
}

// ExtractPIN returns the token TK = sA − π·A that a client stores in place of its
// client key sA. Without the PIN, TK is not a usable key. Devices without a PIN pass
// a nil pin and get π = Hs(domain, idhash, "").
func ExtractPIN(domain string, id IDHash, clientKey *G1, pin []byte) *G1 {
	return clientKey.Sub(IdentityPoint(id).Mul(PINScalar(domain, id, pin)))
}

// A Client holds what a client needs to log in: its token and, if the domain uses
// permits, the combined permit TP_k = s·T_k for Slot.
type Client struct {
	Domain Domain
	IDHash IDHash
	Token  *G1
	Permit *G1 // nil when Domain.PermitPeriod is 0
	Slot   uint64
}

// A ClientSession is one login in progress on the client side. It is single-use.
type ClientSession struct {
	domain    Domain
	pass1     Pass1
	aPrime    *G1
	sec       *G1 // s·A', from token, PIN and permit
	x, r      *Scalar
	dk        *decapsulationKey // the key share's secret half, dropped by Respond
	challenge *Challenge
	prk       []byte
	used      atomic.Bool
	finished  atomic.Bool
}

// Start begins a login with the PIN: it returns pass 1 and the session that answers
// the server's challenge. The PIN is only used to rebuild SEC = TK + π·A + TP_k. The
// scalars x, r and the ephemeral key share are drawn from rand (crypto/rand if nil).
func (c *Client) Start(rand io.Reader, pin []byte) (*ClientSession, *Pass1, error) {
	x, err := RandomScalar(rand)
	if err != nil {
		return nil, nil, err
	}
	r, err := RandomScalar(rand)
	if err != nil {
		return nil, nil, err
	}
	dk, err := newDecapsulationKey(rand)
	if err != nil {
		return nil, nil, err
	}
	return c.start(pin, x, r, dk)
}

func (c *Client) start(pin []byte, x, r *Scalar, dk *decapsulationKey) (*ClientSession, *Pass1, error) {
	if c.Token == nil || (c.Domain.PermitPeriod != 0) != (c.Permit != nil) {
		return nil, nil, fmt.Errorf("pairing: client needs a token, and a permit exactly when the domain uses permits")
	}
	if c.Domain.PermitPeriod == 0 && c.Slot != 0 {
		return nil, nil, ErrPermitSlot
	}
	a := IdentityPoint(c.IDHash)
	aPrime, sec := a, c.Token.Add(a.Mul(PINScalar(c.Domain.Name, c.IDHash, pin)))
	if c.Permit != nil {
		aPrime = a.Add(PermitPoint(c.IDHash, c.Slot, c.Domain.PermitPeriod))
		sec = sec.Add(c.Permit)
	}
	s := &ClientSession{domain: c.Domain, aPrime: aPrime, sec: sec, x: x, r: r, dk: dk}
	s.pass1 = Pass1{IDHash: c.IDHash, Slot: c.Slot, U: aPrime.Mul(x), Z: aPrime.Mul(r), KEM: dk.encapsulationKey()}
	p1 := s.pass1
	return s, &p1, nil
}

// Respond answers the server's challenge with pass 2. binding is the channel binding of
// the connection that carries pass 2 (RFC 9266 tls-exporter), or nil without TLS.
func (s *ClientSession) Respond(ch *Challenge, binding []byte) (*Pass2, error) {
	if !s.used.CompareAndSwap(false, true) {
		return nil, ErrSessionUsed
	}
	if ch == nil || ch.Y == nil || ch.KEM == nil {
		return nil, fmt.Errorf("pairing: incomplete challenge")
	}
	if ch.Y.IsZero() {
		return nil, ErrZeroScalar
	}
	ss, err := s.dk.decapsulate(ch.KEM)
	s.dk = nil // single-use: the key share's secret is forgotten whatever happens
	if err != nil {
		return nil, err
	}
	xy := new(Scalar).Add(s.x, ch.Y)
	v := s.sec.Mul(xy.Neg(xy)) // V = −(x+y)·SEC
	if v.IsIdentity() {
		return nil, ErrIdentity // x + y = 0: a negligible event, refuse rather than send it
	}
	t := transcript(s.domain, &s.pass1, ch, v, binding)
	h := HashToScalar(t, []byte(DSTLogin))
	// e(SEC, Q)^(r+h) as e((r+h)·SEC, Q): one constant-time scalar multiplication and
	// pairing, cheaper in circl than an exponentiation in GT.
	rh := new(Scalar).Add(s.r, h)
	gt, err := circl.Pair(s.sec.Mul(rh).constTime(), circl.G2Generator()).MarshalBinary()
	if err != nil {
		return nil, err
	}
	s.prk = extractKey(gt, ss, t)
	s.challenge = ch
	p2 := &Pass2{SessionID: ch.SessionID, V: v}
	copy(p2.Tag[:], expandKey(s.prk, labelClientTag))
	return p2, nil
}

// Finish checks the server's tag and returns the session key. An error here means the
// server does not hold the domain's key sQ, or the channel is intercepted.
func (s *ClientSession) Finish(f *Finish) ([]byte, error) {
	if s.prk == nil {
		return nil, fmt.Errorf("pairing: Finish before Respond")
	}
	if !s.finished.CompareAndSwap(false, true) {
		return nil, ErrSessionUsed
	}
	if f == nil || !hmac.Equal(f.Tag[:], expandKey(s.prk, labelServerTag)) {
		return nil, ErrServerNotAuthentic
	}
	return expandKey(s.prk, labelSessionKey), nil
}

func randOrDefault(r io.Reader) io.Reader {
	if r == nil {
		return rand.Reader
	}
	return r
}

// transcript is everything both sides saw, in a fixed order, each field length-prefixed.
func transcript(d Domain, p1 *Pass1, ch *Challenge, v *G1, binding []byte) []byte {
	return append(append(transcriptPrefix(d, p1, ch), lp(v.Bytes())...), lp(binding)...)
}

// transcriptPrefix is the transcript's fields up to the ciphertext: what the server
// knows when it sends the challenge.
func transcriptPrefix(d Domain, p1 *Pass1, ch *Challenge) []byte {
	return lp([]byte(LoginVersion), []byte(d.Name), u64(d.PermitPeriod), p1.IDHash[:], u64(p1.Slot),
		p1.U.Bytes(), p1.Z.Bytes(), p1.KEM.Bytes(), ch.Y.Bytes(), ch.KEM.Bytes())
}

// Key schedule: prk = HKDF-Extract(salt, lp(GT) ‖ lp(shared secret) ‖ lp(transcript)),
// then one HKDF-Expand per purpose, so the tags never reveal the session key.
const (
	kdfSalt         = "POLYROOT-V2-LOGIN-KDF"
	labelClientTag  = "polyroot/v2 client tag"
	labelServerTag  = "polyroot/v2 server tag"
	labelSessionKey = "polyroot/v2 session key"
)

func extractKey(gt, ss, transcript []byte) []byte {
	prk, err := hkdf.Extract(sha256.New, lp(gt, ss, transcript), []byte(kdfSalt))
	if err != nil {
		panic("pairing: " + err.Error()) // unreachable: HKDF-Extract does not fail
	}
	return prk
}

func expandKey(prk []byte, label string) []byte {
	k, err := hkdf.Expand(sha256.New, prk, label, 32)
	if err != nil {
		panic("pairing: " + err.Error()) // unreachable: 32 bytes is within HKDF's limit
	}
	return k
}
