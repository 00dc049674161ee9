// Package webui serves the browser login of issue 15 under /login/: a PIN pad page
// (GET /login), an enrolment page (GET /login/enrol), their script and style
// (GET /login/static/…) and the polyroot client compiled to WebAssembly
// (GET /login/wasm/polyroot.wasm and wasm_exec.js, read from Config.WASMDir).
//
// The page runs the whole protocol in the browser through the WebAssembly client
// (globalThis.polyroot): enrolment against each DTA, the mutual login with the auth
// server, permit renewal. This package only serves it, with a strict
// Content-Security-Policy (no inline script or style, connect-src limited to the page's
// origin and the domain's DTAs), Subresource Integrity (sha384) on every script, the
// stylesheet and the WebAssembly file, and no caching of the HTML.
//
// The handler expects the full request path (mount it on "/login" and "/login/" of the
// server's mux, without stripping the prefix). After a login that the OpenID Provider
// asked for (?authRequestID=…), the page posts the access token to /login/complete,
// which the OpenID Provider serves.
package webui

import (
	"bytes"
	"crypto/sha512"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

//go:embed assets
var assets embed.FS

// WASMFile and WASMExecFile are the files New serves from Config.WASMDir: the client
// built with GOOS=js GOARCH=wasm ./cmd/polyroot-wasm, and Go's JavaScript support for
// it ($(go env GOROOT)/lib/wasm/wasm_exec.js of the Go that built it).
const (
	WASMFile     = "polyroot.wasm"
	WASMExecFile = "wasm_exec.js"
)

// CompletePath is where the page posts {"auth_request_id", "access_token"} after a
// login that the OpenID Provider asked for; it answers {"redirect": url}.
const CompletePath = "/login/complete"

// A Config configures the login pages.
type Config struct {
	// WASMDir is the directory that holds WASMFile and WASMExecFile (e.g. bin/ after
	// `make build`). When either is missing the pages say that the browser client is
	// not installed on this server; New does not fail.
	WASMDir string
	// DTAOrigins are the origins (scheme://host[:port]) of the domain's DTAs, which the
	// page enrols against cross-origin: they are added to the CSP's connect-src.
	// BundleOrigins makes them from the DTA URLs of the trust bundle.
	DTAOrigins []string
	// Domain is the domain's name, shown on the pages (optional).
	Domain string
	// MinPINLength is the least PIN length the PIN pad accepts at enrolment (the
	// bundle's PIN policy; default 4).
	MinPINLength int
	// Logger hears of a missing WebAssembly build (once) and of template failures
	// (default: discard).
	Logger *slog.Logger
	// Requester, when set, names the site that the OpenID Provider's auth request
	// (the login page's authRequestID) came from and returns to, for the page to show
	// (oidcop.Provider.Requester).
	// It gets the page's request, whose cookie holds the auth request.
	Requester func(r *http.Request, authRequestID string) (string, bool)
}

// BundleOrigins returns the origins of the given DTA URLs, without repeats, for
// Config.DTAOrigins.
func BundleOrigins(dtaURLs []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, s := range dtaURLs {
		o, err := origin(s)
		if err != nil {
			return nil, err
		}
		if !seen[o] {
			seen[o] = true
			out = append(out, o)
		}
	}
	return out, nil
}

// origin returns the scheme://host[:port] of an http(s) URL.
func origin(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("webui: DTA origin %q: %v", s, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		strings.ContainsAny(u.Host, " ;,'\"") {
		return "", fmt.Errorf("webui: DTA origin %q is not an http(s) origin", s)
	}
	return u.Scheme + "://" + strings.ToLower(u.Host), nil
}

// An asset is one served file with its integrity value.
type asset struct {
	body        []byte
	contentType string
	Integrity   string // "sha384-…", for the integrity attribute
}

func newAsset(body []byte, contentType string) *asset {
	sum := sha512.Sum384(body)
	return &asset{body: body, contentType: contentType, Integrity: "sha384-" + base64.StdEncoding.EncodeToString(sum[:])}
}

// handler serves the login pages.
type handler struct {
	cfg    Config
	csp    string
	static map[string]*asset // by file name under /login/static/
	pages  *template.Template
	wasm   wasmFiles
}

// New returns the handler of the login pages. It fails on a malformed DTA origin; a
// missing WebAssembly build is not an error (see Config.WASMDir).
func New(cfg Config) (http.Handler, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MinPINLength <= 0 {
		cfg.MinPINLength = 4
	}
	dtas, err := BundleOrigins(cfg.DTAOrigins)
	if err != nil {
		return nil, err
	}
	connect := append([]string{"'self'"}, dtas...)
	h := &handler{cfg: cfg, static: map[string]*asset{}}
	h.csp = strings.Join([]string{
		"default-src 'none'",
		"script-src 'self' 'wasm-unsafe-eval'",
		"connect-src " + strings.Join(connect, " "),
		"style-src 'self'",
		"img-src 'self'",
		"form-action 'self'",
		"frame-ancestors 'none'",
		"base-uri 'none'",
	}, "; ")
	for name, ct := range map[string]string{
		"app.js":    "text/javascript; charset=utf-8",
		"store.js":  "text/javascript; charset=utf-8",
		"style.css": "text/css; charset=utf-8",
	} {
		b, err := assets.ReadFile("assets/static/" + name)
		if err != nil {
			return nil, fmt.Errorf("webui: %v", err)
		}
		h.static[name] = newAsset(b, ct)
	}
	tfs, err := fs.Sub(assets, "assets/templates")
	if err != nil {
		return nil, err
	}
	if h.pages, err = template.ParseFS(tfs, "*.html"); err != nil {
		return nil, fmt.Errorf("webui: templates: %v", err)
	}
	h.wasm.dir, h.wasm.log = cfg.WASMDir, cfg.Logger
	h.wasm.get() // read the build now if there is one, so its integrity is known from the start
	return h, nil
}

// wasmFiles reads the WebAssembly build once, when both files are there, and keeps it
// in memory: the bytes served are the bytes whose integrity the pages name, even if
// the files on disk change (a new build is served after a restart).
type wasmFiles struct {
	dir    string
	log    *slog.Logger
	mu     sync.Mutex
	wasm   *asset
	exec   *asset
	logged bool
}

// get returns the build, or nils when it is not (yet) installed.
func (w *wasmFiles) get() (wasm, exec *asset) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.wasm != nil {
		return w.wasm, w.exec
	}
	var err error
	if w.dir == "" {
		err = errors.New("no WebAssembly directory is configured")
	} else {
		var wb, eb []byte
		if wb, err = os.ReadFile(filepath.Join(w.dir, WASMFile)); err == nil {
			if eb, err = os.ReadFile(filepath.Join(w.dir, WASMExecFile)); err == nil {
				w.wasm = newAsset(wb, "application/wasm")
				w.exec = newAsset(eb, "text/javascript; charset=utf-8")
				return w.wasm, w.exec
			}
		}
	}
	if !w.logged {
		w.logged = true
		w.log.Warn("webui: the browser client is not installed on this server; the login pages cannot log in until it is (make build writes bin/polyroot.wasm and bin/wasm_exec.js)",
			"dir", w.dir, "err", err)
	}
	return nil, nil
}

// hstsMaxAge is the Strict-Transport-Security policy: two years, the time browsers
// expect of a lasting policy, for this host alone (no includeSubDomains or preload:
// whether the operator's other hosts must use HTTPS is not the login pages' to say).
const hstsMaxAge = "max-age=63072000"

// securityHeaders are set on every answer; Strict-Transport-Security only on those
// served over TLS: over plain HTTP a browser ignores it (RFC 6797), and behind a proxy
// that terminates TLS it is the proxy's to send.
func (h *handler) securityHeaders(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	if r.TLS != nil {
		hd.Set("Strict-Transport-Security", hstsMaxAge)
	}
	hd.Set("Content-Security-Policy", h.csp)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Cross-Origin-Resource-Policy", "same-origin")
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.securityHeaders(w, r)
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p := r.URL.Path
	switch {
	case p == "/login" || p == "/login/":
		h.page(w, r, "login")
	case p == "/login/enrol":
		h.page(w, r, "enrol")
	case strings.HasPrefix(p, "/login/static/"):
		h.serveAsset(w, r, h.static[strings.TrimPrefix(p, "/login/static/")])
	case p == "/login/wasm/"+WASMFile:
		wasm, _ := h.wasm.get()
		h.serveAsset(w, r, wasm)
	case p == "/login/wasm/"+WASMExecFile:
		_, exec := h.wasm.get()
		h.serveAsset(w, r, exec)
	default:
		http.NotFound(w, r)
	}
}

// serveAsset serves a static file (404 for nil). It may be cached but is revalidated
// by its ETag, the integrity value, so that a page never meets a stale file.
func (h *handler) serveAsset(w http.ResponseWriter, r *http.Request, a *asset) {
	if a == nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", a.contentType)
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("ETag", `"`+a.Integrity+`"`)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

// errorScreen is one error kind of the client's API (Error.kind in the page) and its
// screen (id "screen-" + the kind with dashes; "internal" has "screen-error").
type errorScreen struct {
	Kind, ID, Title, Text string
	Retry                 bool // the screen offers to try again
}

var errorScreens = []errorScreen{
	{"wrong_pin", "screen-wrong-pin", "Wrong PIN", "That PIN is not right.", true},
	{"blocked", "screen-blocked", "Identity blocked", "Too many wrong PINs: this identity is blocked. Ask your administrator to unblock it.", false},
	{"revoked", "screen-revoked", "Identity revoked", "Your administrator has revoked this identity. Ask for a new enrolment code.", false},
	{"not_authentic", "screen-not-authentic", "Server not authentic", "This server could not prove that it holds the domain's key, so it is not the server it claims to be. You were not logged in. Do not try again; tell your administrator.", false},
	{"interception", "screen-interception", "Possible interception", "Something between this browser and the server altered the exchange. You were not logged in. Tell your administrator.", false},
	{"not_enrolled", "screen-not-enrolled", "Not enrolled", "This browser holds no identity for this server. Open the enrolment link your administrator gave you.", false},
	{"permit_expired", "screen-permit-expired", "Permit expired", "This identity has no time permit for today. Ask your administrator for a new enrolment code.", false},
	{"identity_expired", "screen-identity-expired", "Identity expired", "This identity has expired. Ask your administrator for a new enrolment code.", false},
	{"bad_code", "screen-bad-code", "Code not accepted", "The enrolment code is wrong, used already or expired.", true},
	{"wrong_server", "screen-wrong-server", "Wrong server", "This server belongs to another domain than the one this browser is enrolled with.", false},
	{"bundle_mismatch", "screen-bundle-mismatch", "Trust bundle mismatch", "The domain's trust bundle does not have the fingerprint your enrolment link names. Do not enrol here; tell your administrator.", false},
	{"dta_unreachable", "screen-dta-unreachable", "A trust authority is unreachable", "One of the domain's trust authorities did not answer. Try again in a while.", true},
	{"network", "screen-network", "Network error", "The server could not be reached. Check your connection and try again.", true},
	{"internal", "screen-error", "Something went wrong", "The login could not be completed.", true},
}

// pageData is what the templates get.
type pageData struct {
	Page          string // "login" or "enrol"
	Domain        string
	MinPINLength  int
	Static        map[string]*asset
	WASM, Exec    *asset // nil when the client is not installed
	ErrorScreens  []errorScreen
	CompletePath  string
	Title         string
	WASMURL       string
	WASMExecURL   string
	StaticURLBase string
	Requester     string // the site asking for the login, if any
}

func (h *handler) page(w http.ResponseWriter, r *http.Request, name string) {
	wasm, exec := h.wasm.get()
	d := pageData{Page: name, Domain: h.cfg.Domain, MinPINLength: h.cfg.MinPINLength, Static: h.static,
		WASM: wasm, Exec: exec, ErrorScreens: errorScreens, CompletePath: CompletePath,
		WASMURL: "/login/wasm/" + WASMFile, WASMExecURL: "/login/wasm/" + WASMExecFile, StaticURLBase: "/login/static/"}
	d.Title = "Log in"
	if id := r.URL.Query().Get("authRequestID"); name == "login" && id != "" && h.cfg.Requester != nil {
		d.Requester, _ = h.cfg.Requester(r, id)
	}
	if name == "enrol" {
		d.Title = "Enrol"
	}
	var buf bytes.Buffer
	if err := h.pages.ExecuteTemplate(&buf, name+".html", d); err != nil {
		h.cfg.Logger.Error("webui: rendering a page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(buf.Bytes()))
}
