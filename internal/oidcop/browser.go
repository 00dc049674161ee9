package oidcop

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"

	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/polyroot/polyroot/internal/httpx"
)

// An auth request belongs to the browser that made it. The authorization endpoint
// sets a cookie for the request it creates, whose value is an HMAC of the request's
// ID under a key derived from the signing key (so every replica checks it and nothing
// is stored); completing the login (CompleteLogin) and the callback that issues the
// code both require it. Without this, whoever starts an authorization at a relying
// party could send its login page link to someone else, wait for them to enter their
// PIN, and call the callback to receive a code for their account, with the relying
// party's state and PKCE verifier in the starter's own session. Only the starting
// browser ever holds the cookie: the value is only sent in the authorization
// endpoint's answer to that browser.

// browserCookiePrefix names the cookie of one auth request (the ID follows); over
// https, with the __Host- prefix, which pins it to this host, path / and Secure.
const browserCookiePrefix = "polyroot-authreq-"

var errOtherBrowser = httpx.Errorf(http.StatusForbidden, "other_browser",
	"this sign-in was started in another browser or has expired: start again from the application")

// createdRequestKey is the context key under which Handler passes the authorization
// endpoint a slot for the ID of the auth request it creates (storage.CreateAuthRequest).
type createdRequestKey struct{}

// browserRequestKey is the context key under which Handler passes the library the
// request it serves, so that storage.SaveAuthCode can check the browser's cookie
// whatever route led there.
type browserRequestKey struct{}

// withBrowserRequest returns r with itself in its context (browserRequestKey).
func withBrowserRequest(r *http.Request) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), browserRequestKey{}, r))
}

// browserRequest returns the request that Handler put in ctx, or nil.
func browserRequest(ctx context.Context) *http.Request {
	r, _ := ctx.Value(browserRequestKey{}).(*http.Request)
	return r
}

func (p *Provider) browserCookieName(id string) string {
	if p.secureCookies {
		return "__Host-" + browserCookiePrefix + id
	}
	return browserCookiePrefix + id
}

func (p *Provider) browserCookieValue(id string) string {
	m := hmac.New(sha256.New, p.browserKey[:])
	m.Write([]byte(id))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// fromStartingBrowser reports whether r carries the cookie of auth request id.
func (p *Provider) fromStartingBrowser(r *http.Request, id string) bool {
	if r == nil || id == "" {
		return false
	}
	c, err := r.Cookie(p.browserCookieName(id))
	return err == nil && hmac.Equal([]byte(c.Value), []byte(p.browserCookieValue(id)))
}

// authorize serves the authorization endpoint, setting the cookie of the auth request
// that the library creates, if it creates one, on the answer.
func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	var created string
	bw := &bindingWriter{ResponseWriter: w, bind: func(h http.Header) {
		if created == "" {
			return
		}
		h.Add("Set-Cookie", p.browserCookie(created, int(p.cfg.AuthRequestTTL.Seconds())).String())
	}}
	p.op.ServeHTTP(bw, r.WithContext(context.WithValue(r.Context(), createdRequestKey{}, &created)))
}

// browserCookie is the cookie of auth request id, living maxAge seconds (deleted
// when maxAge < 0).
func (p *Provider) browserCookie(id string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: p.browserCookieName(id), Value: p.browserCookieValue(id), Path: "/",
		MaxAge: maxAge, HttpOnly: true, Secure: p.secureCookies, SameSite: http.SameSiteLaxMode}
}

// callback serves the library's callback, which issues the code, only to the browser
// that started the auth request, and deletes the request's cookie there: the request
// is over, and the cookies of finished requests would pile up in the browser for their
// lifetime. (storage.SaveAuthCode checks the cookie again, whatever the route: this is
// for a clear answer.)
func (p *Provider) callback(w http.ResponseWriter, r *http.Request) {
	// The ID as the library reads it (the form's, query or body), not another one.
	id, err := op.ParseAuthorizeCallbackRequest(r)
	if err != nil || !p.fromStartingBrowser(r, id) {
		httpx.WriteError(w, r, p.cfg.Logger, errOtherBrowser)
		return
	}
	p.op.ServeHTTP(&bindingWriter{ResponseWriter: w, bind: func(h http.Header) {
		h.Add("Set-Cookie", p.browserCookie(id, -1).String())
	}}, r)
}

// noteCreated records the ID of a created auth request in the slot authorize put in
// ctx, if any.
func noteCreated(ctx context.Context, id string) {
	if slot, ok := ctx.Value(createdRequestKey{}).(*string); ok {
		*slot = id
	}
}

// A bindingWriter adds headers (bind) just before the answer's header is written.
type bindingWriter struct {
	http.ResponseWriter
	bind  func(http.Header)
	wrote bool
}

func (w *bindingWriter) WriteHeader(code int) {
	if !w.wrote {
		w.wrote = true
		w.bind(w.Header())
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *bindingWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}
