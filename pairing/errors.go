package pairing

import "errors"

// Decoding errors. Every decoder wraps one of these, so callers can test with errors.Is.
var (
	// ErrLength reports an encoding of the wrong size.
	ErrLength = errors.New("pairing: wrong encoding length")
	// ErrEncoding reports a non-canonical encoding: bad flag bits, a coordinate or scalar
	// not reduced modulo its field, or an x-coordinate with no point on the curve.
	ErrEncoding = errors.New("pairing: invalid encoding")
	// ErrSubgroup reports a point on the curve but outside the prime-order subgroup.
	ErrSubgroup = errors.New("pairing: point not in the prime-order subgroup")
	// ErrIdentity reports the identity point where the protocol forbids it.
	ErrIdentity = errors.New("pairing: identity point")
	// ErrZeroScalar reports a zero scalar where the protocol forbids it.
	ErrZeroScalar = errors.New("pairing: zero scalar")
)

// Protocol errors.
var (
	// ErrInvalidProof reports a DLEQ proof that does not verify.
	ErrInvalidProof = errors.New("pairing: invalid DLEQ proof")
	// ErrInvalidShare reports a server share s_i·Q that does not match its commitment C_i.
	ErrInvalidShare = errors.New("pairing: share does not match its commitment")
	// ErrShareSet reports an unusable set of shares: empty, mismatched, repeated or zero
	// indices, or an unknown mode.
	ErrShareSet = errors.New("pairing: invalid set of shares")
	// ErrAuthFailed reports a pass 2 whose pairing equation does not hold: wrong PIN,
	// wrong token, wrong permit, wrong identity or a forged message. Callers must not
	// tell these apart.
	ErrAuthFailed = errors.New("pairing: authentication failed")
	// ErrChannelBinding reports a pass 2 whose pairing equation holds (the token and PIN
	// were right) but whose key confirmation fails: the two sides saw different
	// transcripts, typically different TLS channels because something intercepts them.
	ErrChannelBinding = errors.New("pairing: channel binding mismatch")
	// ErrServerNotAuthentic reports a server answer whose tag does not verify: the server
	// does not hold the domain's key sQ, or the channel is intercepted.
	ErrServerNotAuthentic = errors.New("pairing: server is not authentic or the channel is intercepted")
	// ErrPermitSlot reports a permit slot the verifier does not accept now.
	ErrPermitSlot = errors.New("pairing: permit slot not acceptable")
	// ErrSessionUsed reports a second use of a single-use server session.
	ErrSessionUsed = errors.New("pairing: session already used")
)
