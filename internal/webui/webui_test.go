package webui

import (
	"bytes"
	"crypto/sha512"
	"crypto/tls"
	"encoding/base64"

	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

const wantCSP = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; " +
	"connect-src 'self' http://127.0.0.1:7001 https://dta2.example.com; style-src 'self'; img-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// fakeBuild writes a stand-in WebAssembly build into a fresh directory.
func fakeBuild(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, WASMFile), []byte("\x00asm\x01\x00\x00\x00 fake module"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, WASMExecFile), []byte("globalThis.Go = class {};\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func newHandler(t *testing.T, dir string, log *slog.Logger) http.Handler {
	t.Helper()
	h, err := New(Config{WASMDir: dir, DTAOrigins: []string{"http://127.0.0.1:7001", "https://DTA2.example.com/", "http://127.0.0.1:7001/v1"},
		Domain: "example.test", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func get(t *testing.T, h http.Handler, method, target string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	return rec
}

func TestSecurityHeaders(t *testing.T) {
	h := newHandler(t, fakeBuild(t), nil)
	for _, tc := range []struct {
		method, path string
		status       int
		ctype        string
	}{
		{"GET", "/login", 200, "text/html; charset=utf-8"},
		{"GET", "/login/", 200, "text/html; charset=utf-8"},
		{"GET", "/login?authRequestID=abc", 200, "text/html; charset=utf-8"},
		{"HEAD", "/login/enrol", 200, "text/html; charset=utf-8"},
		{"GET", "/login/enrol", 200, "text/html; charset=utf-8"},
		{"GET", "/login/static/app.js", 200, "text/javascript; charset=utf-8"},
		{"GET", "/login/static/store.js", 200, "text/javascript; charset=utf-8"},
		{"GET", "/login/static/style.css", 200, "text/css; charset=utf-8"},
		{"GET", "/login/wasm/polyroot.wasm", 200, "application/wasm"},
		{"GET", "/login/wasm/wasm_exec.js", 200, "text/javascript; charset=utf-8"},
		{"GET", "/login/nope", 404, ""},
		{"GET", "/login/static/", 404, ""},
		{"GET", "/login/static/../webui.go", 404, ""},
		{"GET", "/login/wasm/other.wasm", 404, ""},
		{"GET", "/elsewhere", 404, ""},
		{"POST", "/login", 405, ""},
		{"PUT", "/login/static/app.js", 405, ""},
		{"DELETE", "/login/enrol", 405, ""},
		{"OPTIONS", "/login", 405, ""},
	} {
		rec := get(t, h, tc.method, tc.path)
		hd := rec.Header()
		if rec.Code != tc.status {
			t.Errorf("%s %s: status %d, want %d", tc.method, tc.path, rec.Code, tc.status)
		}
		if got := hd.Get("Content-Security-Policy"); got != wantCSP {
			t.Errorf("%s %s: CSP\n%s\nwant\n%s", tc.method, tc.path, got, wantCSP)
		}
		if hd.Get("X-Content-Type-Options") != "nosniff" || hd.Get("Referrer-Policy") != "no-referrer" || hd.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s %s: headers %v", tc.method, tc.path, hd)
		}
		if tc.ctype != "" && hd.Get("Content-Type") != tc.ctype {
			t.Errorf("%s %s: Content-Type %q, want %q", tc.method, tc.path, hd.Get("Content-Type"), tc.ctype)
		}
		if strings.HasPrefix(tc.ctype, "text/html") && hd.Get("Cache-Control") != "no-store" {
			t.Errorf("%s %s: Cache-Control %q, want no-store", tc.method, tc.path, hd.Get("Cache-Control"))
		}
		if tc.status == 405 && hd.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s %s: Allow %q", tc.method, tc.path, hd.Get("Allow"))
		}
		if tc.method == "HEAD" && rec.Body.Len() != 0 {
			t.Errorf("HEAD %s has a body", tc.path)
		}
	}
}

func TestBadDTAOrigin(t *testing.T) {
	for _, o := range []string{"ftp://x", "127.0.0.1:7001", "http://", "http://a b", "http://x;script-src *", "http://u@x"} {
		if _, err := New(Config{DTAOrigins: []string{o}}); err == nil {
			t.Errorf("New accepts the DTA origin %q", o)
		}
	}
	got, err := BundleOrigins([]string{"http://127.0.0.1:1/a", "http://127.0.0.1:1/b", "https://d.example/"})
	if err != nil || strings.Join(got, " ") != "http://127.0.0.1:1 https://d.example" {
		t.Fatalf("BundleOrigins = %v, %v", got, err)
	}
}

// resources returns the src/href and integrity of every script and stylesheet tag of a
// page, the page's meta tags, and whether it has inline script or style.
func resources(t *testing.T, page []byte) (refs map[string]string, metas map[string]string, inline []string) {
	t.Helper()
	doc, err := html.Parse(bytes.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	refs, metas = map[string]string{}, map[string]string{}
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			a := map[string]string{}
			for _, at := range n.Attr {
				a[at.Key] = at.Val
				if at.Key == "style" || strings.HasPrefix(at.Key, "on") {
					inline = append(inline, n.Data+" "+at.Key)
				}
				if strings.HasPrefix(strings.TrimSpace(strings.ToLower(at.Val)), "javascript:") {
					inline = append(inline, n.Data+" "+at.Key+"=javascript:")
				}
			}
			switch n.Data {
			case "script":
				if a["src"] == "" {
					inline = append(inline, "script without src")
				}
				refs[a["src"]] = a["integrity"]
			case "link":
				if a["rel"] == "stylesheet" {
					refs[a["href"]] = a["integrity"]
				}
			case "style":
				inline = append(inline, "style element")
			case "meta":
				if a["name"] != "" {
					metas[a["name"]] = a["content"]
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return refs, metas, inline
}

func sri(b []byte) string {
	sum := sha512.Sum384(b)
	return "sha384-" + base64.StdEncoding.EncodeToString(sum[:])
}

func TestSRIMatchesServedBytes(t *testing.T) {
	dir := fakeBuild(t)
	h := newHandler(t, dir, nil)
	for _, p := range []string{"/login", "/login/enrol"} {
		rec := get(t, h, "GET", p)
		refs, metas, inline := resources(t, rec.Body.Bytes())
		if len(inline) > 0 {
			t.Errorf("%s has inline script or style: %v", p, inline)
		}
		want := []string{"/login/static/style.css", "/login/static/store.js", "/login/wasm/wasm_exec.js", "/login/static/app.js"}
		if len(refs) != len(want) {
			t.Errorf("%s: scripts and stylesheets %v, want %v", p, refs, want)
		}
		for _, src := range want {
			integ, ok := refs[src]
			if !ok {
				t.Errorf("%s does not load %s", p, src)
				continue
			}
			body := get(t, h, "GET", src).Body.Bytes()
			if integ != sri(body) {
				t.Errorf("%s: %s integrity %q, served bytes hash to %q", p, src, integ, sri(body))
			}
		}
		if metas["polyroot-wasm-url"] != "/login/wasm/polyroot.wasm" {
			t.Errorf("%s: wasm URL meta %q", p, metas["polyroot-wasm-url"])
		}
		wasm := get(t, h, "GET", "/login/wasm/polyroot.wasm").Body.Bytes()
		onDisk, _ := os.ReadFile(filepath.Join(dir, WASMFile))
		if !bytes.Equal(wasm, onDisk) || metas["polyroot-wasm-integrity"] != sri(wasm) {
			t.Errorf("%s: wasm integrity meta %q, served bytes hash to %q", p, metas["polyroot-wasm-integrity"], sri(wasm))
		}
	}
	// The build is read once: a file changed on disk does not change what is served
	// (nor, then, the integrity the page names).
	os.WriteFile(filepath.Join(dir, WASMFile), []byte("changed"), 0o644)
	if b := get(t, h, "GET", "/login/wasm/polyroot.wasm").Body.String(); b == "changed" {
		t.Error("the served wasm changed with the file on disk")
	}
}

func TestRevalidation(t *testing.T) {
	h := newHandler(t, fakeBuild(t), nil)
	rec := get(t, h, "GET", "/login/static/app.js")
	etag := rec.Header().Get("ETag")
	if etag == "" || rec.Header().Get("Cache-Control") != "no-cache" {
		t.Fatalf("app.js: ETag %q Cache-Control %q", etag, rec.Header().Get("Cache-Control"))
	}
	req := httptest.NewRequest("GET", "/login/static/app.js", nil)
	req.Header.Set("If-None-Match", etag)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotModified {
		t.Fatalf("If-None-Match: %d", rec.Code)
	}
}

func TestMissingWASM(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	for _, dir := range []string{filepath.Join(t.TempDir(), "absent"), "", t.TempDir()} {
		logs.Reset()
		h := newHandler(t, dir, log)
		for _, p := range []string{"/login", "/login/enrol", "/login"} {
			rec := get(t, h, "GET", p)
			if rec.Code != 200 {
				t.Fatalf("dir %q: %s: %d", dir, p, rec.Code)
			}
			body := rec.Body.String()
			if !strings.Contains(body, "The browser client is not installed on this server") {
				t.Errorf("dir %q: %s does not say the client is not installed", dir, p)
			}
			refs, metas, _ := resources(t, rec.Body.Bytes())
			if _, ok := refs["/login/wasm/wasm_exec.js"]; ok || metas["polyroot-wasm-url"] != "" {
				t.Errorf("dir %q: %s loads a client that is not there", dir, p)
			}
		}
		for _, p := range []string{"/login/wasm/polyroot.wasm", "/login/wasm/wasm_exec.js"} {
			if rec := get(t, h, "GET", p); rec.Code != 404 {
				t.Errorf("dir %q: %s: %d, want 404", dir, p, rec.Code)
			}
		}
		if n := strings.Count(logs.String(), "not installed"); n != 1 {
			t.Errorf("dir %q: the missing client is logged %d times, want once:\n%s", dir, n, logs.String())
		}
	}
	// A build installed after the start is picked up.
	dir := t.TempDir()
	h := newHandler(t, dir, log)
	b := fakeBuild(t)
	for _, f := range []string{WASMFile, WASMExecFile} {
		data, _ := os.ReadFile(filepath.Join(b, f))
		os.WriteFile(filepath.Join(dir, f), data, 0o644)
	}
	_, metas, _ := resources(t, get(t, h, "GET", "/login").Body.Bytes())
	if metas["polyroot-wasm-integrity"] == "" {
		t.Error("a build installed after New is not served")
	}
}

// TestScreens checks that every error kind of the client's API has its screen, with
// the id the page and the browser tests use, and that the PIN pad has its controls.
func TestScreens(t *testing.T) {
	h := newHandler(t, fakeBuild(t), nil)
	login := get(t, h, "GET", "/login").Body.String()
	enrol := get(t, h, "GET", "/login/enrol").Body.String()
	for _, kind := range []string{"wrong_pin", "blocked", "revoked", "not_authentic", "interception", "not_enrolled",
		"permit_expired", "identity_expired", "bad_code", "wrong_server", "bundle_mismatch", "dta_unreachable", "network", "internal"} {
		id := "screen-" + strings.ReplaceAll(kind, "_", "-")
		if kind == "internal" {
			id = "screen-error"
		}
		for name, page := range map[string]string{"login": login, "enrol": enrol} {
			if !strings.Contains(page, `id="`+id+`" class="error" data-kind="`+kind+`"`) {
				t.Errorf("%s page: no screen %s for %s", name, id, kind)
			}
		}
	}
	for _, id := range []string{"screen-pin", "screen-logged-in", "pinpad", "pin-display", "pad-submit", "pad-back", "pad-clear", "tries-left", `role="status"`} {
		if !strings.Contains(login, id) {
			t.Errorf("login page: no %s", id)
		}
	}
	for _, id := range []string{"screen-code", "screen-new-pin", "screen-enrolled", "code-form", "pinpad"} {
		if !strings.Contains(enrol, id) {
			t.Errorf("enrol page: no %s", id)
		}
	}
	for d := 0; d <= 9; d++ {
		if !strings.Contains(login, `data-digit="`+string(rune('0'+d))+`" aria-label=`) {
			t.Errorf("login page: no key %d with a label", d)
		}
	}
	if strings.Contains(login, "<input") {
		t.Error("the login page has an input element (the PIN must not be in the DOM)")
	}
}

// TestRequester: the login page of an OpenID Provider's request names the site it
// returns to, escaped; other pages and unknown requests name none.
func TestRequester(t *testing.T) {
	h, err := New(Config{WASMDir: fakeBuild(t), Requester: func(_ *http.Request, id string) (string, bool) {
		switch id {
		case "shop":
			return "shop.example", true
		case "evil":
			return `<script>x</script>.example`, true
		}
		return "", false
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, target, want, not string }{
		{"ok/named", "/login?authRequestID=shop", "for <strong>shop.example</strong>", ""},
		{"ok/escaped", "/login?authRequestID=evil", "&lt;script&gt;x&lt;/script&gt;.example", "<script>x"},
		{"ok/unknown-request", "/login?authRequestID=nope", "", `class="requester"`},
		{"ok/no-request", "/login", "", `class="requester"`},
		{"ok/enrol-page", "/login/enrol?authRequestID=shop", "", "shop.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := get(t, h, "GET", tc.target).Body.String()
			if tc.want != "" && !strings.Contains(body, tc.want) {
				t.Errorf("the page does not contain %q", tc.want)
			}
			if tc.not != "" && strings.Contains(body, tc.not) {
				t.Errorf("the page contains %q", tc.not)
			}
		})
	}
}

// TestStrictTransportSecurity: every answer over TLS, whatever its status, carries
// Strict-Transport-Security for two years and this host alone; none over plain HTTP.
func TestStrictTransportSecurity(t *testing.T) {
	h := newHandler(t, fakeBuild(t), nil)
	for _, tc := range []struct {
		name, method, path string
		tls                bool
		want               string
	}{
		{"tls/page", "GET", "/login", true, "max-age=63072000"},
		{"tls/asset", "GET", "/login/static/app.js", true, "max-age=63072000"},
		{"tls/not-found", "GET", "/login/nope", true, "max-age=63072000"},
		{"tls/method-not-allowed", "POST", "/login", true, "max-age=63072000"},
		{"plain/page", "GET", "/login", false, ""},
		{"plain/not-found", "GET", "/login/nope", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, tc.path, nil)
			if tc.tls {
				r.TLS = &tls.ConnectionState{}
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if got := rec.Header().Values("Strict-Transport-Security"); strings.Join(got, ", ") != tc.want || len(got) > 1 {
				t.Fatalf("Strict-Transport-Security %q, want %q", got, tc.want)
			}
		})
	}
}
