package oidcop

import (
	"net/http"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// discoveryPath is where the discovery document is served, under Prefix.
const discoveryPath = "/.well-known/openid-configuration"

// discover serves the discovery document: the library's, less what this provider does
// not offer. The library always lists the implicit grant and its response types, the
// JWT bearer grant and a device authorization endpoint, but every client here may use
// the authorization code flow only (opClient), so a relying party that chose a flow
// from the library's document would be refused.
func (p *Provider) discover(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	d := op.CreateDiscoveryConfig(op.ContextWithIssuer(r.Context(), p.cfg.Issuer), p.op, p.storage)
	d.ResponseTypesSupported = []string{string(oidc.ResponseTypeCode)}
	d.GrantTypesSupported = []oidc.GrantType{oidc.GrantTypeCode}
	d.DeviceAuthorizationEndpoint = ""
	d.CheckSessionIframe = ""
	op.Discover(w, d)
}
