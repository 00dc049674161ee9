package oidcop

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/polyroot/polyroot/server/middleware"
)

// Keys of the Store, by kind: "done/" + auth request ID (the login that completed it),
// "code/" + code (its auth request, completed), "at/" + access token ID, "logout/" +
// a digest of subject and client ID (the time of the last logout: logoutKey), "used/" +
// jti (an access token that completed an auth request), "issued/" + auth request ID
// (its code was issued). A pending auth request is in its browser's cookie
// (browser.go), not here.
const (
	keyDone        = "done/"
	keyCode        = "code/"
	keyAccessToken = "at/"
	keyLogout      = "logout/"
	keyUsedLogin   = "used/"
	keyCodeIssued  = "issued/"
)

// authRequest is an auth request as sealed in its cookie: the request, and once a
// login completed it, who and how (from the store).
type authRequest struct {
	ID                  string                   `json:"id"`
	ClientID            string                   `json:"client_id"`
	RedirectURI         string                   `json:"redirect_uri"`
	Scopes              []string                 `json:"scopes"`
	State               string                   `json:"state,omitempty"`
	Nonce               string                   `json:"nonce,omitempty"`
	ResponseType        oidc.ResponseType        `json:"response_type"`
	ResponseMode        oidc.ResponseMode        `json:"response_mode,omitempty"`
	CodeChallenge       string                   `json:"code_challenge"`
	CodeChallengeMethod oidc.CodeChallengeMethod `json:"code_challenge_method"`
	Created             time.Time                `json:"created"`
	login               *doneLogin
	// code is the code it was read by (AuthRequestByCode), taken from the store when
	// the tokens are made (CreateAccessToken).
	code string
}

// doneLogin is the login that completed an auth request.
type doneLogin struct {
	Subject  string    `json:"sub"`
	AMR      []string  `json:"amr"`
	AuthTime time.Time `json:"auth_time"`
}

var _ op.AuthRequest = (*authRequest)(nil)

func (a *authRequest) GetID() string         { return a.ID }
func (a *authRequest) GetACR() string        { return "" }
func (a *authRequest) GetAudience() []string { return []string{a.ClientID} }
func (a *authRequest) GetClientID() string   { return a.ClientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge {
	return &oidc.CodeChallenge{Challenge: a.CodeChallenge, Method: a.CodeChallengeMethod}
}
func (a *authRequest) GetNonce() string                   { return a.Nonce }
func (a *authRequest) GetRedirectURI() string             { return a.RedirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType { return a.ResponseType }
func (a *authRequest) GetResponseMode() oidc.ResponseMode { return a.ResponseMode }
func (a *authRequest) GetScopes() []string                { return a.Scopes }
func (a *authRequest) GetState() string                   { return a.State }
func (a *authRequest) Done() bool                         { return a.login != nil }
func (a *authRequest) GetSubject() string {
	if a.login == nil {
		return ""
	}
	return a.login.Subject
}
func (a *authRequest) GetAMR() []string {
	if a.login == nil {
		return nil
	}
	return a.login.AMR
}
func (a *authRequest) GetAuthTime() time.Time {
	if a.login == nil {
		return time.Time{}
	}
	return a.login.AuthTime
}

// accessToken is an access token of the provider as stored.
type accessToken struct {
	Subject  string    `json:"sub"`
	ClientID string    `json:"client_id"`
	Scopes   []string  `json:"scopes"`
	AMR      []string  `json:"amr"`
	AuthTime time.Time `json:"auth_time"`
	Issued   time.Time `json:"iat"`
	Expires  time.Time `json:"exp"`
}

// storage is the op.Storage of a Provider.
type storage struct {
	cfg     *Config
	clients map[string]*Client
	sealer  *requestSealer
}

// codeEntry is what the store keeps under a code: its auth request, completed.
type codeEntry struct {
	Request *authRequest `json:"request"`
	Login   *doneLogin   `json:"login"`
}

var _ op.Storage = (*storage)(nil)

// errNotFound is what the library shows for a missing auth request, code or token.
var errNotFound = oidc.ErrInvalidRequest().WithDescription("unknown or expired")

func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (s *storage) now() time.Time { return s.cfg.Now() }

func (s *storage) CreateAuthRequest(ctx context.Context, r *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	// PKCE is required of every client: without it a code caught on its way back
	// (a redirect URI shared with another app, a log) would be enough.
	if r.CodeChallenge == "" || r.CodeChallengeMethod != oidc.CodeChallengeMethodS256 {
		return nil, oidc.ErrInvalidRequest().WithDescription("PKCE is required: send code_challenge with code_challenge_method S256")
	}
	if c, err := base64.RawURLEncoding.DecodeString(r.CodeChallenge); err != nil || len(c) != sha256.Size {
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge must be the base64url SHA-256 of the verifier (43 characters)")
	}
	if r.RequestParam != "" {
		return nil, oidc.ErrRequestNotSupported()
	}
	if len(r.State) > maxState || len(r.Nonce) > maxNonce {
		return nil, oidc.ErrInvalidRequest().WithDescription("state may have at most %d bytes, nonce %d", maxState, maxNonce)
	}
	now := s.now()
	a := &authRequest{ID: newID(), ClientID: r.ClientID, RedirectURI: r.RedirectURI, Scopes: r.Scopes,
		State: r.State, Nonce: r.Nonce, ResponseType: r.ResponseType, ResponseMode: r.ResponseMode,
		CodeChallenge: r.CodeChallenge, CodeChallengeMethod: r.CodeChallengeMethod, Created: now}
	sealed, err := s.sealer.seal(a)
	if err != nil {
		return nil, err
	}
	noteCreated(ctx, a.ID, sealed)
	return a, nil
}

func (s *storage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	return s.authRequest(browserRequest(ctx), id)
}

// authRequest reads auth request id from r's cookie and, if a login completed it,
// that login from the store.
func (s *storage) authRequest(r *http.Request, id string) (*authRequest, error) {
	a, _, ok := s.sealer.open(r, id)
	if !ok {
		return nil, errNotFound
	}
	switch b, err := s.cfg.Store.GetOIDC(keyDone+id, s.now()); {
	case err == nil:
		a.login = new(doneLogin)
		if err := json.Unmarshal(b, a.login); err != nil {
			return nil, err
		}
	case !errors.Is(err, ErrNotFound):
		return nil, err
	}
	return a, nil
}

// AuthRequestByCode reads the request of a code; the code is taken (used up) only
// once the client is authenticated and its PKCE verifier checked, when its tokens are
// made, so that whoever sees a code but cannot redeem it cannot burn it either.
func (s *storage) AuthRequestByCode(_ context.Context, code string) (op.AuthRequest, error) {
	b, err := s.cfg.Store.GetOIDC(keyCode+code, s.now())
	if errors.Is(err, ErrNotFound) {
		return nil, oidc.ErrInvalidGrant().WithDescription("the code is unknown, expired or used")
	} else if err != nil {
		return nil, err
	}
	var e codeEntry
	if err := json.Unmarshal(b, &e); err != nil || e.Request == nil || e.Login == nil {
		return nil, oidc.ErrInvalidGrant()
	}
	e.Request.login, e.Request.code = e.Login, code
	return e.Request, nil
}

// SaveAuthCode keeps the one code of auth request id, for the browser that started
// it: the library's callback makes a code each time it is called for a completed
// request, and only the first call from that browser gets it (the others are
// refused), on any replica.
func (s *storage) SaveAuthCode(ctx context.Context, id, code string) error {
	a, err := s.authRequest(browserRequest(ctx), id)
	if err != nil {
		return oidc.ErrAccessDenied().WithDescription("this sign-in was started in another browser or has expired")
	}
	if !a.Done() {
		return oidc.ErrAccessDenied().WithDescription("no login completed this sign-in")
	}
	b, _ := json.Marshal(codeEntry{Request: a, Login: a.login})
	now := s.now()
	// As long as the request's cookie opens, on any replica (its Created, not this
	// replica's clock, bounds that), and a minute more.
	expires := now.Add(s.cfg.AuthRequestTTL)
	if end := a.Created.Add(s.cfg.AuthRequestTTL + time.Minute); end.After(expires) {
		expires = end
	}
	switch err := s.cfg.Store.CreateOIDC(keyCodeIssued+id, nil, expires, now); {
	case errors.Is(err, ErrExists):
		return oidc.ErrInvalidRequest().WithDescription("a code was issued for this request already")
	case err != nil:
		return err
	}
	return s.cfg.Store.CreateOIDC(keyCode+code, b, now.Add(s.cfg.CodeTTL), now)
}

// DeleteAuthRequest, which the library calls once the code was exchanged, keeps the
// login that completed auth request id until it expires with the request: a browser
// that replays the request's cookie then finds it done, not pending again.
func (s *storage) DeleteAuthRequest(context.Context, string) error { return nil }

func (s *storage) CreateAccessToken(_ context.Context, r op.TokenRequest) (string, time.Time, error) {
	a, ok := r.(*authRequest)
	if !ok || a.code == "" {
		return "", time.Time{}, oidc.ErrUnsupportedGrantType()
	}
	now := s.now()
	// Of concurrent exchanges of one code, on any replica, one takes it.
	if _, err := s.cfg.Store.TakeOIDC(keyCode+a.code, now); errors.Is(err, ErrNotFound) {
		return "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("the code is unknown, expired or used")
	} else if err != nil {
		return "", time.Time{}, err
	}
	t := accessToken{Subject: a.GetSubject(), ClientID: a.ClientID, Scopes: a.Scopes, AMR: a.GetAMR(),
		AuthTime: a.GetAuthTime(), Issued: now, Expires: now.Add(s.cfg.AccessTokenTTL)}
	b, _ := json.Marshal(t)
	id := newID()
	if err := s.cfg.Store.CreateOIDC(keyAccessToken+id, b, t.Expires, now); err != nil {
		return "", time.Time{}, err
	}
	return id, t.Expires, nil
}

func (s *storage) CreateAccessAndRefreshTokens(context.Context, op.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, oidc.ErrUnsupportedGrantType().WithDescription("refresh tokens are not issued")
}

func (s *storage) TokenRequestByRefreshToken(context.Context, string) (op.RefreshTokenRequest, error) {
	return nil, op.ErrInvalidRefreshToken
}

func (s *storage) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}

// TerminateSession records a logout of subject at client: the client's access tokens
// for subject issued before it are no longer active.
func (s *storage) TerminateSession(_ context.Context, subject, clientID string) error {
	now := s.now()
	b, _ := now.MarshalText()
	return s.cfg.Store.PutOIDC(logoutKey(subject, clientID), b, now.Add(s.cfg.AccessTokenTTL+time.Minute))
}

// logoutKey is the key of the last logout of subject at client: a digest of both, so
// that no subject can run into the client ID, and no byte of either reaches a key (a
// NUL, which PostgreSQL's text refuses).
func logoutKey(subject, clientID string) string {
	sum := sha256.Sum256([]byte(subject + "\x00" + clientID))
	return keyLogout + hex.EncodeToString(sum[:])
}

func (s *storage) RevokeToken(_ context.Context, tokenID, _, clientID string) *oidc.Error {
	t, err := s.token(tokenID)
	if err != nil || t.ClientID != clientID {
		return nil // RFC 7009: an unknown token is not an error
	}
	if _, err := s.cfg.Store.TakeOIDC(keyAccessToken+tokenID, s.now()); err != nil && !errors.Is(err, ErrNotFound) {
		return oidc.ErrServerError()
	}
	return nil
}

// token returns an active access token: present, and not issued before a logout of
// its subject at its client.
func (s *storage) token(id string) (*accessToken, error) {
	now := s.now()
	b, err := s.cfg.Store.GetOIDC(keyAccessToken+id, now)
	if err != nil {
		return nil, err
	}
	var t accessToken
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, err
	}
	switch b, err := s.cfg.Store.GetOIDC(logoutKey(t.Subject, t.ClientID), now); {
	case err == nil:
		var out time.Time
		if out.UnmarshalText(b) == nil && !t.Issued.After(out) {
			return nil, ErrNotFound
		}
	case !errors.Is(err, ErrNotFound):
		return nil, err
	}
	return &t, nil
}

// signingKey is the token key as the library signs with it.
type signingKey struct {
	key ed25519.PrivateKey
	id  string
}

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.EdDSA }
func (k signingKey) Key() any                                    { return k.key }
func (k signingKey) ID() string                                  { return k.id }

// publicKey is its public half, for the JWKS.
type publicKey struct{ signingKey }

func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.EdDSA }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return k.key.Public() }

func (s *storage) signingKey() signingKey {
	return signingKey{key: s.cfg.SigningKey, id: middleware.KeyID(s.cfg.SigningKey.Public().(ed25519.PublicKey))}
}

func (s *storage) SigningKey(context.Context) (op.SigningKey, error) { return s.signingKey(), nil }
func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.EdDSA}, nil
}
func (s *storage) KeySet(context.Context) ([]op.Key, error) {
	return []op.Key{publicKey{s.signingKey()}}, nil
}

func (s *storage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	c, ok := s.clients[id]
	if !ok {
		return nil, oidc.ErrInvalidClient().WithDescription("unknown client")
	}
	return opClient{c}, nil
}

func (s *storage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	c, ok := s.clients[id]
	if !ok || !c.secretOK(secret) {
		return oidc.ErrInvalidClient().WithDescription("client authentication failed")
	}
	return nil
}

// SetUserinfoFromScopes fills the ID token's user claims (and userinfo's): sub, and
// with the profile scope preferred_username, both the app-level identity.
func (s *storage) SetUserinfoFromScopes(_ context.Context, u *oidc.UserInfo, subject, _ string, scopes []string) error {
	u.Subject = subject
	if slices.Contains(scopes, oidc.ScopeProfile) {
		u.PreferredUsername = subject
	}
	return nil
}

func (s *storage) SetUserinfoFromToken(ctx context.Context, u *oidc.UserInfo, tokenID, _, _ string) error {
	t, err := s.token(tokenID)
	if err != nil {
		return oidc.ErrInvalidRequest().WithDescription("the access token is not active")
	}
	return s.SetUserinfoFromScopes(ctx, u, t.Subject, t.ClientID, t.Scopes)
}

func (s *storage) SetIntrospectionFromToken(_ context.Context, r *oidc.IntrospectionResponse, tokenID, _, clientID string) error {
	t, err := s.token(tokenID)
	if err != nil || t.ClientID != clientID {
		// An error is what makes the library answer {"active": false}: on nil it
		// answers active, whatever r holds.
		return ErrNotFound
	}
	r.Active, r.Subject, r.ClientID, r.Scope = true, t.Subject, t.ClientID, t.Scopes
	r.Expiration, r.IssuedAt, r.AuthTime = oidc.FromTime(t.Expires), oidc.FromTime(t.Issued), oidc.FromTime(t.AuthTime)
	r.AuthenticationMethodsReferences = t.AMR
	return nil
}

func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (s *storage) GetKeyByIDAndClientID(_ context.Context, keyID, clientID string) (*jose.JSONWebKey, error) {
	c, ok := s.clients[clientID]
	if !ok || c.AuthMethod != AuthPrivateKeyJWT {
		return nil, oidc.ErrInvalidClient()
	}
	keys := c.keys.Key(keyID)
	if len(keys) == 0 {
		return nil, oidc.ErrInvalidClient().WithDescription("unknown key")
	}
	return &keys[0], nil
}

func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, oidc.ErrUnauthorizedClient().WithDescription("the JWT profile grant is not offered")
}

func (s *storage) Health(context.Context) error { return nil }
