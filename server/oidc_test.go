package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"

	"github.com/polyroot/polyroot/internal/oidcop"
	"github.com/polyroot/polyroot/internal/wire"
)

const (
	rpSecret   = "rp-secret-0123456789abcdef0123456789abcdef"
	rpRedirect = "http://127.0.0.1:1/callback" // never dialled: the test reads the Location
)

// oidcEnv is an auth server that is an OpenID Provider, a relying party registered
// with it (go-oidc and x/oauth2, as any app would) and an enrolled identity.
type oidcEnv struct {
	h      *harness
	c      *tclient
	issuer string
	op     *oidc.Provider
	rp     oauth2.Config
	// noRedirect is the user's browser: an HTTP client with cookies that shows
	// redirects instead of following them.
	noRedirect *http.Client
}

// newBrowser is a user agent of its own (cookies) that shows redirects instead of
// following them.
func newBrowser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Timeout: 30 * time.Second, Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
}

// apiKey is the private_key_jwt client "api"'s signing key (P-256), kid "api-1".
var apiKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

func newOIDCEnv(t *testing.T, mod ...func(*Config)) *oidcEnv {
	t.Helper()
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: apiKey.Public(), KeyID: "api-1", Algorithm: "ES256", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + l.Addr().String() + "/oidc"
	sum := sha256.Sum256([]byte(rpSecret))
	e := newEnv(t, 0)
	h := e.startOn(t, l, t.TempDir(), false, func(c *Config) {
		c.OIDC = OIDCConfig{Issuer: issuer, AllowInsecure: true, Clients: []oidcop.Client{{
			ID: "shop", AuthMethod: oidcop.AuthSecretBasic, SecretSHA256: hex.EncodeToString(sum[:]),
			RedirectURIs: []string{rpRedirect}, PostLogoutRedirectURIs: []string{rpRedirect + "/bye"}}, {
			ID: "api", AuthMethod: oidcop.AuthPrivateKeyJWT, JWKS: jwks, RedirectURIs: []string{rpRedirect}}}}
		for _, m := range mod {
			m(c)
		}
	})
	ctx := oidc.ClientContext(context.Background(), h.http)
	op, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		t.Fatal(err)
	}
	return &oidcEnv{h: h, c: h.enrol(t, wire.EnrolmentRequest{ID: "alice@example.test"}, "2468"), issuer: issuer, op: op,
		rp: oauth2.Config{ClientID: "shop", ClientSecret: rpSecret, Endpoint: op.Endpoint(), RedirectURL: rpRedirect,
			Scopes: []string{oidc.ScopeOpenID, "profile"}},
		noRedirect: newBrowser(t)}
}

// redirect GETs u and returns the Location it redirects to.
func (o *oidcEnv) redirect(t *testing.T, u string) *url.URL {
	t.Helper()
	resp, err := o.noRedirect.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		t.Fatalf("GET %s: %d, no redirect", u, resp.StatusCode)
	}
	return loc
}

// authorize starts an authorization as the relying party and returns the auth
// request's ID from the redirect to the login page.
func (o *oidcEnv) authorize(t *testing.T, verifier, nonce string) string {
	t.Helper()
	loc := o.redirect(t, o.rp.AuthCodeURL("state-1", oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)))
	if loc.Path != "/login" || loc.Query().Get("authRequestID") == "" {
		t.Fatalf("authorize sent the user agent to %s, not the login page", loc)
	}
	return loc.Query().Get("authRequestID")
}

// accessToken logs in as the browser page does (unbound, for auth request
// authRequestID) and returns the access token.
func (o *oidcEnv) accessToken(t *testing.T, authRequestID string) string {
	t.Helper()
	res := o.h.login(t, o.c, "2468", loginOpts{unbound: true, authRequest: authRequestID})
	if res.status != 200 {
		t.Fatalf("login: %d %s", res.status, res.body)
	}
	return res.fin.AccessToken
}

// complete posts the login to /login/complete from the user's browser.
func (o *oidcEnv) complete(t *testing.T, authRequestID, token string) (int, oidcop.CompleteResponse) {
	t.Helper()
	var out oidcop.CompleteResponse
	st, _ := do(t, o.noRedirect, "POST", o.h.url+"/login/complete", "", oidcop.CompleteRequest{AuthRequestID: authRequestID, AccessToken: token}, &out)
	return st, out
}

// code runs the whole front channel and returns the code the relying party gets.
func (o *oidcEnv) code(t *testing.T, verifier, nonce string) string {
	t.Helper()
	id := o.authorize(t, verifier, nonce)
	st, res := o.complete(t, id, o.accessToken(t, id))
	if st != 200 {
		t.Fatalf("complete: %d", st)
	}
	loc := o.redirect(t, res.Redirect)
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != rpRedirect || loc.Query().Get("state") != "state-1" || loc.Query().Get("code") == "" {
		t.Fatalf("the callback sent the user agent to %s", loc)
	}
	return loc.Query().Get("code")
}

func TestOIDCCodeFlow(t *testing.T) {
	o := newOIDCEnv(t)
	ctx := oidc.ClientContext(context.Background(), o.h.http)
	verifier := oauth2.GenerateVerifier()
	tok, err := o.rp.Exchange(ctx, o.code(t, verifier, "nonce-1"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := o.op.Verifier(&oidc.Config{ClientID: "shop"}).Verify(ctx, raw)
	if err != nil {
		t.Fatalf("go-oidc refuses the ID token: %v", err)
	}
	var claims struct {
		AMR      []string `json:"amr"`
		AuthTime int64    `json:"auth_time"`
	}
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if idt.Subject != "alice@example.test" || idt.Nonce != "nonce-1" || !slices.Equal(claims.AMR, []string{"mpin", "pin"}) || claims.AuthTime == 0 {
		t.Fatalf("ID token: sub %q nonce %q amr %v auth_time %d", idt.Subject, idt.Nonce, claims.AMR, claims.AuthTime)
	}
	ui, err := o.op.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil || ui.Subject != "alice@example.test" {
		t.Fatalf("userinfo: %v %+v", err, ui)
	}
}

func TestOIDCDiscovery(t *testing.T) {
	o := newOIDCEnv(t)
	var d struct {
		Issuer     string   `json:"issuer"`
		Authorize  string   `json:"authorization_endpoint"`
		Token      string   `json:"token_endpoint"`
		JWKS       string   `json:"jwks_uri"`
		UserInfo   string   `json:"userinfo_endpoint"`
		EndSession string   `json:"end_session_endpoint"`
		Revocation string   `json:"revocation_endpoint"`
		PKCE       []string `json:"code_challenge_methods_supported"`
		Algs       []string `json:"id_token_signing_alg_values_supported"`
		Responses  []string `json:"response_types_supported"`
		AuthMeths  []string `json:"token_endpoint_auth_methods_supported"`
	}
	if st, body := do(t, o.h.http, "GET", o.issuer+"/.well-known/openid-configuration", "", nil, &d); st != 200 {
		t.Fatalf("discovery: %d %s", st, body)
	}
	if d.Issuer != o.issuer || !strings.HasPrefix(d.Authorize, o.issuer+"/") || !strings.HasPrefix(d.Token, o.issuer+"/") ||
		!strings.HasPrefix(d.JWKS, o.issuer+"/") || d.UserInfo == "" || d.EndSession == "" || d.Revocation == "" {
		t.Errorf("endpoints: %+v", d)
	}
	if !slices.Equal(d.PKCE, []string{"S256"}) || !slices.Equal(d.Algs, []string{"EdDSA"}) || !slices.Contains(d.Responses, "code") ||
		!slices.Contains(d.AuthMeths, "private_key_jwt") || !slices.Contains(d.AuthMeths, "client_secret_basic") {
		t.Errorf("capabilities: %+v", d)
	}
	// The provider's keys are the access-token keys of /.well-known/jwks.json.
	var keys, tokenKeys struct {
		Keys []struct{ Kid, X string } `json:"keys"`
	}
	do(t, o.h.http, "GET", d.JWKS, "", nil, &keys)
	do(t, o.h.http, "GET", o.h.url+"/.well-known/jwks.json", "", nil, &tokenKeys)
	if len(keys.Keys) != 1 || keys.Keys[0] != tokenKeys.Keys[0] {
		t.Errorf("provider keys %+v, token keys %+v", keys, tokenKeys)
	}
}

func TestOIDCRefusals(t *testing.T) {
	o := newOIDCEnv(t)
	ctx := oidc.ClientContext(context.Background(), o.h.http)
	verifier := oauth2.GenerateVerifier()
	authErr := func(t *testing.T, u string) string {
		t.Helper()
		resp, err := o.noRedirect.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, _ := resp.Location()
		switch {
		case loc == nil:
			return "status " + resp.Status
		case loc.Path == "/login":
			return "login page"
		}
		return loc.Query().Get("error")
	}

	t.Run("fail/no-pkce", func(t *testing.T) {
		if got := authErr(t, o.rp.AuthCodeURL("s")); got != "invalid_request" {
			t.Fatalf("an auth request without PKCE: %s", got)
		}
	})
	t.Run("fail/plain-pkce", func(t *testing.T) {
		u := o.rp.AuthCodeURL("s", oauth2.SetAuthURLParam("code_challenge", verifier), oauth2.SetAuthURLParam("code_challenge_method", "plain"))
		if got := authErr(t, u); got != "invalid_request" {
			t.Fatalf("plain PKCE: %s", got)
		}
	})
	t.Run("fail/wrong-redirect-uri", func(t *testing.T) {
		for _, bad := range []string{"http://127.0.0.1:1/callback/", "http://127.0.0.1:1/callback?x=1", "http://127.0.0.2:1/callback", "http://127.0.0.1:1/CALLBACK"} {
			rp := o.rp
			rp.RedirectURL = bad
			if got := authErr(t, rp.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier))); !strings.HasPrefix(got, "status 4") {
				t.Fatalf("redirect URI %s: %s (must not redirect anywhere)", bad, got)
			}
		}
	})
	t.Run("fail/unknown-client", func(t *testing.T) {
		rp := o.rp
		rp.ClientID = "mallory"
		if got := authErr(t, rp.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier))); !strings.HasPrefix(got, "status 4") {
			t.Fatalf("unknown client: %s", got)
		}
	})
	t.Run("fail/code-used-twice", func(t *testing.T) {
		code := o.code(t, verifier, "n")
		if _, err := o.rp.Exchange(ctx, code, oauth2.VerifierOption(verifier)); err != nil {
			t.Fatal(err)
		}
		if _, err := o.rp.Exchange(ctx, code, oauth2.VerifierOption(verifier)); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
			t.Fatalf("a code used twice: %v", err)
		}
	})
	// A failed exchange (someone who saw the code, without the verifier or the
	// secret) does not use the code up: its relying party still redeems it.
	t.Run("fail/wrong-verifier", func(t *testing.T) {
		code := o.code(t, verifier, "n")
		if _, err := o.rp.Exchange(ctx, code, oauth2.VerifierOption(oauth2.GenerateVerifier())); err == nil {
			t.Fatal("a code exchanged with another PKCE verifier")
		}
		if _, err := o.rp.Exchange(ctx, code, oauth2.VerifierOption(verifier)); err != nil {
			t.Fatalf("the code, after an exchange with another verifier: %v", err)
		}
	})
	t.Run("fail/wrong-secret", func(t *testing.T) {
		code := o.code(t, verifier, "n")
		rp := o.rp
		rp.ClientSecret = "not-the-secret"
		if _, err := rp.Exchange(ctx, code, oauth2.VerifierOption(verifier)); err == nil || !strings.Contains(err.Error(), "invalid_client") {
			t.Fatalf("a wrong client secret: %v", err)
		}
		if _, err := o.rp.Exchange(ctx, code, oauth2.VerifierOption(verifier)); err != nil {
			t.Fatalf("the code, after an exchange with a wrong secret: %v", err)
		}
	})
	t.Run("fail/login-token-used-twice", func(t *testing.T) {
		id := o.authorize(t, verifier, "n")
		tok := o.accessToken(t, id)
		if st, _ := o.complete(t, id, tok); st != 200 {
			t.Fatalf("first completion: %d", st)
		}
		if st, _ := o.complete(t, o.authorize(t, verifier, "n"), tok); st != 401 {
			t.Fatalf("a login completed a second auth request: %d", st)
		}
	})
	t.Run("fail/request-completed-twice", func(t *testing.T) {
		id := o.authorize(t, verifier, "n")
		if st, _ := o.complete(t, id, o.accessToken(t, id)); st != 200 {
			t.Fatalf("first completion: %d", st)
		}
		if st, _ := o.complete(t, id, o.accessToken(t, id)); st != 401 {
			t.Fatalf("an auth request completed twice: %d", st)
		}
	})
	t.Run("fail/bad-tokens", func(t *testing.T) {
		id := o.authorize(t, verifier, "n")
		stale, _, _, err := o.h.srv.issueToken("alice@example.test", o.c.id, []string{"mpin", "pin"}, id, time.Now().Add(-3*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		for name, tok := range map[string]string{"empty": "", "garbage": "x.y.z", "stale": stale,
			// A fresh token of a login made for no auth request (an app's), or another.
			"app-login": o.accessToken(t, ""), "other-request": o.accessToken(t, o.authorize(t, verifier, "n"))} {
			if st, _ := o.complete(t, id, tok); st != 401 {
				t.Fatalf("%s token: %d", name, st)
			}
		}
		if st, _ := o.complete(t, id, o.accessToken(t, id)); st != 200 {
			t.Fatalf("after the refusals: %d", st)
		}
		if st, _ := o.complete(t, "no-such-request", o.accessToken(t, "no-such-request")); st != 401 {
			t.Fatalf("unknown auth request: %d", st)
		}
	})
	t.Run("fail/auth-request-malformed", func(t *testing.T) {
		for _, bad := range []string{"a b", "x/y", strings.Repeat("a", 65), "é"} {
			if res := o.h.login(t, o.c, "2468", loginOpts{unbound: true, authRequest: bad}); res.status != 400 {
				t.Fatalf("auth_request %q: %d %s", bad, res.status, res.body)
			}
		}
	})
	t.Run("fail/revoked-identity", func(t *testing.T) {
		id := o.authorize(t, verifier, "n")
		tok := o.accessToken(t, id)
		if st, body := do(t, o.h.http, "POST", o.h.url+"/v1/admin/revoke", testAdmin, wire.IdentityRequest{ID: "alice@example.test"}, nil); st != 200 {
			t.Fatalf("revoke: %d %s", st, body)
		}
		if st, _ := o.complete(t, id, tok); st != 401 {
			t.Fatalf("a revoked identity's login completed an auth request: %d", st)
		}
	})
}

// TestOIDCOtherBrowser: an auth request belongs to the browser that started it. Who
// starts an authorization at a relying party and sends its login page to someone else
// gets nothing: the other browser cannot complete it, and the callback that issues
// the code answers only the starting browser, and only once.
func TestOIDCOtherBrowser(t *testing.T) {
	o := newOIDCEnv(t)
	verifier := oauth2.GenerateVerifier()
	starter, other := o.noRedirect, newBrowser(t)
	codeFrom := func(t *testing.T, browser *http.Client, callback string) string {
		t.Helper()
		resp, err := browser.Get(callback)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if loc, _ := resp.Location(); loc != nil {
			return loc.Query().Get("code")
		}
		return ""
	}

	t.Run("fail/completed-by-another-browser", func(t *testing.T) {
		id := o.authorize(t, verifier, "n")
		var out oidcop.CompleteResponse
		st, _ := do(t, other, "POST", o.h.url+"/login/complete", "", oidcop.CompleteRequest{AuthRequestID: id, AccessToken: o.accessToken(t, id)}, &out)
		if st != 401 {
			t.Fatalf("another browser completed the auth request: %d", st)
		}
		if code := codeFrom(t, starter, o.issuer+"/authorize/callback?id="+id); code != "" {
			t.Fatal("the callback issued a code for a request nobody completed")
		}
	})
	t.Run("fail/callback-in-another-browser", func(t *testing.T) {
		id := o.authorize(t, verifier, "n")
		st, res := o.complete(t, id, o.accessToken(t, id))
		if st != 200 {
			t.Fatalf("complete: %d", st)
		}
		resp, err := other.Get(res.Redirect)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("the callback answered another browser %d", resp.StatusCode)
		}
		// Other spellings of the callback's route, and the ID in a form body: no code.
		for _, u := range []string{strings.Replace(res.Redirect, "/callback?", "/callback/?", 1),
			strings.Replace(res.Redirect, "/authorize/", "//authorize/", 1), strings.Replace(res.Redirect, "/callback?", "/./callback?", 1)} {
			if code := codeFrom(t, other, u); code != "" {
				t.Fatalf("%s gave another browser a code", u)
			}
		}
		form, err := other.PostForm(o.issuer+"/authorize/callback", url.Values{"id": {id}})
		if err != nil {
			t.Fatal(err)
		}
		form.Body.Close()
		if loc, _ := form.Location(); loc != nil && loc.Query().Get("code") != "" {
			t.Fatal("a form post gave another browser a code")
		}
		if codeFrom(t, starter, res.Redirect) == "" {
			t.Fatal("no code for the starting browser")
		}
		if code := codeFrom(t, starter, res.Redirect); code != "" {
			t.Fatal("the callback issued a second code")
		}
	})
}

func TestOIDCConfig(t *testing.T) {
	e := newEnv(t, 0)
	sum := sha256.Sum256([]byte(rpSecret))
	good := oidcop.Client{ID: "shop", AuthMethod: oidcop.AuthSecretBasic, SecretSHA256: hex.EncodeToString(sum[:]), RedirectURIs: []string{"https://shop.example/cb"}}
	for name, o := range map[string]OIDCConfig{
		"fail/issuer-without-path":  {Issuer: "https://auth.example"},
		"fail/issuer-on-api-path":   {Issuer: "https://auth.example/v1"},
		"fail/issuer-on-login-path": {Issuer: "https://auth.example/login"},
		"fail/http-issuer":          {Issuer: "http://auth.example/oidc"},
		"fail/clients-no-issuer":    {Clients: []oidcop.Client{good}},
		"fail/http-redirect":        {Issuer: "https://auth.example/oidc", Clients: []oidcop.Client{{ID: "a", AuthMethod: "none", RedirectURIs: []string{"http://shop.example/cb"}}}},
		"fail/short-secret-hash":    {Issuer: "https://auth.example/oidc", Clients: []oidcop.Client{{ID: "a", AuthMethod: "client_secret_basic", SecretSHA256: "abcd", RedirectURIs: good.RedirectURIs}}},
		"fail/unknown-method":       {Issuer: "https://auth.example/oidc", Clients: []oidcop.Client{{ID: "a", AuthMethod: "tls_client_auth", RedirectURIs: good.RedirectURIs}}},
		"fail/jwt-without-keys":     {Issuer: "https://auth.example/oidc", Clients: []oidcop.Client{{ID: "a", AuthMethod: "private_key_jwt", JWKS: json.RawMessage(`{"keys":[]}`), RedirectURIs: good.RedirectURIs}}},
		"fail/client-twice":         {Issuer: "https://auth.example/oidc", Clients: []oidcop.Client{good, good}},
		"fail/jwt-ed25519-key": {Issuer: "https://auth.example/oidc", Clients: []oidcop.Client{{ID: "a", AuthMethod: "private_key_jwt",
			JWKS: json.RawMessage(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"k1"}]}`), RedirectURIs: good.RedirectURIs}}},
	} {
		t.Run(name, func(t *testing.T) {
			_, tk, _ := ed25519.GenerateKey(nil)
			cfg := e.config(t.TempDir(), tk)
			cfg.OIDC = o
			if srv, err := New(context.Background(), cfg); err == nil {
				srv.Close()
				t.Fatal("accepted")
			}
		})
	}
}

// TestOIDCPrivateKeyJWT: a client that authenticates with a signed assertion
// (private_key_jwt, RFC 7523) instead of a secret gets its tokens; an assertion signed
// by another key does not, nor one used before, one without jti or one that lives long.
func TestOIDCPrivateKeyJWT(t *testing.T) {
	o := newOIDCEnv(t)
	o.rp.ClientID, o.rp.ClientSecret = "api", ""
	exchange := func(t *testing.T, assertion string) (int, []byte) {
		t.Helper()
		verifier := oauth2.GenerateVerifier()
		code := o.code(t, verifier, "n")
		form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {rpRedirect}, "code_verifier": {verifier}}
		setAssertion(form, assertion)
		return o.providerPost(t, "/oauth/token", "", form)
	}
	assertion := o.apiAssertion(t, apiKey, nil)
	st, body := exchange(t, assertion)
	var tok struct {
		IDToken string `json:"id_token"`
	}
	if st != 200 || json.Unmarshal(body, &tok) != nil {
		t.Fatalf("private_key_jwt exchange: %d %s", st, body)
	}
	if idt, err := o.op.Verifier(&oidc.Config{ClientID: "api"}).Verify(context.Background(), tok.IDToken); err != nil || idt.Subject != "alice@example.test" {
		t.Fatalf("ID token: %v", err)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, tc := range []struct {
		name, assertion string
		status          int
		want            string
	}{
		{"fail/another-key", o.apiAssertion(t, other, nil), 400, "invalid signature"}, // the library's answer
		{"fail/replayed", assertion, 401, `"invalid_client","error_description":"the client assertion was used before`},
		{"fail/no-jti", o.apiAssertion(t, apiKey, func(c *jwt.Claims) { c.ID = "" }), 401, "the client assertion needs a jti"},
		{"fail/long-lived", o.apiAssertion(t, apiKey, func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(time.Now().Add(time.Hour)) }),
			401, "iat and exp at most 5 minutes apart"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if st, body := exchange(t, tc.assertion); st != tc.status || !strings.Contains(string(body), tc.want) {
				t.Fatalf("%d %s", st, body)
			}
		})
	}
}

// TestOIDCLogout: RP-initiated logout sends the user agent to a registered
// post-logout URI, and the client's access tokens for the user no longer work.
func TestOIDCLogout(t *testing.T) {
	o := newOIDCEnv(t)
	ctx := oidc.ClientContext(context.Background(), o.h.http)
	verifier := oauth2.GenerateVerifier()
	tok, err := o.rp.Exchange(ctx, o.code(t, verifier, "n"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		EndSession string `json:"end_session_endpoint"`
	}
	if err := o.op.Claims(&d); err != nil || d.EndSession == "" {
		t.Fatalf("no end_session_endpoint: %v", err)
	}
	q := url.Values{"id_token_hint": {tok.Extra("id_token").(string)}, "client_id": {"shop"},
		"post_logout_redirect_uri": {rpRedirect + "/bye"}, "state": {"s1"}}
	time.Sleep(10 * time.Millisecond) // a logout after the token's issue time
	if loc := o.redirect(t, d.EndSession+"?"+q.Encode()); loc.Path != "/callback/bye" || loc.Query().Get("state") != "s1" {
		t.Fatalf("logout sent the user agent to %s", loc)
	}
	if _, err := o.op.UserInfo(ctx, oauth2.StaticTokenSource(tok)); err == nil {
		t.Fatal("userinfo answers an access token issued before the logout")
	}
	q.Set("post_logout_redirect_uri", "https://evil.example/")
	resp, err := o.noRedirect.Get(d.EndSession + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc, _ := resp.Location(); loc != nil && loc.Host == "evil.example" {
		t.Fatal("logout redirected to an unregistered URI")
	}
}

// assertAsAPI adds to form a client assertion (private_key_jwt) of the client "api",
// signed by key.
func (o *oidcEnv) assertAsAPI(t *testing.T, form url.Values, key *ecdsa.PrivateKey) {
	t.Helper()
	setAssertion(form, o.apiAssertion(t, key, nil))
}

// apiAssertion is a client assertion of the client "api" signed by key: a fresh jti,
// a minute's life, with mutate's changes.
func (o *oidcEnv) apiAssertion(t *testing.T, key *ecdsa.PrivateKey, mutate func(*jwt.Claims)) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "api-1"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	claims := jwt.Claims{Issuer: "api", Subject: "api", Audience: jwt.Audience{o.issuer},
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute)), ID: newJTI()}
	if mutate != nil {
		mutate(&claims)
	}
	assertion, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return assertion
}

func setAssertion(form url.Values, assertion string) {
	form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
	form.Set("client_assertion", assertion)
}

// providerPost posts form to the provider's endpoint path as client "shop" (its
// secret), "api" (an assertion) or "" (as form is), and returns the answer's status
// and body.
func (o *oidcEnv) providerPost(t *testing.T, path, client string, form url.Values) (int, []byte) {
	t.Helper()
	if client == "api" {
		o.assertAsAPI(t, form, apiKey)
	}
	req, _ := http.NewRequest("POST", o.issuer+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if client == "shop" {
		req.SetBasicAuth("shop", rpSecret)
	}
	resp, err := o.h.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// TestOIDCTokenLifecycle: the provider's access tokens through introspection (RFC
// 7662) and userinfo: active for the client they were issued to, inactive for any
// other client, as an ID token, once revoked, after a logout and once expired.
func TestOIDCTokenLifecycle(t *testing.T) {
	var ahead atomic.Int64
	o := newOIDCEnv(t, func(c *Config) { c.Now = func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) } })
	checkTokenLifecycle(t, o, &ahead)
}

// checkTokenLifecycle is TestOIDCTokenLifecycle's check, on o's store; ahead moves
// o's clock.
func checkTokenLifecycle(t *testing.T, o *oidcEnv, ahead *atomic.Int64) {
	ctx := oidc.ClientContext(context.Background(), o.h.http)
	newToken := func() *oauth2.Token {
		verifier := oauth2.GenerateVerifier()
		tok, err := o.rp.Exchange(ctx, o.code(t, verifier, "n"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	introspect := func(token, client string) (active bool, sub string) {
		t.Helper()
		st, body := o.providerPost(t, "/oauth/introspect", client, url.Values{"token": {token}})
		var in struct {
			Active  bool   `json:"active"`
			Subject string `json:"sub"`
		}
		if st != 200 || json.Unmarshal(body, &in) != nil {
			t.Fatalf("introspect as %s: %d %s", client, st, body)
		}
		return in.Active, in.Subject
	}
	inactive := func(what string, tok *oauth2.Token) {
		t.Helper()
		if active, _ := introspect(tok.AccessToken, "shop"); active {
			t.Errorf("%s: introspection says active", what)
		}
		if _, err := o.op.UserInfo(ctx, oauth2.StaticTokenSource(tok)); err == nil {
			t.Errorf("%s: userinfo answers", what)
		}
	}

	tok := newToken()
	if active, sub := introspect(tok.AccessToken, "shop"); !active || sub != "alice@example.test" {
		t.Fatalf("a live token, by its client: active %v sub %q", active, sub)
	}
	if ui, err := o.op.UserInfo(ctx, oauth2.StaticTokenSource(tok)); err != nil || ui.Subject != "alice@example.test" {
		t.Fatalf("userinfo: %v", err)
	}
	if active, _ := introspect(tok.AccessToken, "api"); active {
		t.Error("a live token of shop, by the client api: active")
	}
	if active, _ := introspect(tok.Extra("id_token").(string), "shop"); active {
		t.Error("an ID token: active")
	}
	if st, body := o.providerPost(t, "/revoke", "shop", url.Values{"token": {tok.AccessToken}, "token_type_hint": {"access_token"}}); st != 200 {
		t.Fatalf("revoke: %d %s", st, body)
	}
	inactive("a revoked token", tok)

	tok = newToken()
	var d struct {
		EndSession string `json:"end_session_endpoint"`
	}
	if err := o.op.Claims(&d); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond) // a logout after the token's issue time
	q := url.Values{"id_token_hint": {tok.Extra("id_token").(string)}, "client_id": {"shop"}, "post_logout_redirect_uri": {rpRedirect + "/bye"}}
	if loc := o.redirect(t, d.EndSession+"?"+q.Encode()); loc.Path != "/callback/bye" {
		t.Fatalf("logout sent the user agent to %s", loc)
	}
	inactive("a token issued before a logout", tok)

	tok = newToken()
	ahead.Store(int64(2 * time.Hour)) // past the tokens' lifetime
	inactive("an expired token", tok)
}

func newJTI() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// TestPagePolicies: the API's answers, errors included, carry a policy that allows
// nothing and nosniff; the login pages their own policy; the OpenID Provider's
// answers the framing rule only (its form_post page needs a form and a script).
func TestPagePolicies(t *testing.T) {
	o := newOIDCEnv(t)
	for _, tc := range []struct {
		name, url string
		want      func(csp string) bool
	}{
		{"api", o.h.url + "/v1/bundle", func(csp string) bool { return csp == apiPolicy }},
		{"api-error", o.h.url + "/v1/no-such-thing", func(csp string) bool { return csp == apiPolicy }},
		{"login-page", o.h.url + "/login", func(csp string) bool { return csp != apiPolicy && strings.Contains(csp, "frame-ancestors 'none'") }},
		{"provider", o.issuer + "/.well-known/openid-configuration", func(csp string) bool { return csp == oidcPolicy }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := o.h.http.Get(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if csp := resp.Header.Get("Content-Security-Policy"); !tc.want(csp) || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Fatalf("%d: Content-Security-Policy %q, X-Content-Type-Options %q", resp.StatusCode, csp, resp.Header.Get("X-Content-Type-Options"))
			}
		})
	}
}
