package oidcop

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"

	"github.com/polyroot/polyroot/internal/httpx"
)

// CompleteRequest is the body of POST /login/complete: the login page's proof that
// the user logged in, for the auth request that sent it there.
type CompleteRequest struct {
	AuthRequestID string `json:"auth_request_id"`
	AccessToken   string `json:"access_token"`
}

// CompleteResponse tells the page where to send the user agent: the provider's
// callback, which issues the code to the relying party.
type CompleteResponse struct {
	Redirect string `json:"redirect"`
}

// maxCompleteBody bounds a CompleteRequest (an access token is about 500 bytes).
const maxCompleteBody = 8 << 10

var errComplete = httpx.Errorf(http.StatusUnauthorized, "login_not_accepted",
	"this login cannot complete the authorization: log in again from the application")

// CompleteLogin serves POST /login/complete, from the browser that started the auth
// request (its cookie, browser.go). The access token must come from a login at most
// MaxLoginAge old, made for this auth request, and be active; it completes one auth
// request, once. Every refusal gets the same answer, so that a caller learns nothing
// about tokens or auth requests it does not hold.
func (p *Provider) CompleteLogin(w http.ResponseWriter, r *http.Request) {
	res, err := p.complete(w, r)
	if err != nil {
		httpx.WriteError(w, r, p.cfg.Logger, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusOK, res)
}

func (p *Provider) complete(w http.ResponseWriter, r *http.Request) (*CompleteResponse, error) {
	var req CompleteRequest
	if err := httpx.DecodeJSON(w, r, maxCompleteBody, &req); err != nil {
		return nil, err
	}
	now := p.cfg.Now()
	login, err := p.cfg.Authenticate(req.AccessToken, now)
	if err != nil || login.TokenID == "" || now.Sub(login.AuthTime) > p.cfg.MaxLoginAge ||
		login.AuthRequest == "" || login.AuthRequest != req.AuthRequestID {
		return nil, errComplete
	}
	// The token is spent first: it completes this request or none, also when it comes
	// from another browser than the one that started the request (someone sent the
	// login page's link there: the request, in the starting browser's cookie, is not
	// there), so it cannot complete the request later either.
	switch err := p.cfg.Store.CreateOIDC(keyUsedLogin+login.TokenID, nil, now.Add(p.cfg.MaxLoginAge+p.cfg.AuthRequestTTL), now); {
	case errors.Is(err, ErrExists):
		return nil, errComplete
	case err != nil:
		return nil, err
	}
	a, err := p.storage.authRequest(r, req.AuthRequestID)
	if err != nil || a.Done() {
		return nil, errComplete
	}
	b, _ := json.Marshal(doneLogin{Subject: login.Subject, AMR: login.AMR, AuthTime: login.AuthTime})
	switch err := p.cfg.Store.CreateOIDC(keyDone+a.ID, b, a.Created.Add(p.cfg.AuthRequestTTL), now); {
	case errors.Is(err, ErrExists):
		return nil, errComplete
	case err != nil:
		return nil, err
	}
	p.cfg.Logger.InfoContext(r.Context(), "OpenID Connect login", "client_id", a.ClientID, "sub", login.Subject, "amr", login.AMR)
	return &CompleteResponse{Redirect: p.callbackURL(a.ID)}, nil
}

// Requester returns the host of the redirect URI of the pending auth request id, in
// r's cookie: the site the user will be sent back to, which the login page names so
// that the user can tell it is the one they came from. false for an unknown, expired
// or completed request, or another browser's.
func (p *Provider) Requester(r *http.Request, id string) (string, bool) {
	a, err := p.storage.authRequest(r, id)
	if err != nil || a.Done() {
		return "", false
	}
	u, err := url.Parse(a.RedirectURI)
	if err != nil || u.Host == "" {
		return "", false
	}
	return u.Host, true
}
