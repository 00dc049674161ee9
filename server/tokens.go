package server

import (
	"encoding/hex"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"time"
	"unicode/utf8"

	"github.com/polyroot/polyroot/internal/httpx"
	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/pairing"
	"github.com/polyroot/polyroot/server/middleware"
)

// Access-token revocation and introspection.
//
// A token is revoked by its ID (POST /v1/admin/tokens/revoke records the jti in the
// state store until every token with that ID has expired) or with its identity (POST
// /v1/admin/revoke: a revoked enrolment's tokens are all inactive, whenever they were
// issued). POST /v1/token/introspect (RFC 7662) tells a resource server whether a token
// is active; /v1/permits refuses inactive tokens the same way. Both read the store, so
// a revocation on one replica holds on every replica sharing it at once.

const (
	// maxJTILength bounds the jti of a revocation (this server's are 32 hex digits).
	maxJTILength = 128
	// maxIntrospectedToken bounds the token of an introspection request: a longer one
	// is not one of this server's (they are about 400 bytes) and is inactive.
	maxIntrospectedToken = 4 << 10
	// minTokenRevocation is the least time a jti revocation is kept: at least the
	// token lifetime, but a day even with a shorter TokenTTL, so that a token issued
	// before a change of TokenTTL, or by a replica configured with a longer one (up to
	// a day), does not outlive its revocation.
	minTokenRevocation = 24 * time.Hour
)

var (
	errNoIntrospection  = httpx.Errorf(http.StatusNotFound, "not_found", "no such endpoint")
	errIntrospectionKey = httpx.Errorf(http.StatusUnauthorized, "unauthorized",
		"token introspection needs the introspection token (Authorization: Bearer <token>)")
	errBadJTI = httpx.Errorf(http.StatusBadRequest, "bad_request", "jti must be 1 to %d visible ASCII characters", maxJTILength)
)

// validJTI accepts 1 to maxJTILength visible ASCII characters.
func validJTI(jti string) bool {
	if jti == "" || len(jti) > maxJTILength {
		return false
	}
	for i := range len(jti) {
		if jti[i] < 0x21 || jti[i] > 0x7e {
			return false
		}
	}
	return true
}

// tokenRevocationEnd is how long a jti revoked at now stays recorded: past the expiry
// of any token of this server with that ID (TokenTTL, at least minTokenRevocation, and
// the verifiers' leeway), in whole seconds.
func (s *Server) tokenRevocationEnd(now time.Time) time.Time {
	return now.Add(max(s.cfg.TokenTTL, minTokenRevocation) + middleware.Leeway).Truncate(time.Second).Add(time.Second)
}

func (s *Server) handleRevokeToken(w http.ResponseWriter, r *http.Request) {
	res, err := s.revokeToken(w, r)
	s.adminResult("revoke_token", err)
	if err != nil {
		httpx.WriteError(w, r, s.cfg.Logger, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, res)
}

// revokeToken records a jti revoked. Any well-formed jti is recorded, whether this
// server issued it or not: the answer is the same for all, so it tells nothing about
// which tokens exist, and a revocation sent before the token is seen still holds.
// Revoking again is harmless (the later end is kept).
func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) (*wire.TokenRevokeResult, error) {
	var req wire.TokenRevokeRequest
	if err := httpx.DecodeJSON(w, r, httpx.MaxBody, &req); err != nil {
		return nil, err
	}
	if !validJTI(req.JTI) {
		return nil, errBadJTI
	}
	until := s.tokenRevocationEnd(s.cfg.Now())
	if err := s.store.revokeToken(req.JTI, until); err != nil {
		return nil, err
	}
	s.cfg.Logger.InfoContext(r.Context(), "access token revoked", "jti", req.JTI, "until", until)
	return &wire.TokenRevokeResult{JTI: req.JTI, RevokedUntil: until}, nil
}

// jtiRevoked reports whether the token's ID is revoked. A token without an ID cannot
// be revoked by it, and this server issues none: it counts as revoked.
func (s *Server) jtiRevoked(c *middleware.Claims) (bool, error) {
	if c.ID == "" {
		return true, nil
	}
	return s.store.tokenRevoked(c.ID)
}

// activeToken returns the claims of tok and its identity hash if the token is active
// at now: signed by this server's token key for its domain, within its validity
// (middleware.Leeway as for app backends), its jti not revoked, and its identity
// enrolled and usable (not revoked, not past a temporary identity's end). A blocked
// identity's tokens stay active: a block stops PIN guessing, which anyone who knows
// an idhash can bring about, and says nothing against the logins that succeeded; if
// they are suspect, the registrar revokes. An inactive token gives nil claims, and an
// error only when the store fails.
func (s *Server) activeToken(tok string, now time.Time) (*middleware.Claims, error) {
	if len(tok) > maxIntrospectedToken {
		return nil, nil
	}
	c, err := middleware.NewKeySet(s.TokenPublicKey()).Verify(tok, s.domain.Name, s.domain.Name, now)
	if err != nil {
		return nil, nil
	}
	if revoked, err := s.jtiRevoked(c); err != nil || revoked {
		return nil, err
	}
	var id pairing.IDHash
	if b, err := hex.DecodeString(c.IDHash); err != nil || len(b) != len(id) {
		return nil, nil
	} else {
		copy(id[:], b)
	}
	e, err := s.store.enrolment(id)
	if errors.Is(err, errNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	if !e.usable(now) {
		return nil, nil
	}
	return c, nil
}

func (s *Server) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	res, err := s.introspect(w, r)
	if err != nil {
		httpx.WriteError(w, r, s.cfg.Logger, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusOK, res)
}

// introspect answers an RFC 7662 introspection request of a caller that presents the
// introspection token; without one configured the endpoint does not exist (404, as
// any unknown path). Every inactive token gets the same {"active": false}.
func (s *Server) introspect(w http.ResponseWriter, r *http.Request) (*wire.Introspection, error) {
	if s.cfg.IntrospectionToken == "" {
		return nil, errNoIntrospection
	}
	got, ok := middleware.BearerToken(r)
	if !sameToken(got, s.cfg.IntrospectionToken) || !ok {
		return nil, errIntrospectionKey
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, httpx.MaxBody))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, httpx.Errorf(http.StatusRequestEntityTooLarge, "body_too_large", "the request body is larger than %d bytes", httpx.MaxBody)
	case err != nil:
		return nil, httpx.Errorf(http.StatusBadRequest, "bad_body", "could not read the request body")
	}
	tok, err := decodeIntrospectionRequest(r.Header.Get("Content-Type"), body)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	c, err := s.activeToken(tok, now)
	if err != nil || c == nil {
		return &wire.Introspection{}, err
	}
	res := &wire.Introspection{Active: true, Sub: c.Subject, JTI: c.ID, IDHash: c.IDHash}
	if c.ExpiresAt != nil {
		res.Exp = c.ExpiresAt.Unix()
	}
	if c.IssuedAt != nil {
		res.Iat = c.IssuedAt.Unix()
	}
	return res, nil
}

// decodeIntrospectionRequest returns the token of an introspection request body:
// JSON (wire.IntrospectionRequest, read as strictly as every JSON body) or, as RFC
// 7662 sends it, an application/x-www-form-urlencoded form with one token parameter
// (other parameters, token_type_hint among them, are ignored, as RFC 6749 section
// 3.2 has it). Errors never quote the body: it holds a token.
func decodeIntrospectionRequest(contentType string, body []byte) (string, error) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		mt = ""
	}
	var tok string
	switch mt {
	case "application/json":
		var req wire.IntrospectionRequest
		if err := httpx.UnmarshalStrict(body, &req); err != nil {
			return "", err
		}
		tok = req.Token
	case "application/x-www-form-urlencoded":
		form, err := url.ParseQuery(string(body))
		if err != nil || !utf8.Valid(body) {
			return "", httpx.Errorf(http.StatusBadRequest, "bad_request", "the form does not parse (application/x-www-form-urlencoded)")
		}
		switch t := form["token"]; {
		case len(t) > 1:
			return "", httpx.Errorf(http.StatusBadRequest, "bad_request", "token appears more than once")
		case len(t) == 1:
			tok = t[0]
		}
	default:
		return "", httpx.Errorf(http.StatusUnsupportedMediaType, "unsupported_media_type",
			"send the request body as application/x-www-form-urlencoded (RFC 7662) or application/json")
	}
	if tok == "" {
		return "", httpx.Errorf(http.StatusBadRequest, "bad_request", "token is required")
	}
	return tok, nil
}
