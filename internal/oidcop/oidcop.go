// Package oidcop makes the auth server an OpenID Provider (OpenID Connect Core 1.0) for
// its domain, on github.com/zitadel/oidc/v3/pkg/op: discovery, the authorization code
// flow with PKCE, the token endpoint, JWKS, userinfo, introspection, token revocation
// and logout. The library does the protocol; this package supplies its storage and the
// login step.
//
// The login is the domain's M-Pin Full login, run by the browser client on the login
// page (internal/webui). The OP sends the user agent to that page with the auth
// request's ID; the page logs in at the auth server's own login API, gets an access
// token, and posts it with the auth request's ID to CompleteLogin, which marks the
// request authenticated; the library then issues the code.
//
// Security invariants:
//   - PKCE (S256) is required of every client, confidential or not; an auth request
//     without it is refused before the user sees a page.
//   - Redirect URIs are compared exactly with the registered ones.
//   - A code is taken from the store once: a second use is refused, on any replica.
//   - An auth request belongs to the browser that started it, and lives there: the
//     authorization endpoint seals it into a cookie (AES-GCM), which CompleteLogin and
//     the code's issue require; one code is issued per request (browser.go). An
//     authorization request writes nothing to the store: only a completed login does.
//   - A client assertion (private_key_jwt) is accepted once: it must name a jti, which
//     is recorded until its exp, and live at most 5 minutes (assertion.go).
//   - Request bodies are bounded (maxRequestBody), and so is an auth request
//     (maxSealedRequest: state, nonce and scope).
//   - An access token completes one auth request, once, and only while fresh
//     (Config.MaxLoginAge): the one its login was made for (Login.AuthRequest), so a
//     token issued to an app, seen by its backend, a proxy or a log, completes none;
//     CompleteLogin answers every refusal with one message.
//   - ID tokens carry amr from the login: "mpin", "pin" for a person, "tls-cb" only
//     when the login was bound to the client's TLS channel (never from a browser page).
//   - Every other piece of state (completed logins, codes, access tokens, logouts) is
//     in the Store that the server's replicas share; the provider keeps nothing in
//     memory.
//
// Caveats: there is no single sign-on session: every authorization asks for the PIN.
// A browser keeps at most 6 sign-ins in progress (browser.go): a seventh, or a site
// sending the browser through the authorization endpoint, ends the oldest. Replicas'
// clocks must agree within a minute: a request made by a replica whose clock is ahead
// by more does not open on the others until their clocks catch up.
// Refresh tokens are not issued. ID tokens are signed with Ed25519 (EdDSA), the auth
// server's token key: a relying party's library must support EdDSA.
package oidcop

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/rs/cors"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/crypto/hkdf"
)

// A Store keeps the provider's state, shared by every replica of the auth server.
// Keys are short ASCII strings; an entry past its expiry is absent.
type Store interface {
	// CreateOIDC stores value under key until expires, unless the key is present:
	// then it returns ErrExists and changes nothing. Of concurrent creates of one key,
	// on any replicas, one succeeds.
	CreateOIDC(key string, value []byte, expires, now time.Time) error
	// PutOIDC stores value under key until expires, replacing any entry.
	PutOIDC(key string, value []byte, expires time.Time) error
	// GetOIDC returns the value under key, or ErrNotFound.
	GetOIDC(key string, now time.Time) ([]byte, error)
	// TakeOIDC removes the entry under key and returns its value, or ErrNotFound: of
	// concurrent takes of one key, on any replicas, at most one gets it.
	TakeOIDC(key string, now time.Time) ([]byte, error)
}

// Errors of a Store.
var (
	ErrNotFound = errors.New("oidcop: not found")
	ErrExists   = errors.New("oidcop: already exists")
)

// A Login is an M-Pin login that an access token proves.
type Login struct {
	Subject  string    // the app-level identity
	TokenID  string    // the access token's jti
	AMR      []string  // authentication methods (RFC 8176)
	AuthTime time.Time // when the login happened (the token's iat)
	// AuthRequest is the auth request the login was made for (the token names it);
	// the login completes that request and no other.
	AuthRequest string
}

// Config configures a Provider.
type Config struct {
	// Issuer is the provider's issuer URL, e.g. "https://auth.example.com/oidc"; its
	// path is where Handler's routes are mounted.
	Issuer string
	// LoginURL is the login page, e.g. "https://auth.example.com/login"; the auth
	// request's ID is added as the query parameter authRequestID.
	LoginURL string
	Clients  []Client
	// SigningKey signs ID tokens (the auth server's token key; its public key is at
	// the provider's JWKS endpoint).
	SigningKey ed25519.PrivateKey
	Store      Store
	// Authenticate checks an access token from the auth server's login API: its
	// signature, that it is active (not revoked), and returns the login it proves.
	Authenticate func(accessToken string, now time.Time) (*Login, error)
	// MaxLoginAge is how old a login may be when it completes an auth request
	// (default 2 min).
	MaxLoginAge time.Duration
	// AuthRequestTTL bounds the time from the authorization request to the code
	// (default 10 min); codes live CodeTTL (default 1 min).
	AuthRequestTTL, CodeTTL time.Duration
	// AccessTokenTTL and IDTokenTTL are the lifetimes of the provider's tokens
	// (defaults 15 min and 1 h).
	AccessTokenTTL, IDTokenTTL time.Duration
	// AllowInsecure allows an http:// issuer (tests, the devnet on loopback).
	AllowInsecure bool
	Logger        *slog.Logger
	Now           func() time.Time
}

// A Provider is the OpenID Provider of one domain.
type Provider struct {
	cfg         Config
	op          *op.Provider
	prefix      string // the issuer's path, where the routes are mounted
	storage     *storage
	callbackURL func(requestID string) string
	// sealer keeps each pending auth request in a cookie of the browser that
	// started it (browser.go).
	sealer    *requestSealer
	discovery http.Handler // discovery.go
}

// CheckSettings reports whether New would accept issuer and clients: the issuer an
// absolute https URL (http with allowInsecure) without query or fragment, every
// client a valid registration (CheckClient), no client twice. It is New's check of
// them, for a configuration check before anything starts.
func CheckSettings(issuer string, clients []Client, allowInsecure bool) error {
	if _, err := checkIssuer(issuer, allowInsecure); err != nil {
		return err
	}
	_, err := checkClients(slices.Clone(clients), allowInsecure)
	return err
}

func checkIssuer(issuer string, allowInsecure bool) (*url.URL, error) {
	iss, err := url.Parse(issuer)
	switch {
	case err != nil || iss.Host == "" || iss.RawQuery != "" || iss.Fragment != "":
		return nil, fmt.Errorf("oidcop: issuer %q is not an absolute URL without query or fragment", issuer)
	case iss.Scheme != "https" && !(iss.Scheme == "http" && allowInsecure):
		return nil, fmt.Errorf("oidcop: issuer %q is not https", issuer)
	}
	return iss, nil
}

// checkClients checks and prepares the registrations in place, and maps them by ID.
func checkClients(cs []Client, allowInsecure bool) (map[string]*Client, error) {
	byID := make(map[string]*Client, len(cs))
	for i := range cs {
		c := &cs[i]
		if err := c.check(allowInsecure); err != nil {
			return nil, err
		}
		if byID[c.ID] != nil {
			return nil, fmt.Errorf("oidcop: client %q is registered twice", c.ID)
		}
		byID[c.ID] = c
	}
	return byID, nil
}

// New checks cfg and builds the provider.
func New(cfg Config) (*Provider, error) {
	iss, err := checkIssuer(cfg.Issuer, cfg.AllowInsecure)
	switch {
	case err != nil:
		return nil, err
	case len(cfg.SigningKey) != ed25519.PrivateKeySize:
		return nil, errors.New("oidcop: no signing key")
	case cfg.Store == nil || cfg.Authenticate == nil:
		return nil, errors.New("oidcop: a store and an authenticator are required")
	case cfg.LoginURL == "":
		return nil, errors.New("oidcop: no login URL")
	}
	setDefault(&cfg.MaxLoginAge, 2*time.Minute)
	setDefault(&cfg.AuthRequestTTL, 10*time.Minute)
	setDefault(&cfg.CodeTTL, time.Minute)
	setDefault(&cfg.AccessTokenTTL, 15*time.Minute)
	setDefault(&cfg.IDTokenTTL, time.Hour)
	cfg.Clients = slices.Clone(cfg.Clients)
	clients, err := checkClients(cfg.Clients, cfg.AllowInsecure)
	if err != nil {
		return nil, err
	}
	for _, c := range clients {
		c.loginURL, c.idTTL = cfg.LoginURL, cfg.IDTokenTTL
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	p := &Provider{cfg: cfg, prefix: strings.TrimSuffix(iss.Path, "/")}
	p.sealer = newRequestSealer(derivedKey(cfg.SigningKey, "polyroot oidcop auth request cookies"), iss.Scheme == "https", cfg.AuthRequestTTL, cfg.Now)
	p.storage = &storage{cfg: &p.cfg, clients: clients, sealer: p.sealer}
	opts := []op.Option{op.WithCORSOptions(&apiCORS),
		// The ID tokens it checks as id_token_hint (logout) are its own: EdDSA.
		op.WithIDTokenHintVerifierOpts(op.WithSupportedIDTokenHintSigningAlgorithms(string(jose.EdDSA))),
		op.WithAccessTokenVerifierOpts(op.WithSupportedAccessTokenSigningAlgorithms(string(jose.EdDSA))),
	}
	if cfg.AllowInsecure {
		opts = append(opts, op.WithAllowInsecure())
	}
	opCfg := &op.Config{
		CryptoKey:               derivedKey(cfg.SigningKey, "polyroot oidcop access tokens"),
		CodeMethodS256:          true,
		AuthMethodPost:          true,
		AuthMethodPrivateKeyJWT: true,
		SupportedScopes:         []string{"openid", "profile"},
		SupportedClaims:         []string{"sub", "aud", "exp", "iat", "iss", "auth_time", "nonce", "amr", "azp", "preferred_username"},
	}
	if p.op, err = op.NewProvider(opCfg, p.storage, op.StaticIssuer(cfg.Issuer), opts...); err != nil {
		return nil, fmt.Errorf("oidcop: %w", err)
	}
	cb := op.AuthCallbackURL(p.op)
	p.callbackURL = func(id string) string { return cb(op.ContextWithIssuer(context.Background(), cfg.Issuer), id) }
	p.discovery = cors.New(apiCORS).Handler(http.HandlerFunc(p.discover))
	return p, nil
}

// apiCORS lets any origin call the token, userinfo and discovery endpoints (a
// single-page app is a public client), but never with credentials: none of them takes
// a cookie (only the browser flow's own pages do, browser.go), and the library's
// default would allow credentialed requests from every origin.
var apiCORS = cors.Options{
	AllowOriginFunc:  func(string) bool { return true },
	AllowedMethods:   []string{http.MethodGet, http.MethodHead, http.MethodPost},
	AllowedHeaders:   []string{"Accept", "Authorization", "Content-Type"},
	AllowCredentials: false,
}

func setDefault(d *time.Duration, v time.Duration) {
	if *d <= 0 {
		*d = v
	}
}

// derivedKey derives a 32-byte key for label from the signing key, so that every
// replica with the same token key has it and nothing else needs configuring.
func derivedKey(k ed25519.PrivateKey, label string) [32]byte {
	var out [32]byte
	if _, err := io.ReadFull(hkdf.New(sha256.New, k.Seed(), nil, []byte(label)), out[:]); err != nil {
		panic(err) // hkdf gives 255·32 bytes
	}
	return out
}

// Prefix is the path under which Handler serves (the issuer's path, e.g. "/oidc").
func (p *Provider) Prefix() string { return p.prefix }

// maxRequestBody bounds the body of every request to the provider's endpoints: the
// library parses forms of up to 10 MB, and a token request with a client assertion
// is a few kilobytes.
const maxRequestBody = 16 << 10

// Handler serves the provider's endpoints under Prefix.
func (p *Provider) Handler() http.Handler {
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxRequestBody)
		r = withBrowserRequest(r)
		switch r.URL.Path {
		case "/authorize":
			p.authorize(w, r)
		case "/authorize/callback":
			p.callback(w, r)
		case discoveryPath:
			p.discovery.ServeHTTP(w, r)
		default:
			if err := p.checkAssertion(r); err != nil {
				refuseAssertion(w, err)
				return
			}
			p.op.ServeHTTP(w, r)
		}
	})
	if p.prefix == "" {
		return h
	}
	return http.StripPrefix(p.prefix, h)
}
