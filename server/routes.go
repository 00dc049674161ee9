package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/polyroot/polyroot/internal/httpx"
	"github.com/polyroot/polyroot/server/middleware"
)

// Handler returns the server's HTTP API (internal/wire/server.go). Every route is in this one table,
// registered with full paths on the root router. openapi.yaml documents every route
// with its bodies and errors, and is served at GET /v1/openapi.yaml; a test keeps it
// and this table in step. With Config.AdminListener the admin routes are not in it
// (they answer 404 not_found like any unknown path): AdminHandler serves them.
func (s *Server) Handler() http.Handler { return s.wrap(s.routeTable(!s.cfg.AdminListener, true)) }

// AdminHandler returns the admin routes (/v1/admin/…) and /livez alone, for a listener
// of their own (Config.AdminListener, httpx.ServeOptions.AdminListen).
func (s *Server) AdminHandler() http.Handler { return s.wrap(s.routeTable(true, false)) }

func (s *Server) wrap(routes *mux.Router) http.Handler {
	return httpx.WithRequestID(httpx.LogRequests(s.cfg.Logger, pagePolicy(apiPolicy, httpx.CountRequests(routes, s.metrics.requests))))
}

// Content-Security-Policies of the server's answers that are not the login pages (which
// set their own). The API's answers are never pages: a browser tricked into rendering
// one (as HTML, or in a frame) may run nothing, load nothing and frame nothing, so that
// no answer can become a script of this origin, where the browser client's key is
// usable. The OpenID Provider's own pages (the form_post answer) need their form and
// script: they keep the framing rule only.
const (
	apiPolicy  = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
	oidcPolicy = "frame-ancestors 'none'"
)

// pagePolicy sets policy and nosniff on every answer of h, before h, which may set its own.
func pagePolicy(policy string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", policy)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		h.ServeHTTP(w, r)
	})
}

// MetricsHandler serves the Prometheus metrics. They are not in the public route
// table: per-request timings and counts are for operators, so the metrics go on the
// operations listener (httpx.ServeOptions.MetricsListen, loopback by default).
func (s *Server) MetricsHandler() http.Handler { return s.metrics.handler() }

// RefusedConnections counts the connections the public listener closed because their
// client held its share already (httpx.ServeOptions.RefusedConnections).
func (s *Server) RefusedConnections() prometheus.Counter { return s.metrics.refused }

// routes is the whole route table, apart from the wrapping, so that tests can walk it.
func (s *Server) routes() *mux.Router { return s.routeTable(true, true) }

// routeTable is the route table with the admin routes, the public ones, or both;
// /livez is in every one.
func (s *Server) routeTable(admin, public bool) *mux.Router {
	limit := httpx.NewRateLimiter(s.cfg.RatePerSecond, s.cfg.RateBurst, s.cfg.Logger).CountThrottled(s.metrics.limited)
	r := mux.NewRouter()
	api := func(path string, h http.HandlerFunc, methods ...string) {
		r.Handle(path, limit.Wrap(h)).Methods(methods...)
	}
	if admin {
		api("/v1/admin/enrolments", s.admin(s.handleCreateEnrolment), http.MethodPost)
		api("/v1/admin/enrolments", s.admin(s.handleListEnrolments), http.MethodGet)
		api("/v1/admin/revoke", s.admin(s.handleRevoke), http.MethodPost)
		api("/v1/admin/unblock", s.admin(s.handleUnblock), http.MethodPost)
		api("/v1/admin/tokens/revoke", s.admin(s.handleRevokeToken), http.MethodPost)
	}
	if public {
		api("/v1/bundle", s.handleBundle, http.MethodGet, http.MethodHead)
		api("/v1/enrol", s.handleRedeem, http.MethodPost)
		api("/v1/login/start", s.handleStart, http.MethodPost)
		api("/v1/login/finish", s.handleFinish, http.MethodPost)
		api("/v1/permits", s.handlePermits, http.MethodPost)
		api("/v1/token/introspect", s.handleIntrospect, http.MethodPost)
		api("/.well-known/jwks.json", s.handleJWKS, http.MethodGet, http.MethodHead)
		api("/v1/openapi.yaml", serveOpenAPI, http.MethodGet)
		s.webRoutes(r, limit)
		r.Handle("/readyz", s.readyz).Methods(http.MethodGet, http.MethodHead)
	}
	r.HandleFunc("/livez", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) }).Methods(http.MethodGet, http.MethodHead)
	r.NotFoundHandler = limit.Wrap(httpx.NotFound(s.cfg.Logger))
	r.MethodNotAllowedHandler = limit.Wrap(httpx.MethodNotAllowed(s.cfg.Logger))
	return r
}

// admin wraps a registrar handler: it needs "Authorization: Bearer <admin token>",
// compared with sameToken.
func (s *Server) admin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, ok := middleware.BearerToken(r)
		if !ok || !sameToken(tok, s.cfg.AdminToken) {
			httpx.WriteError(w, r, s.cfg.Logger, httpx.Errorf(http.StatusUnauthorized, "unauthorized", "the admin API needs the admin token"))
			return
		}
		h(w, r)
	}
}

// sameToken reports whether the bearer token got is want. It compares their SHA-256
// digests in constant time, so that neither the content nor the length of want shows
// in the timing: subtle.ConstantTimeCompare on the tokens themselves returns at once
// when their lengths differ.
func sameToken(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

func (s *Server) handleBundle(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(s.trustBundle().file)
}

func (s *Server) handleJWKS(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Cache-Control", "max-age=300")
	httpx.WriteJSON(w, http.StatusOK, s.jwks)
}
