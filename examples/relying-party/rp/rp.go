// Package rp is the example relying party: a small web app that logs its users in
// through a polyroot auth server's OpenID Provider with standard OpenID Connect
// libraries (github.com/coreos/go-oidc/v3 and golang.org/x/oauth2), and shows who
// logged in and how. Nothing in it is specific to polyroot: any OIDC client library
// in any language does the same.
//
// The flow: GET /login sends the user agent to the provider's authorization endpoint
// with a PKCE challenge (S256), a state and a nonce, kept server-side under a random
// cookie; the provider has the user log in on its PIN pad and sends the user agent to
// GET /callback with a code, which the app exchanges (with the PKCE verifier and its
// client secret) for an ID token that go-oidc verifies: signature (EdDSA, the
// provider's JWKS), issuer, audience, expiry and nonce.
package rp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Config configures the app.
type Config struct {
	Issuer       string // the provider's issuer URL
	ClientID     string
	ClientSecret string
	// URL is the app's own base URL; its redirect URI is URL + "/callback".
	URL string
	// HTTPClient reaches the provider (e.g. trusting a devnet CA); default
	// http.DefaultClient.
	HTTPClient *http.Client
}

// A User is who logged in, from a verified ID token.
type User struct {
	Subject  string
	AMR      []string
	AuthTime time.Time
}

// App is the relying party's HTTP handler.
type App struct {
	cfg      Config
	ctx      context.Context
	oauth    oauth2.Config
	verifier *oidc.IDTokenVerifier
	mux      *http.ServeMux

	mu       sync.Mutex
	pending  map[string]pendingLogin // by the login cookie
	sessions map[string]User         // by the session cookie
}

// pendingLogin is what /callback checks: the state, nonce and PKCE verifier sent.
type pendingLogin struct {
	state, nonce, verifier string
	expires                time.Time
}

const (
	loginCookie   = "rp_login"
	sessionCookie = "rp_session"
)

// New discovers the provider and returns the app.
func New(ctx context.Context, cfg Config) (*App, error) {
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	ctx = oidc.ClientContext(ctx, cfg.HTTPClient)
	p, err := oidc.NewProvider(ctx, cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("rp: discovering the provider: %w", err)
	}
	a := &App{cfg: cfg, ctx: ctx,
		oauth: oauth2.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, Endpoint: p.Endpoint(),
			RedirectURL: cfg.URL + "/callback", Scopes: []string{oidc.ScopeOpenID, "profile"}},
		verifier: p.Verifier(&oidc.Config{ClientID: cfg.ClientID}),
		pending:  map[string]pendingLogin{}, sessions: map[string]User{}, mux: http.NewServeMux()}
	a.mux.HandleFunc("GET /{$}", a.home)
	a.mux.HandleFunc("GET /login", a.login)
	a.mux.HandleFunc("GET /callback", a.callback)
	a.mux.HandleFunc("POST /logout", a.logout)
	return a, nil
}

// ServeHTTP serves the app.
func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'")
	a.mux.ServeHTTP(w, r)
}

func random() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Example relying party</title>
<style>body{font-family:sans-serif;max-width:40em;margin:3em auto}</style></head><body>
<h1>Example relying party</h1>
{{if .User}}<p id="who">Logged in as <strong id="subject">{{.User.Subject}}</strong>
(methods: <span id="amr">{{range $i, $m := .User.AMR}}{{if $i}} {{end}}{{$m}}{{end}}</span>, at {{.User.AuthTime.Format "15:04:05 MST"}}).</p>
<form method="post" action="/logout"><button>Log out</button></form>
{{else}}<p>Nobody is logged in.</p><p><a id="login" href="/login">Log in with polyroot</a></p>{{end}}
{{if .Error}}<p id="error" role="alert">{{.Error}}</p>{{end}}
</body></html>`))

// User returns the logged-in user of r's session, if any.
func (a *App) User(r *http.Request) (User, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return User{}, false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	u, ok := a.sessions[c.Value]
	return u, ok
}

func (a *App) home(w http.ResponseWriter, r *http.Request) {
	var data struct {
		User  *User
		Error string
	}
	if u, ok := a.User(r); ok {
		data.User = &u
	}
	data.Error = r.URL.Query().Get("error")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	page.Execute(w, data)
}

func (a *App) login(w http.ResponseWriter, r *http.Request) {
	p := pendingLogin{state: random(), nonce: random(), verifier: oauth2.GenerateVerifier(), expires: time.Now().Add(10 * time.Minute)}
	id := random()
	a.mu.Lock()
	for k, v := range a.pending { // forget abandoned logins
		if time.Now().After(v.expires) {
			delete(a.pending, k)
		}
	}
	a.pending[id] = p
	a.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode, MaxAge: 600})
	http.Redirect(w, r, a.oauth.AuthCodeURL(p.state, oauth2.S256ChallengeOption(p.verifier), oidc.Nonce(p.nonce)), http.StatusFound)
}

func (a *App) callback(w http.ResponseWriter, r *http.Request) {
	u, err := a.finish(r)
	if err != nil {
		http.Redirect(w, r, "/?error="+url.QueryEscape(err.Error()), http.StatusFound)
		return
	}
	sid := random()
	a.mu.Lock()
	a.sessions[sid] = *u
	a.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Path: "/", MaxAge: -1})
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: sid, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, "/", http.StatusFound)
}

// finish checks the callback against the pending login, exchanges the code and
// verifies the ID token.
func (a *App) finish(r *http.Request) (*User, error) {
	c, err := r.Cookie(loginCookie)
	if err != nil {
		return nil, errors.New("no login in progress in this browser")
	}
	a.mu.Lock()
	p, ok := a.pending[c.Value]
	delete(a.pending, c.Value)
	a.mu.Unlock()
	q := r.URL.Query()
	switch {
	case !ok || time.Now().After(p.expires):
		return nil, errors.New("the login expired; try again")
	case q.Get("error") != "":
		return nil, fmt.Errorf("the provider refused: %s %s", q.Get("error"), q.Get("error_description"))
	case q.Get("state") != p.state:
		return nil, errors.New("the state does not match this browser's login")
	}
	tok, err := a.oauth.Exchange(a.ctx, q.Get("code"), oauth2.VerifierOption(p.verifier))
	if err != nil {
		return nil, fmt.Errorf("exchanging the code: %w", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := a.verifier.Verify(a.ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("the ID token does not verify: %w", err)
	}
	if idt.Nonce != p.nonce {
		return nil, errors.New("the ID token's nonce is not this login's")
	}
	var claims struct {
		AMR      []string `json:"amr"`
		AuthTime int64    `json:"auth_time"`
	}
	if err := idt.Claims(&claims); err != nil {
		return nil, err
	}
	return &User{Subject: idt.Subject, AMR: claims.AMR, AuthTime: time.Unix(claims.AuthTime, 0)}, nil
}

func (a *App) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		a.mu.Lock()
		delete(a.sessions, c.Value)
		a.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Path: "/", MaxAge: -1})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}
