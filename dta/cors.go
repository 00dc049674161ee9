package dta

import (
	"net/http"
	"strings"

	"github.com/polyroot/polyroot/internal/httpx"
)

// Cross-origin requests (CORS). The browser client (internal/wasmclient) runs in a
// page of the auth server's origin and fetches its client shares and permits from
// every DTA: POST /v1/shares/client and /v1/shares/permit, nothing else. Those two
// routes answer any origin ("Access-Control-Allow-Origin: *"), without credentials:
// cookies and HTTP authentication play no part in issuing. A share is sealed to the key
// the client proved with its enrolment code, and every request is authorised by the
// registrar-signed ticket in its body; a page of another origin that holds a ticket
// could send it from anywhere without a browser, and gets nothing it can open. No
// other route allows other origins (the server share and revocations are for the
// auth server and the registrar, not for browsers).

// corsMaxAge is how long a browser may cache a preflight, in seconds (Chromium keeps
// one for at most two hours).
const corsMaxAge = "7200"

// corsHeaders are the request headers a browser may send besides the CORS-safelisted
// ones (Accept is one): the client posts JSON.
var corsHeaders = map[string]bool{"content-type": true, "accept": true}

// allowCORS lets pages of any origin read h's answers, and the Retry-After of a 429.
func allowCORS(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Access-Control-Expose-Headers", "Retry-After")
		h.ServeHTTP(w, r)
	})
}

// preflight answers a CORS preflight (OPTIONS) for a share route: 204 with the allowed
// method (POST) and headers when the browser asks for those, 403 "cors_refused"
// without any CORS header otherwise, so that the browser sends nothing.
func (s *Service) preflight(w http.ResponseWriter, r *http.Request) {
	if !preflightAllowed(r.Header) {
		httpx.WriteError(w, r, s.cfg.Logger, httpx.Errorf(http.StatusForbidden, "cors_refused",
			"a cross-origin request here may only POST JSON (Content-Type), without credentials"))
		return
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Methods", http.MethodPost)
	h.Set("Access-Control-Allow-Headers", "Content-Type")
	h.Set("Access-Control-Max-Age", corsMaxAge)
	h.Add("Vary", "Access-Control-Request-Method")
	h.Add("Vary", "Access-Control-Request-Headers")
	w.WriteHeader(http.StatusNoContent)
}

// preflightAllowed reports whether a preflight asks for POST with at most the allowed
// headers.
func preflightAllowed(h http.Header) bool {
	if h.Get("Access-Control-Request-Method") != http.MethodPost {
		return false
	}
	for _, v := range h.Values("Access-Control-Request-Headers") {
		for _, name := range strings.Split(v, ",") {
			if name = strings.ToLower(strings.TrimSpace(name)); name != "" && !corsHeaders[name] {
				return false
			}
		}
	}
	return true
}
