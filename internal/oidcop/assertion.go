package oidcop

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// The library checks a client assertion's signature, issuer, subject, audience and
// expiry, but not that it is new: an assertion seen by a proxy or in a log would
// authenticate its client again until its exp, up to an hour after its iat. So before
// the library, a verified assertion must name a jti (RFC 7523 §3: "MAY" there,
// required here), live at most maxAssertionLife from iat to exp, and be new: its jti
// is recorded, on every replica (Store.CreateOIDC), until its exp.
const (
	maxAssertionLife = 5 * time.Minute
	maxJTI           = 256
	keyAssertion     = "assertion/" // + a digest of client ID and jti (assertionKey)
)

// assertionAlgs are the algorithms the library accepts for client assertions.
var assertionAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.PS256}

// errAssertionServer is a store failure while recording a jti.
var errAssertionServer = errors.New("oidcop: recording the client assertion failed")

// checkAssertion refuses the client assertion of r (private_key_jwt, on the token,
// introspection and revocation endpoints) if it is validly signed by its client but
// names no jti, lives too long, or was used before. An assertion that is not validly
// signed is left to the library, which refuses it, so that nobody but the client can
// make the store record anything.
func (p *Provider) checkAssertion(r *http.Request) error {
	if r.Method != http.MethodPost || r.ParseForm() != nil {
		return nil // the library answers it
	}
	raw := r.PostForm.Get("client_assertion")
	if raw == "" {
		return nil
	}
	tok, err := jwt.ParseSigned(raw, assertionAlgs)
	if err != nil || len(tok.Headers) != 1 {
		return nil
	}
	var unverified jwt.Claims
	if tok.UnsafeClaimsWithoutVerification(&unverified) != nil {
		return nil
	}
	c, ok := p.storage.clients[unverified.Issuer]
	if !ok || c.AuthMethod != AuthPrivateKeyJWT {
		return nil
	}
	keys := c.keys.Key(tok.Headers[0].KeyID)
	var claims jwt.Claims
	if len(keys) == 0 || tok.Claims(keys[0].Key, &claims) != nil {
		return nil
	}
	now := p.storage.now()
	switch {
	case claims.ID == "" || len(claims.ID) > maxJTI:
		return errors.New("the client assertion needs a jti of at most 256 characters: each assertion is accepted once")
	case claims.IssuedAt == nil || claims.Expiry == nil || claims.Expiry.Time().Sub(claims.IssuedAt.Time()) > maxAssertionLife:
		return errors.New("the client assertion must have iat and exp at most 5 minutes apart")
	case !claims.Expiry.Time().After(now.Add(-time.Second)):
		return nil // expired: the library says so
	}
	switch err := p.cfg.Store.CreateOIDC(assertionKey(claims.Issuer, claims.ID), nil, claims.Expiry.Time().Add(time.Minute), now); {
	case errors.Is(err, ErrExists):
		return errors.New("the client assertion was used before: make a new one (a new jti) for each request")
	case err != nil:
		p.cfg.Logger.Error("recording a client assertion failed", "client", claims.Issuer, "err", err)
		return errAssertionServer
	}
	return nil
}

// assertionKey is the store key of a client's used jti.
func assertionKey(client, jti string) string {
	sum := sha256.Sum256([]byte(client + "\x00" + jti))
	return keyAssertion + hex.EncodeToString(sum[:])
}

// refuseAssertion answers a request whose client assertion checkAssertion refused, as
// RFC 6749 §5.2 answers a failed client authentication.
func refuseAssertion(w http.ResponseWriter, err error) {
	status, code := http.StatusUnauthorized, "invalid_client"
	if errors.Is(err, errAssertionServer) {
		status, code = http.StatusInternalServerError, "server_error"
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": err.Error()})
}
