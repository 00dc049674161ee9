package client

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The kinds of error a caller acts on. Each message says what to do. Test them with
// errors.Is (the sentinels) and errors.As (the error types); an error may carry several
// (Enroll joins the errors of all DTAs that failed).
var (
	// ErrWrongServer: the server serves another domain than the client's (its answer
	// names both). No PIN was tried: point the client at its own domain's server.
	ErrWrongServer = errors.New("client: this is not the auth server of this client's domain")
	// ErrEnrolled: Enroll into a directory that holds an enrolment, without
	// WithReplace. Nothing was sent or changed (*EnrolledError names it).
	ErrEnrolled = errors.New("client: this directory already holds an enrolment")
	// ErrWrongPIN: the server refused the login. Check the PIN and try again; a
	// *WrongPINError carries the tries left before the identity is blocked.
	ErrWrongPIN = errors.New("client: login refused: " + refusedLogin + "; check the PIN and try again")
	// ErrBlocked: no tries left. Ask the registrar (the app's administrator) to unblock
	// the identity.
	ErrBlocked = errors.New("client: this identity is blocked after too many failed logins; ask the administrator to unblock it")
	// ErrRevoked: a DTA refused permits or shares because the identity is revoked.
	// Best effort: the server answers a revoked identity's login like a wrong PIN.
	// Enrol again with a new code from the registrar.
	ErrRevoked = errors.New("client: this identity is revoked; ask the administrator for a new enrolment code")
	// ErrPermitExpired: the client holds no time permit for the current slot, or the
	// server does not accept its slot. Renew the permits with the PIN (RenewPermits,
	// polyroot client permits renew): that needs no access token. (RefreshPermits does
	// the same with an access token, while one is valid.)
	ErrPermitExpired = errors.New("client: no valid time permit for the current period; renew the permits with your PIN (polyroot client permits renew)")
	// ErrServerNotAuthentic: the server's key confirmation does not verify: it does
	// not hold the domain's key. Do not use this server; report it.
	ErrServerNotAuthentic = errors.New("client: the server could not prove it holds the domain's key: it is not authentic; do not use it and report this")
	// ErrPossibleInterception: something, e.g. a TLS-intercepting proxy or a forced
	// root certificate, sits between the client and the server. At login the server
	// saw a different TLS channel than the client (the channel bindings differ); the
	// PIN was right and is not counted as a failure. At enrolment the server received
	// another key than the client sent, or answered with tickets for another key; the
	// code is not used up, and nothing the interceptor saw lets it enrol. Use another
	// network; report it.
	ErrPossibleInterception = errors.New("client: possible interception: what the server received is not what this client sent (a TLS-intercepting proxy or forced root certificate?); use another network and report this")
	// ErrBundleFingerprint: the trust bundle's SHA-256 fingerprint is not the pinned
	// one. Get the right bundle or fingerprint from the domain's operator.
	ErrBundleFingerprint = errors.New("client: the trust bundle does not match the pinned fingerprint; check the bundle and fingerprint with the domain's operator")
	// ErrNotEnrolled: the client directory holds no token. Run enroll first.
	ErrNotEnrolled = errors.New("client: not enrolled; run enroll with a code from the registrar")
	// ErrEnrolmentKind: the enrolment is for a device (no PIN) and a PIN was given, or
	// the other way round. Enrol again the other way with the same code: it stays
	// valid for this client (the same key), though the registrar sees it redeemed.
	ErrEnrolmentKind = errors.New("client: this enrolment code is for the other kind of identity")
	// ErrIdentityExpired: a temporary identity's lifetime is over. Ask the registrar
	// for a new enrolment.
	ErrIdentityExpired = errors.New("client: this temporary identity has expired; ask the administrator for a new enrolment code")
	// ErrTokenFileMode: the token file is readable by group or others. Fix the mode
	// (chmod 600) after checking nobody copied it, or enrol again.
	ErrTokenFileMode = errors.New("client: the token file is readable by others; chmod 600 it (and consider it exposed) or enrol again")
)

// refusedLogin is what a refused login may mean. The server gives one answer for
// all of them (it must not tell a wrong PIN from an identity it does not accept), so
// the message names each, without suggesting one.
const refusedLogin = "wrong PIN, or an identity the server does not accept (unknown, revoked or expired)"

// An EnrolledError is ErrEnrolled with the enrolment that the directory holds.
type EnrolledError struct {
	ID, Domain string
}

func (e *EnrolledError) Error() string {
	return fmt.Sprintf("client: this directory already holds the enrolment of %q with %s; use another directory, or replace it (WithReplace)", e.ID, e.Domain)
}

// Is makes errors.Is(err, ErrEnrolled) true.
func (e *EnrolledError) Is(target error) bool { return target == ErrEnrolled }

// A WrongPINError is ErrWrongPIN with the tries left before the identity is blocked.
type WrongPINError struct {
	TriesLeft int // -1 when the server did not say
}

func (e *WrongPINError) Error() string {
	if e.TriesLeft < 0 {
		return ErrWrongPIN.Error()
	}
	tries := "tries"
	if e.TriesLeft == 1 {
		tries = "try"
	}
	return fmt.Sprintf("client: login refused: %s; %d %s left before the identity is blocked", refusedLogin, e.TriesLeft, tries)
}

// Is makes errors.Is(err, ErrWrongPIN) true.
func (e *WrongPINError) Is(target error) bool { return target == ErrWrongPIN }

// A DTAUnreachableError names a DTA that did not answer (network error, timeout or a
// 5xx answer). Retry later; if it persists, tell the domain's operator.
type DTAUnreachableError struct {
	Index uint32
	URL   string
	Err   error
}

func (e *DTAUnreachableError) Error() string {
	return fmt.Sprintf("client: DTA %d (%s) is unreachable: %v; retry later (an enrolment code stays usable by this client until it expires), and tell the domain's operator if it persists", e.Index, e.URL, e.Err)
}

func (e *DTAUnreachableError) Unwrap() error { return e.Err }

// A BadShareError names the DTAs whose answers failed verification: a DLEQ proof
// that does not verify (Err then holds a *pairing.ShareError), or a log entry or
// promise that does not describe the share. Nothing was stored. Report the DTAs to
// the domain's operator: they are faulty or compromised.
type BadShareError struct {
	Indices []uint32
	Err     error
}

func (e *BadShareError) Error() string {
	return fmt.Sprintf("client: bad share from DTA %s: %v; nothing was stored; report this to the domain's operator",
		joinIndices(e.Indices), e.Err)
}

func (e *BadShareError) Unwrap() error { return e.Err }

// A QuorumError reports that, in a threshold domain (t of n DTAs), fewer than t DTAs
// answered a request for shares (Kind: "client" or "permit") with valid shares, so
// the key could not be combined. Failed names every DTA that failed; Err says why,
// with the errors an additive domain reports (*BadShareError for bad proofs, entries
// or promises, *DTAUnreachableError, ErrRevoked, *APIError), joined: errors.As and
// errors.Is see them. Nothing was stored. Retry when enough DTAs are back; report the
// DTAs with bad shares to the domain's operator.
type QuorumError struct {
	Kind        string
	Valid, Need int // valid answers; t
	N           int // DTAs in the bundle
	Failed      []uint32
	Err         error
}

func (e *QuorumError) Error() string {
	return fmt.Sprintf("client: only %d of the %d DTAs needed (%d of %d) answered with valid %s shares; DTA %s failed: %v; nothing was stored",
		e.Valid, e.Need, e.Need, e.N, e.Kind, joinIndices(e.Failed), e.Err)
}

func (e *QuorumError) Unwrap() error { return e.Err }

// An APIError is any other refusal by the server or a DTA, with its stable code.
type APIError struct {
	From       string // "server" or "DTA i"
	Status     int
	Code       string
	Message    string
	RetryAfter time.Duration // on 429
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("client: %s answered %d %s: %s", e.From, e.Status, e.Code, e.Message)
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(" (retry after %v)", e.RetryAfter)
	}
	return s
}

func joinIndices(ix []uint32) string {
	ix = slices.Clone(ix)
	slices.Sort(ix)
	s := make([]string, len(ix))
	for i, x := range ix {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ", ")
}
