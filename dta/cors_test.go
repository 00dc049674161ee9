package dta

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/polyroot/polyroot/internal/ticket"
)

// TestCORS checks that a browser page of any origin may fetch client shares and
// permits (preflight and the POST itself), without credentials, and nothing else.
func TestCORS(t *testing.T) {
	d := newDomain(t, 1, 3600)
	nd := d.dtas[0]
	good := ticketBody(d.ticket(ticket.KindClient, newID(t, "cora@example.com")))
	const origin = "https://auth.example:8443"
	preflight := func(method, headers string) map[string]string {
		h := map[string]string{"Origin": origin, "Access-Control-Request-Method": method}
		if headers != "" {
			h["Access-Control-Request-Headers"] = headers
		}
		return h
	}
	cases := []struct {
		name, method, path string
		header             map[string]string
		body               []byte
		status             int
		allowOrigin        string // "" : no CORS header at all
		code               string
	}{
		{"ok/preflight-client", "OPTIONS", "/v1/shares/client", preflight("POST", "content-type"), nil, 204, "*", ""},
		{"ok/preflight-permit", "OPTIONS", "/v1/shares/permit", preflight("POST", "Content-Type, Accept"), nil, 204, "*", ""},
		{"ok/preflight-no-headers", "OPTIONS", "/v1/shares/client", preflight("POST", ""), nil, 204, "*", ""},
		{"ok/post-client", "POST", "/v1/shares/client", map[string]string{"Origin": origin, "Content-Type": "application/json"}, good, 200, "*", ""},
		{"ok/post-error-readable", "POST", "/v1/shares/permit", map[string]string{"Origin": origin, "Content-Type": "application/json"}, good, 400, "*", "wrong_kind"},
		{"fail/preflight-delete", "OPTIONS", "/v1/shares/client", preflight("DELETE", ""), nil, 403, "", "cors_refused"},
		{"fail/preflight-authorization", "OPTIONS", "/v1/shares/client", preflight("POST", "content-type, authorization"), nil, 403, "", "cors_refused"},
		{"fail/preflight-no-method", "OPTIONS", "/v1/shares/permit", map[string]string{"Origin": origin}, nil, 403, "", "cors_refused"},
		{"fail/preflight-server-share", "OPTIONS", "/v1/shares/server", preflight("POST", "content-type"), nil, 405, "", "method_not_allowed"},
		{"fail/preflight-revocations", "OPTIONS", "/v1/revocations", preflight("POST", "content-type"), nil, 405, "", "method_not_allowed"},
		{"fail/server-share-no-cors", "POST", "/v1/shares/server", map[string]string{"Origin": origin, "Content-Type": "application/json"}, good, 400, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, nd.url+tc.path, bytes.NewReader(tc.body))
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d %s, want %d", resp.StatusCode, raw, tc.status)
			}
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != tc.allowOrigin {
				t.Errorf("Access-Control-Allow-Origin %q, want %q", got, tc.allowOrigin)
			}
			if got := resp.Header.Get("Access-Control-Allow-Credentials"); got != "" {
				t.Errorf("Access-Control-Allow-Credentials %q: credentials are never allowed", got)
			}
			if tc.status == 204 {
				h := resp.Header
				if h.Get("Access-Control-Allow-Methods") != "POST" || h.Get("Access-Control-Allow-Headers") != "Content-Type" || h.Get("Access-Control-Max-Age") != corsMaxAge {
					t.Errorf("preflight headers %v", h)
				}
			}
			if tc.allowOrigin != "" && tc.method == "POST" && resp.Header.Get("Access-Control-Expose-Headers") != "Retry-After" {
				t.Errorf("Access-Control-Expose-Headers %q", resp.Header.Get("Access-Control-Expose-Headers"))
			}
			if tc.code != "" {
				var e struct{ Code string }
				if err := json.Unmarshal(raw, &e); err != nil || e.Code != tc.code {
					t.Errorf("body %s, want code %q", raw, tc.code)
				}
			}
		})
	}
}
