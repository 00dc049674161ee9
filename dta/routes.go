package dta

import (
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/polyroot/polyroot/internal/httpx"
	"github.com/polyroot/polyroot/internal/ticket"
	"github.com/polyroot/polyroot/internal/wire"
)

// Handler returns the DTA's HTTP API. Every route is in this one table:
//
//	POST /v1/shares/client   {ticket}  a client key share with its DLEQ proof
//	POST /v1/shares/permit   {ticket}  time-permit shares for the ticket's slots
//	OPTIONS /v1/shares/client, /v1/shares/permit   CORS preflight (cors.go): a
//	                                   browser client fetches its shares cross-origin
//	POST /v1/shares/server   {ticket}  the server key share, sealed to the ticket's key
//	POST /v1/revocations     {ticket}  record a revocation: no more shares or permits
//	GET  /v1/record                    this DTA's public record
//	GET  /v1/log/checkpoint, /v1/log/tile/…   the transparency log (C2SP tlog-tiles),
//	                                          with its own rate limit (Config.LogRatePerSecond)
//	GET  /v1/openapi.yaml              the OpenAPI document of this API (openapi.yaml)
//	GET  /livez, /readyz
//
// openapi.yaml documents every route with its bodies and errors; a test keeps it and
// this table in step. The metrics are not here: see MetricsHandler.
func (s *Service) Handler() http.Handler {
	return httpx.WithRequestID(httpx.LogRequests(s.cfg.Logger, httpx.CountRequests(s.routes(), s.metrics.requests)))
}

// MetricsHandler serves the Prometheus metrics. They are not in the public route
// table: per-request counts and timings are for operators, so the metrics go on the
// operations listener (httpx.ServeOptions.MetricsListen, loopback by default).
func (s *Service) MetricsHandler() http.Handler { return s.metrics.handler() }

// RefusedConnections counts the connections the public listener closed because their
// client held its share already (httpx.ServeOptions.RefusedConnections).
func (s *Service) RefusedConnections() prometheus.Counter { return s.metrics.refused }

// routes is the route table, apart from the wrapping, so that tests can walk it.
func (s *Service) routes() *mux.Router {
	limit := httpx.NewRateLimiter(s.cfg.RatePerSecond, s.cfg.RateBurst, s.cfg.Logger).CountThrottled(s.metrics.limited)
	// An auditor reads the whole log: its routes (static files, cheap) have their own limit.
	logLimit := httpx.NewRateLimiter(s.cfg.LogRatePerSecond, s.cfg.LogRateBurst, s.cfg.Logger).CountThrottled(s.metrics.limited)
	r := mux.NewRouter()
	api := func(path string, h http.Handler, methods ...string) {
		r.Handle(path, limit.Wrap(h)).Methods(methods...)
	}
	api("/v1/shares/client", allowCORS(s.issueHandler(ticket.KindClient)), http.MethodPost)
	api("/v1/shares/client", http.HandlerFunc(s.preflight), http.MethodOptions)
	api("/v1/shares/permit", allowCORS(s.issueHandler(ticket.KindPermit)), http.MethodPost)
	api("/v1/shares/permit", http.HandlerFunc(s.preflight), http.MethodOptions)
	api("/v1/shares/server", s.issueHandler(ticket.KindServer), http.MethodPost)
	api("/v1/revocations", s.issueHandler(ticket.KindRevoke), http.MethodPost)
	api("/v1/record", http.HandlerFunc(s.handleRecord), http.MethodGet)
	api("/v1/openapi.yaml", http.HandlerFunc(serveOpenAPI), http.MethodGet)
	r.PathPrefix("/v1/log/").Handler(logLimit.Wrap(http.StripPrefix("/v1/log", s.log.Handler()))).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/livez", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) }).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/readyz", s.readyz).Methods(http.MethodGet, http.MethodHead)
	r.NotFoundHandler = limit.Wrap(httpx.NotFound(s.cfg.Logger))
	r.MethodNotAllowedHandler = limit.Wrap(httpx.MethodNotAllowed(s.cfg.Logger))
	return r
}

func (s *Service) issueHandler(kind string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		resp, err := s.handleIssue(w, r, kind)
		s.metrics.issued(kind, err, time.Since(start))
		if err != nil {
			httpx.WriteError(w, r, s.cfg.Logger, err)
			return
		}
		// What httpx.WriteJSON writes, encoded without reflection.
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		buf := responseBuffers.Get().(*[]byte)
		b := append(resp.AppendJSON((*buf)[:0]), '\n')
		w.Write(b)
		if cap(b) <= 64<<10 { // not the buffer of a year of permits
			*buf = b[:0]
			responseBuffers.Put(buf)
		}
	})
}

// responseBuffers hold the encodings of issuance responses while they are written.
var responseBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func (s *Service) handleIssue(w http.ResponseWriter, r *http.Request, kind string) (*wire.DTAResponse, error) {
	var req wire.DTARequest
	if err := httpx.DecodeJSON(w, r, httpx.MaxBody, &req); err != nil {
		return nil, err
	}
	k := s.keys.Load() // one consistent bundle and key set for the whole request
	tk, err := s.checkTicket(k.bundle, req.Ticket, kind)
	if err != nil {
		return nil, err
	}
	return s.issue(r.Context(), k, tk, req.Ticket)
}

func (s *Service) handleRecord(w http.ResponseWriter, _ *http.Request) {
	httpx.WriteJSON(w, http.StatusOK, s.keys.Load().record)
}
