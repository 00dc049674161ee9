package server

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/polyroot/polyroot/internal/httpx"
	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/pairing"
	"github.com/polyroot/polyroot/server/middleware"
)

// loginFailedMessage is the one message of every login failure.
const loginFailedMessage = "login failed: wrong PIN, or this identity cannot log in here"

var (
	errBadPass1      = httpx.Errorf(http.StatusBadRequest, "bad_request", "pass 1 is malformed")
	errBadPass2      = httpx.Errorf(http.StatusBadRequest, "bad_request", "pass 2 is malformed")
	errPermitSlot    = httpx.Errorf(http.StatusConflict, "permit_slot", "the permit slot is not the current one; fetch a current permit")
	errUnknownSess   = httpx.Errorf(http.StatusNotFound, "unknown_session", "no such login session: it expired or was used; start again")
	errBindingFailed = httpx.Errorf(http.StatusUnauthorized, "channel_binding_mismatch",
		"the token and PIN are right but the client and the server see different TLS channels: something intercepts the connection")
	errUnboundRefused = httpx.Errorf(http.StatusForbidden, "unbound_refused",
		"this server accepts only logins bound to their TLS channel (native clients); nothing was checked or counted")
	errBadPurpose     = httpx.Errorf(http.StatusBadRequest, "bad_request", `purpose must be "", "login" or "renew"`)
	errRenewSlot      = httpx.Errorf(http.StatusBadRequest, "bad_request", "a renewal's pass 1 is made without a permit and has slot 0")
	errLoginDays      = httpx.Errorf(http.StatusBadRequest, "bad_request", "days is only for a renewal")
	errRenewalDays    = httpx.Errorf(http.StatusBadRequest, "bad_request", "days must be 0 to %d", maxPermitDays)
	errBadAuthRequest = httpx.Errorf(http.StatusBadRequest, "bad_request", "auth_request must be at most 64 characters of [0-9A-Za-z_-]")
)

// validAuthRequest reports whether a FinishRequest's auth_request can be an auth
// request's ID (or is empty): it goes into the access token as it is.
func validAuthRequest(id string) bool {
	if len(id) > 64 {
		return false
	}
	for _, c := range []byte(id) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// maxLoginBody bounds login request bodies: pass 1 is 1352 bytes (1804 in base64),
// with a domain name of at most 253 bytes and the purpose.
const maxLoginBody = 4 << 10

// stepName is the metrics label of a login step.
func stepName(step string, renew bool) string {
	if renew {
		return "renew_" + step
	}
	return step
}

func (s *Server) handleStart(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ch, renew, err := s.start(w, r)
	s.metrics.login(stepName("start", renew), resultOf(err), time.Since(start))
	if err != nil {
		httpx.WriteError(w, r, s.cfg.Logger, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, ch)
}

// start answers pass 1 with a challenge, whoever the identity is: unknown, revoked,
// blocked and expired identities get a challenge made the same way, and fail at pass 2.
// A renewal (purpose "renew") is verified without a permit (A' = A) and must have slot
// 0; the session remembers its purpose. renew reports the purpose, for the metrics.
func (s *Server) start(w http.ResponseWriter, r *http.Request) (_ *wire.StartResponse, renew bool, _ error) {
	var req wire.StartRequest
	if err := httpx.DecodeJSON(w, r, maxLoginBody, &req); err != nil {
		return nil, false, err
	}
	if req.Domain != "" && req.Domain != s.domain.Name {
		return nil, req.Purpose == wire.PurposeRenew, httpx.Errorf(http.StatusConflict, "wrong_domain",
			"this server serves the domain %q, not %q", s.domain.Name, req.Domain)
	}
	if req.Unbound && s.cfg.RefuseUnboundLogins {
		return nil, req.Purpose == wire.PurposeRenew, errUnboundRefused
	}
	v := s.verifier
	switch req.Purpose {
	case "", wire.PurposeLogin:
		if req.Days != 0 {
			return nil, false, errLoginDays
		}
	case wire.PurposeRenew:
		renew, v = true, s.renewer
		if s.domain.PermitPeriod == 0 {
			return nil, renew, errNoPermits
		}
		if req.Days < 0 || req.Days > maxPermitDays {
			return nil, renew, errRenewalDays
		}
		// Before any work on pass 1: nothing is verified, so nothing is counted.
		if err := s.probe.unavailable(w, s.cfg.DTAProbeInterval, "permit renewal needs every DTA of the domain",
			"nothing was counted: try again later"); err != nil {
			return nil, renew, err
		}
	default:
		return nil, false, errBadPurpose
	}
	var p1 pairing.Pass1
	if err := p1.UnmarshalBinary(req.Pass1); err != nil {
		return nil, renew, errBadPass1
	}
	now := s.cfg.Now()
	if renew && p1.Slot != 0 {
		return nil, renew, errRenewSlot
	}
	if !v.AcceptSlot(p1.Slot, now) {
		return nil, renew, errPermitSlot
	}
	sess, ch, err := v.Challenge(rand.Reader, &p1, now)
	if errors.Is(err, pairing.ErrPermitSlot) {
		return nil, renew, errPermitSlot
	} else if err != nil {
		return nil, renew, errBadPass1
	}
	b, err := ch.MarshalBinary()
	if err != nil {
		return nil, renew, err
	}
	if err := s.store.putSession(&pending{sess: sess, idhash: p1.IDHash, created: now, renew: renew, days: req.Days, unbound: req.Unbound}); err != nil {
		return nil, renew, err
	}
	return &wire.StartResponse{Challenge: b}, renew, nil
}

// loginFailure is a 401 "login_failed" with the tries left.
type loginFailure struct{ tries int }

func (e *loginFailure) Error() string { return "login_failed" }

func (s *Server) handleFinish(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	resp, renew, err := s.finish(w, r)
	s.metrics.login(stepName("finish", renew), resultOf(err), time.Since(start))
	var lf *loginFailure
	switch {
	case errors.As(err, &lf):
		httpx.WriteJSON(w, http.StatusUnauthorized, wire.LoginFailure{Code: "login_failed", Message: loginFailedMessage, TriesLeft: lf.tries})
	case err != nil:
		httpx.WriteError(w, r, s.cfg.Logger, err)
	default:
		w.Header().Set("Cache-Control", "no-store")
		httpx.WriteJSON(w, http.StatusOK, resp)
	}
}

func resultOf(err error) string {
	var lf *loginFailure
	var he *httpx.Error
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &lf):
		return "login_failed"
	case errors.As(err, &he):
		return he.Code
	}
	return "internal"
}

// finish checks pass 2. A login session's success gets an access token, a renewal
// session's a permit ticket; failures are the same for both. renew reports the
// session's purpose, for the metrics.
func (s *Server) finish(w http.ResponseWriter, r *http.Request) (_ *wire.FinishResponse, renew bool, _ error) {
	var req wire.FinishRequest
	if err := httpx.DecodeJSON(w, r, maxLoginBody, &req); err != nil {
		return nil, false, err
	}
	var p2 pairing.Pass2
	if err := p2.UnmarshalBinary(req.Pass2); err != nil {
		return nil, false, errBadPass2
	}
	if !validAuthRequest(req.AuthRequest) {
		return nil, false, errBadAuthRequest
	}
	now := s.cfg.Now()
	p, err := s.store.takeSession(p2.SessionID, now)
	if err != nil {
		return nil, false, err
	}
	if p == nil {
		return nil, false, errUnknownSess
	}
	resp, err := s.check(r, p, &p2, req.AuthRequest, now)
	return resp, p.renew, err
}

// check verifies pass 2 of session p and answers it. Every idhash, enrolled or not,
// goes through the same steps: one admission, one full check of pass 2 (alone with
// Finish or Reject, or in a batch and Conclude: the equation and the key schedule run
// whether the equation holds or not, and a refused identity's pass 2 costs its batch
// what a wrong PIN costs) and, on failure, one synced write of a failure record of the same size. So
// neither the answer nor the work tells a wrong PIN from an unknown, revoked, expired
// or blocked identity, nor a blocked identity's right PIN from a wrong one.
func (s *Server) check(r *http.Request, p *pending, p2 *pairing.Pass2, authRequest string, now time.Time) (*wire.FinishResponse, error) {
	var binding []byte
	if !p.unbound {
		var err error
		if binding, err = channelBinding(r); err != nil {
			return nil, errBindingFailed
		}
	}
	id := p.idhash
	e, err := s.store.enrolment(id)
	if err != nil && !errors.Is(err, errNotFound) {
		return nil, err
	}
	known := e != nil
	admitted, err := s.fails.admit(r.Context(), id, known, now)
	if err != nil {
		return nil, err
	}
	var fin *pairing.Finish
	var key []byte
	var ferr error
	refuse := !admitted || !e.usable(now) // blocked, unknown, revoked or expired: fail after the same work
	switch {
	case s.batch != nil:
		fin, key, ferr = p.sess.Conclude(p2, binding, s.batch.verify(p.sess, p2, refuse))
	case refuse:
		ferr = p.sess.Reject(p2, binding)
	default:
		fin, key, ferr = p.sess.Finish(p2, binding)
	}
	outcome := outcomeSuccess
	switch {
	case errors.Is(ferr, pairing.ErrChannelBinding):
		outcome = outcomeNeutral
	case ferr != nil:
		outcome = outcomeFailure
	}
	v, err := s.fails.done(id, known, admitted, outcome, now)
	if v.exceeded {
		s.metrics.budget.Inc()
		s.cfg.Logger.WarnContext(r.Context(), "daily login failure budget used up: identity blocked until the registrar unblocks it",
			"idhash", hex.EncodeToString(id[:]), "enrolled", known, "max_failures_per_day", s.cfg.MaxFailuresPerDay)
	}
	switch {
	case err != nil:
		return nil, err
	case v.neutral:
		return nil, errBindingFailed
	case !v.ok:
		return nil, &loginFailure{tries: v.tries}
	}
	tag, _ := fin.MarshalBinary()
	if p.renew {
		// A renewal gets a permit ticket and never an access token.
		pt, err := s.permitTicket(id, e, p.days, now)
		if err != nil {
			return nil, err
		}
		s.cfg.Logger.InfoContext(r.Context(), "permits renewed", "idhash", hex.EncodeToString(id[:]), "first_slot", pt.FirstSlot, "last_slot", pt.LastSlot)
		return &wire.FinishResponse{Finish: tag, ID: e.ID, Permit: pt}, nil
	}
	tok, exp, jti, err := s.issueToken(e.ID, id, loginMethods(e.Device, binding != nil), authRequest, now)
	if err != nil {
		return nil, err
	}
	s.keys.put(jti, key, exp, now)
	return &wire.FinishResponse{Finish: tag, ID: e.ID, AccessToken: tok, ExpiresAt: exp}, nil
}

// channelBinding returns the RFC 9266 tls-exporter binding of the request's
// connection, or nil without TLS.
func channelBinding(r *http.Request) ([]byte, error) {
	if r.TLS == nil {
		return nil, nil
	}
	return r.TLS.ExportKeyingMaterial("EXPORTER-Channel-Binding", nil, 32)
}

// loginMethods is the amr claim (RFC 8176) of a login's access token: always
// middleware.MethodMPin; middleware.MethodPIN for a person (not a device); and
// middleware.MethodChannelBound when the transcript held the TLS connection's
// tls-exporter binding, so that the client checked the server saw its channel.
func loginMethods(device, channelBound bool) []string {
	amr := []string{middleware.MethodMPin}
	if !device {
		amr = append(amr, middleware.MethodPIN)
	}
	if channelBound {
		amr = append(amr, middleware.MethodChannelBound)
	}
	return amr
}

// issueToken signs an access token for the app-level id, logged in by the methods amr.
func (s *Server) issueToken(appID string, id pairing.IDHash, amr []string, authRequest string, now time.Time) (tok string, exp time.Time, jti string, err error) {
	var n [16]byte
	if _, err := rand.Read(n[:]); err != nil {
		return "", time.Time{}, "", err
	}
	jti = hex.EncodeToString(n[:])
	now = now.Truncate(time.Second)
	exp = now.Add(s.cfg.TokenTTL)
	domain := s.domain.Name
	c := middleware.Claims{IDHash: hex.EncodeToString(id[:]), AMR: amr, AuthRequest: authRequest, RegisteredClaims: jwt.RegisteredClaims{
		Issuer: domain, Subject: appID, Audience: jwt.ClaimStrings{domain},
		ExpiresAt: jwt.NewNumericDate(exp), IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), ID: jti,
	}}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	t.Header["kid"] = s.tokenKID
	tok, err = t.SignedString(s.cfg.TokenKey)
	return tok, exp, jti, err
}
