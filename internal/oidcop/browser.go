package oidcop

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/polyroot/polyroot/internal/httpx"
)

// An auth request belongs to the browser that made it, and lives there: the
// authorization endpoint puts the whole request in a cookie, sealed with AES-256-GCM
// under a key derived from the signing key (so every replica opens it and the store
// holds nothing until a login completes the request: an authorization request from
// anyone on the Internet writes nothing, and floods of them cannot fill the
// database). Completing the login (CompleteLogin) and the callback that issues the
// code both need the cookie. Without this, whoever starts an authorization at a
// relying party could send its login page link to someone else, wait for them to
// enter their PIN, and call the callback to receive a code for their account, with
// the relying party's state and PKCE verifier in the starter's own session. Only the
// starting browser ever holds the cookie: the value is only sent in the authorization
// endpoint's answer to that browser.

// A browser holds its pending auth requests in requestSlots cookies of fixed names,
// browserCookiePrefix and the slot's number (over https with the __Host- prefix, which
// pins them to this host, path / and Secure), whose value is the request's ID, a dot,
// and the sealed request. A new request takes a free slot, else the oldest request's;
// one whose request carries no cookies (a cross-site POST) takes a random slot. So
// however a site sends the browser through the authorization endpoint, it never holds
// more than requestSlots of them, each at most about 2 KB (maxSealedRequest of JSON,
// whose state and nonce are bounded too): far below the 16 KiB of headers the server
// reads, so that no "cookie bomb" can lock the browser out. The price: a seventh
// sign-in in progress in one browser ends the oldest.
const (
	browserCookiePrefix = "polyroot-authreq-"
	requestSlots        = 6
	maxSealedRequest    = 1536
	maxState, maxNonce  = 512, 256
)

// requestCookieAD is the additional data of a sealed auth request, before its ID.
const requestCookieAD = "polyroot oidcop auth request "

var (
	errOtherBrowser = httpx.Errorf(http.StatusForbidden, "other_browser",
		"this sign-in was started in another browser or has expired: start again from the application")
	errNotLoggedIn = httpx.Errorf(http.StatusConflict, "not_logged_in",
		"this sign-in is not complete: log in on the sign-in page first")
)

// createdRequestKey is the context key under which Handler passes the authorization
// endpoint a slot for the auth request it creates (storage.CreateAuthRequest).
type createdRequestKey struct{}

// browserRequestKey is the context key under which Handler passes the library the
// request it serves, so that storage can read the auth request's cookie whatever
// route led there.
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

// A requestSealer seals auth requests into their cookies and opens them.
type requestSealer struct {
	aead          cipher.AEAD
	secureCookies bool
	ttl           time.Duration
	now           func() time.Time
}

func newRequestSealer(key [32]byte, secureCookies bool, ttl time.Duration, now func() time.Time) *requestSealer {
	block, err := aes.NewCipher(key[:])
	if err != nil {
		panic(err) // a 32-byte key
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return &requestSealer{aead: aead, secureCookies: secureCookies, ttl: ttl, now: now}
}

func (s *requestSealer) cookieName(slot int) string {
	name := browserCookiePrefix + strconv.Itoa(slot)
	if s.secureCookies {
		return "__Host-" + name
	}
	return name
}

// seal returns the cookie value of a, or an error if a is too large for a cookie.
func (s *requestSealer) seal(a *authRequest) (string, error) {
	b, _ := json.Marshal(a)
	if len(b) > maxSealedRequest {
		return "", oidc.ErrInvalidRequest().WithDescription("the authorization request is too large (state, nonce or scope)")
	}
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(b)+s.aead.Overhead())
	rand.Read(nonce)
	return a.ID + "." + base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce, b, []byte(requestCookieAD+a.ID))), nil
}

// open returns auth request id from r's cookies, and its slot: false without one that
// this provider sealed for id, or once the request is older than its lifetime.
func (s *requestSealer) open(r *http.Request, id string) (*authRequest, int, bool) {
	if r == nil || len(id) != 32 { // newID's 16 bytes of hex
		return nil, 0, false
	}
	// Every value of every slot: a cookie of the same name set elsewhere (another
	// path, plain http) must not hide the request's own.
	for slot := range requestSlots {
		for _, c := range r.CookiesNamed(s.cookieName(slot)) {
			if value, found := strings.CutPrefix(c.Value, id+"."); found {
				if a, ok := s.openValue(id, value); ok {
					return a, slot, true
				}
			}
		}
	}
	return nil, 0, false
}

// openValue opens the sealed request id (a cookie value past the ID and its dot).
func (s *requestSealer) openValue(id, value string) (*authRequest, bool) {
	if len(value) > base64.RawURLEncoding.EncodedLen(s.aead.NonceSize()+maxSealedRequest+s.aead.Overhead()) {
		return nil, false
	}
	sealed, err := base64.RawURLEncoding.Strict().DecodeString(value)
	if err != nil || len(sealed) < s.aead.NonceSize() {
		return nil, false
	}
	n := s.aead.NonceSize()
	b, err := s.aead.Open(nil, sealed[:n], sealed[n:], []byte(requestCookieAD+id))
	if err != nil {
		return nil, false
	}
	var a authRequest
	now := s.now()
	if json.Unmarshal(b, &a) != nil || a.ID != id || now.Before(a.Created.Add(-time.Minute)) || !now.Before(a.Created.Add(s.ttl)) {
		return nil, false
	}
	return &a, true
}

// freeSlot is the slot a new auth request of r's browser takes: the first without a
// pending request, else the oldest request's; a random one when r carries none of the
// cookies (they may hold requests it does not show: a cross-site POST carries none).
func (s *requestSealer) freeSlot(r *http.Request) int {
	free, oldest, oldestAt, sent := -1, 0, time.Time{}, false
	for slot := range requestSlots {
		// A slot holds a request if any of its values (see open) opens: the newest.
		var held *authRequest
		for _, c := range r.CookiesNamed(s.cookieName(slot)) {
			sent = true
			id, value, _ := strings.Cut(c.Value, ".")
			if a, ok := s.openValue(id, value); ok && (held == nil || a.Created.After(held.Created)) {
				held = a
			}
		}
		switch {
		case held == nil && free < 0:
			free = slot
		case held != nil && (oldestAt.IsZero() || held.Created.Before(oldestAt)):
			oldest, oldestAt = slot, held.Created
		}
	}
	switch {
	case !sent:
		var b [1]byte
		rand.Read(b[:])
		return int(b[0]) % requestSlots
	case free >= 0:
		return free
	}
	return oldest
}

// cookie is the cookie of slot with value, living maxAge seconds (deleted when
// maxAge < 0).
func (s *requestSealer) cookie(slot int, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: s.cookieName(slot), Value: value, Path: "/",
		MaxAge: maxAge, HttpOnly: true, Secure: s.secureCookies, SameSite: http.SameSiteLaxMode}
}

// authorize serves the authorization endpoint, setting the cookie of the auth request
// that the library creates, if it creates one, on the answer.
func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	var created createdRequest
	bw := &bindingWriter{ResponseWriter: w, bind: func(h http.Header) {
		if created.id == "" {
			return
		}
		h.Add("Set-Cookie", p.sealer.cookie(p.sealer.freeSlot(r), created.sealed, int(p.cfg.AuthRequestTTL.Seconds())).String())
	}}
	p.op.ServeHTTP(bw, r.WithContext(context.WithValue(r.Context(), createdRequestKey{}, &created)))
}

// A createdRequest is an auth request that storage.CreateAuthRequest created, for the
// authorization endpoint to set its cookie.
type createdRequest struct{ id, sealed string }

// callback serves the library's callback, which issues the code, only to the browser
// that started the auth request and once a login completed it, and deletes the
// request's cookie there: the request is over. A callback before the login is refused
// here, so that whoever sends the browser there cannot end the sign-in, nor make the
// library send the relying party an error. (storage.SaveAuthCode checks the cookie
// again, whatever the route: this is for a clear answer.)
func (p *Provider) callback(w http.ResponseWriter, r *http.Request) {
	// The ID as the library reads it (the form's, query or body), not another one.
	id, err := op.ParseAuthorizeCallbackRequest(r)
	_, slot, ok := p.sealer.open(r, id)
	if err != nil || !ok {
		httpx.WriteError(w, r, p.cfg.Logger, errOtherBrowser)
		return
	}
	if a, err := p.storage.authRequest(r, id); err != nil || !a.Done() {
		httpx.WriteError(w, r, p.cfg.Logger, errNotLoggedIn)
		return
	}
	p.op.ServeHTTP(&bindingWriter{ResponseWriter: w, bind: func(h http.Header) {
		h.Add("Set-Cookie", p.sealer.cookie(slot, "", -1).String()) // the request is over
	}}, r)
}

// noteCreated hands a created auth request, sealed, to the slot authorize put in ctx,
// if any.
func noteCreated(ctx context.Context, id, sealed string) {
	if slot, ok := ctx.Value(createdRequestKey{}).(*createdRequest); ok {
		*slot = createdRequest{id, sealed}
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
