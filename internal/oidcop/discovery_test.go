package oidcop

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
)

// TestDiscovery: the discovery document offers what the provider serves (the code
// flow with PKCE), not the library's implicit, JWT bearer and device flows, and any
// origin may read it without credentials.
func TestDiscovery(t *testing.T) {
	p := testProvider(t)
	h := p.Handler()
	get := func(method string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(method, "https://auth.example/oidc/.well-known/openid-configuration", nil)
		r.Header.Set("Origin", "https://spa.example")
		h.ServeHTTP(w, r)
		return w
	}
	w := get(http.MethodGet)
	var d struct {
		Issuer                string   `json:"issuer"`
		Authorization         string   `json:"authorization_endpoint"`
		Token                 string   `json:"token_endpoint"`
		JWKS                  string   `json:"jwks_uri"`
		Device                *string  `json:"device_authorization_endpoint"`
		ResponseTypes         []string `json:"response_types_supported"`
		GrantTypes            []string `json:"grant_types_supported"`
		CodeChallengeMethods  []string `json:"code_challenge_methods_supported"`
		IDTokenSigningAlgs    []string `json:"id_token_signing_alg_values_supported"`
		CheckSessionIframe    *string  `json:"check_session_iframe"`
		TokenEndpointAuthMeth []string `json:"token_endpoint_auth_methods_supported"`
	}
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &d) != nil {
		t.Fatalf("GET: %d %s", w.Code, w.Body)
	}
	switch {
	case d.Issuer != "https://auth.example/oidc" || d.Authorization != "https://auth.example/oidc/authorize" ||
		d.Token != "https://auth.example/oidc/oauth/token" || d.JWKS == "":
		t.Fatalf("endpoints: %s", w.Body)
	case !slices.Equal(d.ResponseTypes, []string{"code"}) || !slices.Equal(d.GrantTypes, []string{"authorization_code"}):
		t.Fatalf("response types %q, grant types %q: want the code flow only", d.ResponseTypes, d.GrantTypes)
	case d.Device != nil || d.CheckSessionIframe != nil:
		t.Fatalf("endpoints that are not served: %s", w.Body)
	case !slices.Equal(d.CodeChallengeMethods, []string{"S256"}) || !slices.Equal(d.IDTokenSigningAlgs, []string{"EdDSA"}):
		t.Fatalf("PKCE methods %q, ID token algorithms %q", d.CodeChallengeMethods, d.IDTokenSigningAlgs)
	case !slices.Contains(d.TokenEndpointAuthMeth, "none") || !slices.Contains(d.TokenEndpointAuthMeth, "private_key_jwt"):
		t.Fatalf("token endpoint auth methods %q", d.TokenEndpointAuthMeth)
	}
	if got := w.Header().Get("Access-Control-Allow-Origin"); got == "" || w.Header().Get("Access-Control-Allow-Credentials") != "" {
		t.Fatalf("CORS: allow-origin %q, credentials %q", got, w.Header().Get("Access-Control-Allow-Credentials"))
	}
	if w := get(http.MethodPost); w.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d", w.Code)
	}
}
