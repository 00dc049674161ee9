package wasmclient

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"time"

	"github.com/polyroot/polyroot/client"
	"github.com/polyroot/polyroot/internal/wire"
)

// The error kinds of the JavaScript API (an Error's .kind).
const (
	KindWrongPIN        = "wrong_pin"
	KindBlocked         = "blocked"
	KindRevoked         = "revoked"
	KindNotAuthentic    = "not_authentic"
	KindInterception    = "interception"
	KindNotEnrolled     = "not_enrolled"
	KindPermitExpired   = "permit_expired"
	KindIdentityExpired = "identity_expired"
	KindBadCode         = "bad_code"
	KindWrongServer     = "wrong_server"
	KindBundleMismatch  = "bundle_mismatch"
	KindDTAUnreachable  = "dta_unreachable"
	KindNetwork         = "network"
	KindInternal        = "internal"
)

// An Error is what a rejected promise of the JavaScript API carries: a kind, the
// tries left for KindWrongPIN (-1 when unknown, 0 otherwise) and a message for people.
type Error struct {
	Kind      string
	TriesLeft int
	Message   string
}

// Classify maps an error of package client to the API's Error. The message is the
// client's own (its errors hold no PIN, token, share or code), except for a bad code,
// whose message is fixed.
func Classify(err error) Error {
	e := Error{Kind: KindInternal, Message: err.Error()}
	var wp *client.WrongPINError
	var api *client.APIError
	var dta *client.DTAUnreachableError
	var bad *client.BadShareError
	var quorum *client.QuorumError
	var ue *url.Error
	switch {
	case errors.As(err, &wp):
		e.Kind, e.TriesLeft = KindWrongPIN, wp.TriesLeft
	case errors.Is(err, client.ErrWrongPIN):
		e.Kind, e.TriesLeft = KindWrongPIN, -1
	case errors.Is(err, client.ErrBlocked):
		e.Kind = KindBlocked
	case errors.Is(err, client.ErrRevoked):
		e.Kind = KindRevoked
	case errors.Is(err, client.ErrServerNotAuthentic):
		e.Kind = KindNotAuthentic
	case errors.Is(err, client.ErrPossibleInterception):
		e.Kind = KindInterception
	case errors.Is(err, client.ErrNotEnrolled):
		e.Kind = KindNotEnrolled
	case errors.Is(err, client.ErrPermitExpired):
		e.Kind = KindPermitExpired
	case errors.Is(err, client.ErrIdentityExpired):
		e.Kind = KindIdentityExpired
	case errors.Is(err, wire.ErrCode), errors.As(err, &api) && api.Code == "unknown_code":
		e.Kind = KindBadCode
		e.Message = "wasmclient: this enrolment code is unknown, used or expired; ask the administrator for a new one"
	case errors.Is(err, client.ErrWrongServer):
		e.Kind = KindWrongServer
	case errors.Is(err, client.ErrBundleFingerprint), errors.Is(err, client.ErrBundleNotSuccessor):
		e.Kind = KindBundleMismatch
	case errors.As(err, &dta), errors.As(err, &bad), errors.As(err, &quorum):
		e.Kind = KindDTAUnreachable
	case errors.As(err, &ue), errors.Is(err, context.DeadlineExceeded):
		e.Kind = KindNetwork
	}
	return e
}

// needsRefresh reports whether the permits of st end within three permit periods of
// now (and the identity holds permits at all): then a login refreshes them.
func needsRefresh(st client.Status, now time.Time) bool {
	if !st.Enrolled || len(st.Permits) == 0 {
		return false
	}
	p := st.Permits[0].Until.Sub(st.Permits[0].From)
	return st.PermitsUntil.Sub(now) < 3*p
}

// normalizeFingerprint accepts hex in either case, with an optional "sha256:" prefix
// and colons (as package client does).
func normalizeFingerprint(fp string) string {
	fp = strings.TrimSpace(strings.ToLower(fp))
	fp = strings.TrimPrefix(fp, "sha256:")
	return strings.ReplaceAll(fp, ":", "")
}
