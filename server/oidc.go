package server

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/internal/httpx"
	"github.com/polyroot/polyroot/internal/oidcop"
	"github.com/polyroot/polyroot/internal/webui"
)

// OIDCConfig makes the auth server an OpenID Provider (internal/oidcop) whose logins
// run on the browser login page at /login.
type OIDCConfig struct {
	// Issuer is the provider's issuer URL: the server's public URL with a path, e.g.
	// "https://auth.example.com/oidc"; the provider's endpoints are under that path
	// and its discovery document at Issuer + "/.well-known/openid-configuration".
	// Empty: no provider.
	Issuer string
	// Clients are the relying parties.
	Clients []oidcop.Client
	// AllowInsecure allows an http:// issuer and redirect URIs (loopback tests and
	// the devnet only).
	AllowInsecure bool
}

// loginPath is where the login page (internal/webui) is served.
const loginPath = "/login"

// setUpWeb builds the login pages and, when configured, the OpenID Provider.
func (s *Server) setUpWeb() error {
	if err := s.setUpOIDC(); err != nil {
		return err
	}
	return s.buildLoginPages(s.cfg.Bundle) // after the provider: the pages name its requests' sites
}

// CheckOIDC reports whether New would accept o, with Config.RefuseUnboundLogins set
// to refuseUnbound: an issuer that is the server's URL with a path of its own, valid
// client registrations (clients only with an issuer), and unbound logins allowed (the
// provider's users log in from a browser). It reads nothing and starts nothing, for a
// configuration check.
func CheckOIDC(o OIDCConfig, refuseUnbound bool) error {
	if refuseUnbound && o.Issuer != "" {
		return errors.New("server: an OpenID Provider needs unbound logins (its users log in from a browser, which cannot bind to TLS): " +
			"refusing unbound logins (login.refuse_unbound) and being an OpenID Provider exclude each other")
	}
	if o.Issuer == "" {
		if len(o.Clients) > 0 {
			return errors.New("server: OpenID Connect clients are configured but no issuer")
		}
		return nil
	}
	_, path, ok := splitIssuer(o.Issuer)
	if !ok {
		return fmt.Errorf("server: the OpenID Provider's issuer %q must be the server's URL with a path, e.g. https://auth.example.com/oidc", o.Issuer)
	}
	if strings.HasPrefix(path, "/v1") || path == loginPath || strings.HasPrefix(path, loginPath+"/") || strings.HasPrefix(path, "/.well-known") {
		return fmt.Errorf("server: the issuer's path %q is taken by the server's own routes", path)
	}
	return oidcop.CheckSettings(o.Issuer, o.Clients, o.AllowInsecure)
}

// setUpOIDC makes the OpenID Provider, when one is configured.
func (s *Server) setUpOIDC() error {
	o := s.cfg.OIDC
	if err := CheckOIDC(o, s.cfg.RefuseUnboundLogins); err != nil || o.Issuer == "" {
		return err
	}
	base, _, _ := splitIssuer(o.Issuer)
	var err error
	s.oidc, err = oidcop.New(oidcop.Config{Issuer: o.Issuer, LoginURL: base + loginPath, Clients: o.Clients,
		SigningKey: s.cfg.TokenKey, Store: s.store, Authenticate: s.authenticateLogin,
		AccessTokenTTL: s.cfg.TokenTTL, AllowInsecure: o.AllowInsecure, Logger: s.cfg.Logger, Now: s.cfg.Now})
	return err
}

// buildLoginPages makes the login pages for bundle b: their Content-Security-Policy
// names its DTAs' origins, so a successor bundle (ReloadBundle) builds them again.
func (s *Server) buildLoginPages(b *bundle.Bundle) error {
	urls := make([]string, len(b.DTAs))
	for i, d := range b.DTAs {
		urls[i] = d.URL
	}
	origins, err := webui.BundleOrigins(urls)
	if err != nil {
		return fmt.Errorf("server: login page: %w", err)
	}
	cfg := webui.Config{WASMDir: s.cfg.WebDir, DTAOrigins: origins, Domain: b.Domain,
		MinPINLength: b.PINPolicy(), Logger: s.cfg.Logger}
	if s.oidc != nil {
		cfg.Requester = s.oidc.Requester
	}
	h, err := webui.New(cfg)
	if err != nil {
		return fmt.Errorf("server: login page: %w", err)
	}
	s.web.Store(&h)
	return nil
}

// serveLoginPage serves the login pages of the bundle in use.
func (s *Server) serveLoginPage(w http.ResponseWriter, r *http.Request) {
	(*s.web.Load()).ServeHTTP(w, r)
}

// splitIssuer splits an issuer URL into its origin and its path (not empty, not "/").
func splitIssuer(iss string) (base, path string, ok bool) {
	u, err := url.Parse(iss)
	if err != nil || u.Host == "" {
		return "", "", false
	}
	path = strings.TrimSuffix(u.Path, "/")
	return u.Scheme + "://" + u.Host, path, path != ""
}

// authenticateLogin is the provider's check of the login page's access token: one of
// this server's, active (activeToken).
func (s *Server) authenticateLogin(tok string, now time.Time) (*oidcop.Login, error) {
	c, err := s.activeToken(tok, now)
	if err != nil {
		return nil, err
	}
	if c == nil || c.IssuedAt == nil {
		return nil, errors.New("server: not an active access token")
	}
	return &oidcop.Login{Subject: c.Subject, TokenID: c.ID, AMR: c.AMR, AuthTime: c.IssuedAt.Time, AuthRequest: c.AuthRequest}, nil
}

// webRoutes adds the login pages and the OpenID Provider to the route table.
func (s *Server) webRoutes(r *mux.Router, limit *httpx.RateLimiter) {
	r.Handle(loginPath+"/complete", limit.Wrap(http.HandlerFunc(s.completeLogin))).Methods(http.MethodPost)
	pages := limit.Wrap(http.HandlerFunc(s.serveLoginPage))
	r.PathPrefix(loginPath+"/").Handler(pages).Methods(http.MethodGet, http.MethodHead)
	r.Handle(loginPath, pages).Methods(http.MethodGet, http.MethodHead)
	if s.oidc == nil {
		return
	}
	r.PathPrefix(s.oidc.Prefix() + "/").Handler(pagePolicy(oidcPolicy, limit.Wrap(s.oidc.Handler())))
}

// completeLogin serves POST /login/complete (oidcop.Provider.CompleteLogin); 404
// without a provider.
func (s *Server) completeLogin(w http.ResponseWriter, r *http.Request) {
	if s.oidc == nil {
		httpx.WriteError(w, r, s.cfg.Logger, httpx.Errorf(http.StatusNotFound, "not_found", "this server is not an OpenID Provider"))
		return
	}
	s.oidc.CompleteLogin(w, r)
}
