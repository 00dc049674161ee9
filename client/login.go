package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/pairing"
)

// A Session is a successful mutual login.
type Session struct {
	ID          string // the app-level identity the server logged in
	AccessToken string
	ExpiresAt   time.Time
	// SessionKey is the key both sides derived, bound to the TLS channel; the app may
	// use it for proof of possession. It is secret.
	SessionKey []byte
}

// Login runs the M-Pin Full mutual login with the server: it proves the token, PIN
// and current permit, and checks that the server holds the domain's key sQ
// (ErrServerNotAuthentic otherwise) and saw the same TLS channel
// (ErrPossibleInterception otherwise). Devices pass a nil pin. Both passes go over one
// kept-alive connection; their transcript includes its RFC 9266 tls-exporter binding.
// Without a permit for the current period it fails with ErrPermitExpired: renew the
// permits with RenewPermits.
func (c *Client) Login(ctx context.Context, serverURL string, pin []byte) (*Session, error) {
	return c.login(ctx, serverURL, pin, "")
}

// LoginForAuthRequest is Login made for an auth request of the auth server's OpenID
// Provider (the authRequestID its login page was opened with): the access token
// names the request, and only such a token completes it (POST /login/complete); a
// token from Login completes none.
func (c *Client) LoginForAuthRequest(ctx context.Context, serverURL string, pin []byte, authRequestID string) (*Session, error) {
	if authRequestID == "" {
		return nil, fmt.Errorf("client: no auth request to log in for")
	}
	return c.login(ctx, serverURL, pin, authRequestID)
}

func (c *Client) login(ctx context.Context, serverURL string, pin []byte, authRequest string) (*Session, error) {
	c.mu.Lock()
	st, id, tk := c.state, c.id, c.token
	c.mu.Unlock()
	if st == nil {
		return nil, ErrNotEnrolled
	}
	if st.Device && len(pin) > 0 {
		return nil, fmt.Errorf("client: this identity is a device: it logs in without a PIN")
	}
	now := c.o.now()
	if st.NotAfter != nil && !now.Before(*st.NotAfter) {
		return nil, ErrIdentityExpired
	}
	pc := &pairing.Client{Domain: c.domain, IDHash: id, Token: tk, Slot: c.domain.Slot(now)}
	if c.domain.PermitPeriod != 0 {
		b, ok := st.Permits[pc.Slot]
		if !ok {
			return nil, ErrPermitExpired
		}
		var err error
		if pc.Permit, err = pairing.DecodeG1(b); err != nil {
			return nil, fmt.Errorf("client: token file: permit of slot %d: %w", pc.Slot, err)
		}
	}
	fr, key, err := c.exchange(ctx, serverURL, pc, pin, wire.StartRequest{}, authRequest)
	if err != nil {
		return nil, err
	}
	if fr.ID != st.ID {
		return nil, fmt.Errorf("client: the server logged in %q, this token is %q", fr.ID, st.ID)
	}
	return &Session{ID: fr.ID, AccessToken: fr.AccessToken, ExpiresAt: fr.ExpiresAt, SessionKey: key}, nil
}

// exchange runs the two passes of pc with the server (a login, or with req.Purpose
// "renew" a permit renewal). It tries once more only when pass 2 never left (its
// connection could not be made) or was refused as channel_binding_mismatch after
// travelling on another connection than pass 1: in both cases the server counted no
// PIN failure (a mismatch is neutral). Pass 2 that was sent but got no answer is not
// tried again: the server may have counted it, and a fresh try would count a wrong PIN
// twice. A login_failed is never retried, so a wrong PIN counts once. A second
// mismatch on a changed connection is ErrPossibleInterception: a proxy that closes
// the connection after pass 1 must not hide an interception behind a retry. It
// returns the server's answer and the session key only after the server's tag
// verified. authRequest goes with pass 2 (wire.FinishRequest.AuthRequest).
func (c *Client) exchange(ctx context.Context, serverURL string, pc *pairing.Client, pin []byte, req wire.StartRequest, authRequest string) (*wire.FinishResponse, []byte, error) {
	startURL, err := c.o.serverURL(serverURL, "/v1/login/start")
	if err != nil {
		return nil, nil, err
	}
	finishURL, _ := c.o.serverURL(serverURL, "/v1/login/finish")
	if norm, err := normalizePIN(pin); err == nil {
		// The form Enroll took the PIN out in. A PIN that is not text (from before the
		// policy) goes as given.
		defer clear(norm)
		pin = norm
	}
	for attempt := 0; ; attempt++ {
		fr, key, err := c.passes(ctx, startURL, finishURL, pc, pin, req, authRequest)
		var re *retryableError
		if errors.As(err, &re) {
			if attempt == 0 && ctx.Err() == nil {
				continue // one fresh try, with new passes
			}
			err = re.err
			if errors.Is(err, errConnectionChanged) {
				err = fmt.Errorf("%w (on two tries the connection of pass 1 was closed before pass 2, as by a proxy in between)", ErrPossibleInterception)
			}
		}
		return fr, key, err
	}
}

// A retryableError is a pass 2 that may be sent again in a fresh exchange: err is what
// the caller gets if the second try fails the same way.
type retryableError struct{ err error }

func (e *retryableError) Error() string { return e.err.Error() }
func (e *retryableError) Unwrap() error { return e.err }

// errConnectionChanged: pass 2 travelled on another connection than the one whose
// binding it carries (the first one closed), so the server's channel_binding_mismatch
// proves nothing about interception.
var errConnectionChanged = errors.New("client: the connection changed between the login passes; try again")

func (c *Client) passes(ctx context.Context, startURL, finishURL string, pc *pairing.Client, pin []byte, req wire.StartRequest, authRequest string) (*wire.FinishResponse, []byte, error) {
	sess, p1, err := pc.Start(rand.Reader, pin)
	if err != nil {
		return nil, nil, fmt.Errorf("client: %w", err)
	}
	req.Pass1, _ = p1.MarshalBinary()
	req.Domain = c.domain.Name
	req.Unbound = c.o.unbound
	var sr wire.StartResponse
	resp, err := postJSON(ctx, c.o.serverHTTP, startURL, "", req, &sr)
	if err != nil {
		return nil, nil, loginError(err)
	}
	var ch pairing.Challenge
	if err := ch.UnmarshalBinary(sr.Challenge); err != nil {
		return nil, nil, fmt.Errorf("client: the server's challenge is malformed: %w", err)
	}
	var binding []byte // none in an unbound login (WithoutChannelBinding)
	if !req.Unbound {
		if binding, err = channelBinding(resp); err != nil {
			return nil, nil, err
		}
		// An https URL whose answer came without TLS: something between took the login
		// off its channel (an empty binding would pass where the server's session is
		// unbound, which anyone relaying pass 1 can ask for).
		if u, err := url.Parse(startURL); binding == nil && (err != nil || u.Scheme != "http") {
			return nil, nil, fmt.Errorf("%w (the answer to pass 1 did not come over TLS)", ErrPossibleInterception)
		}
	}
	p2, err := sess.Respond(&ch, binding)
	if err != nil {
		return nil, nil, fmt.Errorf("client: %w", err)
	}
	b2, _ := p2.MarshalBinary()
	var fr wire.FinishResponse
	resp, err = postJSON(ctx, c.o.serverHTTP, finishURL, "", wire.FinishRequest{Pass2: b2, AuthRequest: authRequest}, &fr)
	var se *statusError
	var me *malformedError
	switch {
	case err == nil:
	case errors.As(err, &se):
		// Only a mismatch can be explained by a change of connection; any other answer,
		// login_failed above all, is final (it was counted).
		if se.body.Code == "channel_binding_mismatch" && !req.Unbound && connectionChanged(resp, binding) {
			return nil, nil, &retryableError{errConnectionChanged}
		}
		return nil, nil, loginError(err)
	case errors.As(err, &me):
		return nil, nil, loginError(err)
	case notSent(err): // no connection for pass 2: the server never saw it
		return nil, nil, &retryableError{loginError(err)}
	default: // sent, no answer: the server may have checked and counted it
		return nil, nil, fmt.Errorf("%w (the answer to the login was lost: if the PIN was wrong, that counted once)", loginError(err))
	}
	var f pairing.Finish
	if err := f.UnmarshalBinary(fr.Finish); err != nil {
		return nil, nil, fmt.Errorf("%w (malformed key confirmation)", ErrServerNotAuthentic)
	}
	key, err := sess.Finish(&f)
	if err != nil {
		return nil, nil, ErrServerNotAuthentic
	}
	return &fr, key, nil
}

// notSent reports whether err, from a request, means the request never left: its
// connection could not be made. (The HTTP client itself sends a request again on a
// new connection when a kept-alive one turned out closed before anything was written.)
func notSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// connectionChanged reports whether r came on another TLS connection than the one
// whose binding is binding.
func connectionChanged(r *reply, binding []byte) bool {
	if r == nil || r.binding == nil {
		return false
	}
	b, err := r.binding()
	return err == nil && !bytes.Equal(b, binding)
}

// channelBinding returns the RFC 9266 tls-exporter binding of the connection that
// carried r, or nil without TLS.
func channelBinding(r *reply) ([]byte, error) {
	if r.binding == nil {
		return nil, nil
	}
	return r.binding()
}

// ErrTLSVersion: the auth server's connection is below TLS 1.3. The tls-exporter
// binding (RFC 9266) is defined for TLS 1.3; under TLS 1.2 it needs the extended
// master secret, and its value differs between "no context" and an empty context
// (RFC 5705), which TLS 1.3 does not tell apart. Logins therefore need TLS 1.3, as
// the auth server requires.
var ErrTLSVersion = errors.New("client: the auth server's TLS connection is below TLS 1.3; channel-bound logins need TLS 1.3 (configure the server, or the proxy in front of it, for TLS 1.3)")

// loginError maps the server's login refusals to the client's error kinds.
func loginError(err error) error {
	var se *statusError
	if !errors.As(err, &se) {
		return serverError(err)
	}
	switch se.body.Code {
	case "login_failed":
		if se.body.TriesLeft != nil && *se.body.TriesLeft <= 0 {
			return ErrBlocked
		}
		tries := -1 // unknown
		if se.body.TriesLeft != nil {
			tries = *se.body.TriesLeft
		}
		return &WrongPINError{TriesLeft: tries}
	case "channel_binding_mismatch":
		return ErrPossibleInterception
	case "permit_slot":
		return fmt.Errorf("%w (the server does not accept this permit slot: %s)", ErrPermitExpired, se.body.Message)
	case "wrong_domain":
		return fmt.Errorf("%w: %s; check the server URL (nothing was counted)", ErrWrongServer, se.body.Message)
	}
	if se.status == 404 { // not http.StatusNotFound: net/http would double the browser client's size
		// A DTA, a metrics listener or another service: no login route there.
		return fmt.Errorf("%w: it has no login endpoint (404); check the server URL and port (nothing was counted)", ErrWrongServer)
	}
	return se.api("server")
}
