package oidcop

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Client authentication methods at the token endpoint.
const (
	AuthSecretBasic   = "client_secret_basic"
	AuthSecretPost    = "client_secret_post"
	AuthPrivateKeyJWT = "private_key_jwt"
	AuthNone          = "none" // a public client (a single-page or native app): PKCE only
)

// A Client is a relying party registered with the provider.
type Client struct {
	ID string
	// AuthMethod is how the client authenticates at the token endpoint (Auth*).
	AuthMethod string
	// SecretSHA256 is the hex SHA-256 of the client secret (client_secret_basic and
	// client_secret_post): the provider never holds the secret itself, so the secret
	// must be random (32 bytes or more), as `polyroot server oidc-client` makes it.
	SecretSHA256 string
	// JWKS holds the client's public keys (a JSON Web Key Set) for private_key_jwt.
	JWKS json.RawMessage
	// RedirectURIs are compared exactly with an auth request's redirect_uri.
	RedirectURIs []string
	// PostLogoutRedirectURIs are where logout may send the user agent back to.
	PostLogoutRedirectURIs []string

	loginURL string
	idTTL    time.Duration
	secret   []byte
	keys     jose.JSONWebKeySet
}

// CheckClient reports whether c is a valid registration (an https redirect URI, a
// secret hash of the right size, …), as New checks it.
func CheckClient(c Client) error { return c.check(false) }

// check validates the registration and prepares it.
func (c *Client) check(allowHTTP bool) error {
	if c.ID == "" {
		return fmt.Errorf("oidcop: a client without an ID")
	}
	switch c.AuthMethod {
	case AuthSecretBasic, AuthSecretPost:
		s, err := hex.DecodeString(c.SecretSHA256)
		if err != nil || len(s) != sha256.Size {
			return fmt.Errorf("oidcop: client %q: secret_sha256 must be 64 hex digits", c.ID)
		}
		c.secret = s
	case AuthPrivateKeyJWT:
		if err := json.Unmarshal(c.JWKS, &c.keys); err != nil || len(c.keys.Keys) == 0 {
			return fmt.Errorf("oidcop: client %q: private_key_jwt needs a JWKS with at least one key", c.ID)
		}
		for _, k := range c.keys.Keys {
			if k.KeyID == "" || !k.IsPublic() || !k.Valid() {
				return fmt.Errorf("oidcop: client %q: every key of its JWKS must be a valid public key with a kid", c.ID)
			}
			if !assertionKeyOK(k.Key) {
				return fmt.Errorf("oidcop: client %q: key %q: private_key_jwt takes RSA keys of 2048 bits or more (RS256, PS256) "+
					"and P-256 keys (ES256) only", c.ID, k.KeyID)
			}
		}
	case AuthNone:
	default:
		return fmt.Errorf("oidcop: client %q: auth method %q is not one of %s, %s, %s, %s", c.ID, c.AuthMethod,
			AuthSecretBasic, AuthSecretPost, AuthPrivateKeyJWT, AuthNone)
	}
	if len(c.RedirectURIs) == 0 {
		return fmt.Errorf("oidcop: client %q has no redirect URI", c.ID)
	}
	for _, u := range append(slices.Clone(c.RedirectURIs), c.PostLogoutRedirectURIs...) {
		p, err := url.Parse(u)
		if err != nil || p.Host == "" || p.Fragment != "" || (p.Scheme != "https" && !(p.Scheme == "http" && allowHTTP)) {
			return fmt.Errorf("oidcop: client %q: redirect URI %q must be an absolute https URL without fragment", c.ID, u)
		}
		if len(u) > maxRedirectURI { // it goes into every auth request's cookie
			return fmt.Errorf("oidcop: client %q: redirect URI %.40q… is longer than %d bytes", c.ID, u, maxRedirectURI)
		}
	}
	return nil
}

// assertionKeyOK reports whether a client's public key can verify one of
// assertionAlgs: a key of another kind would be registered but never work.
func assertionKeyOK(k any) bool {
	switch k := k.(type) {
	case *rsa.PublicKey:
		return k.N.BitLen() >= 2048
	case *ecdsa.PublicKey:
		return k.Curve == elliptic.P256()
	}
	return false
}

// maxRedirectURI bounds a registered redirect URI.
const maxRedirectURI = 512

// secretOK compares a presented secret with the registered hash in constant time.
func (c *Client) secretOK(secret string) bool {
	if c.secret == nil {
		return false
	}
	h := sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(h[:], c.secret) == 1
}

// opClient is a Client as the op package sees it.
type opClient struct{ *Client }

var _ op.Client = opClient{}

func (c opClient) GetID() string                    { return c.ID }
func (c opClient) RedirectURIs() []string           { return c.Client.RedirectURIs }
func (c opClient) PostLogoutRedirectURIs() []string { return c.Client.PostLogoutRedirectURIs }
func (c opClient) ApplicationType() op.ApplicationType {
	if c.Client.AuthMethod == AuthNone {
		return op.ApplicationTypeUserAgent
	}
	return op.ApplicationTypeWeb
}
func (c opClient) AuthMethod() oidc.AuthMethod { return oidc.AuthMethod(c.Client.AuthMethod) }
func (c opClient) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c opClient) GrantTypes() []oidc.GrantType { return []oidc.GrantType{oidc.GrantTypeCode} }
func (c opClient) LoginURL(id string) string {
	return c.loginURL + "?authRequestID=" + url.QueryEscape(id)
}
func (c opClient) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeBearer }
func (c opClient) IDTokenLifetime() time.Duration      { return c.idTTL }
func (c opClient) DevMode() bool                       { return false }
func (c opClient) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c opClient) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c opClient) IsScopeAllowed(string) bool           { return false }
func (c opClient) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c opClient) ClockSkew() time.Duration             { return 0 }
