package keystore

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	testToken    = "hvs.test-token-not-a-secret-but-treated-as-one"
	testRoleID   = "role-id-0123"
	testSecretID = "secret-id-4567-must-not-leak"
)

func TestVaultConfigValidate(t *testing.T) {
	base := VaultConfig{Address: "https://vault.example.com:8200", Path: "polyroot/dta-1", Token: testToken}
	with := func(f func(*VaultConfig)) VaultConfig {
		c := base
		f(&c)
		return c
	}
	approle := func(c *VaultConfig) { c.Token, c.RoleID, c.SecretID = "", testRoleID, testSecretID }
	cases := []struct {
		name    string
		cfg     VaultConfig
		wantErr string // substring; "" means valid
	}{
		{"ok/token", base, ""},
		{"ok/approle", with(approle), ""},
		{"ok/approle-custom-mount", with(func(c *VaultConfig) { approle(c); c.AppRoleMount = "approle-dta" }), ""},
		{"ok/http-loopback-ipv4", with(func(c *VaultConfig) { c.Address = "http://127.0.0.1:8200" }), ""},
		{"ok/http-loopback-ipv6", with(func(c *VaultConfig) { c.Address = "http://[::1]:8200" }), ""},
		{"ok/http-localhost", with(func(c *VaultConfig) { c.Address = "http://localhost:8200" }), ""},
		{"ok/trailing-slash", with(func(c *VaultConfig) { c.Address = "https://vault.example.com/" }), ""},
		{"ok/empty-path", with(func(c *VaultConfig) { c.Path = "" }), ""},
		{"ok/nested-mount", with(func(c *VaultConfig) { c.Mount = "kv/prod" }), ""},
		{"ok/namespace", with(func(c *VaultConfig) { c.Namespace = "team-a/polyroot" }), ""},
		{"ok/timeout", with(func(c *VaultConfig) { c.Timeout = time.Second }), ""},
		{"fail/no-address", with(func(c *VaultConfig) { c.Address = "" }), "address is required"},
		{"fail/not-a-url", with(func(c *VaultConfig) { c.Address = "https://vault.example.com:8200/%zz" }), "not a URL"},
		{"fail/scheme-ftp", with(func(c *VaultConfig) { c.Address = "ftp://vault.example.com" }), "scheme must be https"},
		{"fail/no-scheme", with(func(c *VaultConfig) { c.Address = "vault.example.com:8200" }), "scheme must be https"},
		{"fail/http-remote", with(func(c *VaultConfig) { c.Address = "http://vault.example.com:8200" }), "plain http"},
		{"fail/http-private-ip", with(func(c *VaultConfig) { c.Address = "http://10.0.0.5:8200" }), "plain http"},
		{"fail/http-unspecified", with(func(c *VaultConfig) { c.Address = "http://0.0.0.0:8200" }), "plain http"},
		{"fail/no-host", with(func(c *VaultConfig) { c.Address = "https://" }), "no host"},
		{"fail/userinfo", with(func(c *VaultConfig) { c.Address = "https://admin:" + testSecretID + "@vault.example.com" }), "user information"},
		{"fail/path-in-address", with(func(c *VaultConfig) { c.Address = "https://vault.example.com/v1" }), "scheme://host"},
		{"fail/query-in-address", with(func(c *VaultConfig) { c.Address = "https://vault.example.com/?x=1" }), "scheme://host"},
		{"fail/no-auth", with(func(c *VaultConfig) { c.Token = "" }), "no authentication"},
		{"fail/token-and-approle", with(func(c *VaultConfig) { c.RoleID, c.SecretID = testRoleID, testSecretID }), "not both"},
		{"fail/role-id-only", with(func(c *VaultConfig) { c.Token, c.RoleID = "", testRoleID }), "secret_id is missing"},
		{"fail/secret-id-only", with(func(c *VaultConfig) { c.Token, c.SecretID = "", testSecretID }), "role_id is missing"},
		{"fail/mount-leading-slash", with(func(c *VaultConfig) { c.Mount = "/secret" }), "mount"},
		{"fail/mount-dotdot", with(func(c *VaultConfig) { c.Mount = ".." }), "mount"},
		{"fail/path-trailing-slash", with(func(c *VaultConfig) { c.Path = "polyroot/" }), "path"},
		{"fail/path-double-slash", with(func(c *VaultConfig) { c.Path = "polyroot//dta-1" }), "path"},
		{"fail/path-dotdot", with(func(c *VaultConfig) { c.Path = "polyroot/../other" }), "path"},
		{"fail/path-space", with(func(c *VaultConfig) { c.Path = "poly root" }), "allowed characters"},
		{"fail/path-query", with(func(c *VaultConfig) { c.Path = "a?list=true" }), "allowed characters"},
		{"fail/approle-mount", with(func(c *VaultConfig) { approle(c); c.AppRoleMount = "app role" }), "approle mount"},
		{"fail/namespace", with(func(c *VaultConfig) { c.Namespace = "/ns" }), "namespace"},
		{"fail/negative-timeout", with(func(c *VaultConfig) { c.Timeout = -time.Second }), "timeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if strings.HasPrefix(tc.name, "ok/") {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate accepted it")
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q lacks %q", err, tc.wantErr)
			}
			assertNoLeak(t, err, []byte(testToken), []byte(testSecretID))
			// NewVault validates too, before anything else.
			if _, nerr := NewVault(context.Background(), tc.cfg); nerr == nil || nerr.Error() != err.Error() {
				t.Errorf("NewVault: %v, want %v", nerr, err)
			}
		})
	}
}

func TestVaultConfigStringHidesCredentials(t *testing.T) {
	for _, cfg := range []VaultConfig{
		{Address: "https://v:8200", Token: testToken},
		{Address: "https://v:8200", RoleID: testRoleID, SecretID: testSecretID},
	} {
		text := fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, &cfg)
		assertNoLeak(t, errors.New(text), []byte(testToken), []byte(testSecretID))
		if !strings.Contains(text, "https://v:8200") {
			t.Errorf("String %q does not show the address", text)
		}
	}
}

// fakeVault is a minimal stand-in for Vault's KV v2 HTTP API, for what a real dev
// server cannot easily show: TLS trust, malformed responses, ignored VAULT_* variables.
type fakeVault struct {
	secret []byte // the value behind .../present

	mu     sync.Mutex
	tokens []string // X-Vault-Token of each request
	writes []map[string]any
}

func (f *fakeVault) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.tokens = append(f.tokens, r.Header.Get("X-Vault-Token"))
	f.mu.Unlock()
	const prefix = "/v1/secret/data/polyroot/dta-1/"
	name, ok := strings.CutPrefix(r.URL.Path, prefix)
	if !ok {
		http.Error(w, `{"errors":["no handler for route"]}`, http.StatusNotFound)
		return
	}
	reply := func(code int, body string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		io.WriteString(w, body)
	}
	if name == "echo" { // a broken proxy that echoes the request in an HTML page
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, "<html><body>bad request: %s</body></html>", body)
		return
	}
	if r.Method == http.MethodPut || r.Method == http.MethodPost {
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			reply(http.StatusBadRequest, `{"errors":["bad json"]}`)
			return
		}
		f.mu.Lock()
		f.writes = append(f.writes, body)
		f.mu.Unlock()
		reply(http.StatusOK, `{"data":{"version":7,"created_time":"2026-01-01T00:00:00Z","deletion_time":"","destroyed":false}}`)
		return
	}
	b64 := base64.StdEncoding.EncodeToString(f.secret)
	meta := `"metadata":{"version":3,"created_time":"2026-01-01T00:00:00Z","deletion_time":"","destroyed":false}`
	switch name {
	case "present":
		reply(http.StatusOK, `{"data":{"data":{"value":"`+b64+`"},`+meta+`}}`)
	case "deleted":
		reply(http.StatusNotFound, `{"data":{"data":null,"metadata":{"version":2,"created_time":"2026-01-01T00:00:00Z","deletion_time":"2026-01-02T00:00:00Z","destroyed":false}}}`)
	case "absent":
		reply(http.StatusNotFound, `{"errors":[]}`)
	case "no-value":
		reply(http.StatusOK, `{"data":{"data":{"other":"`+b64+`"},`+meta+`}}`)
	case "not-base64":
		reply(http.StatusOK, `{"data":{"data":{"value":"`+string(f.secret)+`!"},`+meta+`}}`)
	case "wrong-type":
		reply(http.StatusOK, `{"data":{"data":{"value":["`+b64+`"]},`+meta+`}}`)
	case "data-not-object":
		reply(http.StatusOK, `{"data":{"data":"`+b64+`",`+meta+`}}`)
	case "kv1":
		reply(http.StatusOK, `{"data":{"value":"`+b64+`"}}`)
	case "forbidden":
		reply(http.StatusForbidden, `{"errors":["permission denied"]}`)
	default:
		reply(http.StatusNotFound, `{"errors":[]}`)
	}
}

// writeCAFile stores the certificate of a TLS test server as a PEM file.
func writeCAFile(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(path, pemBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestVaultAgainstFakeServer(t *testing.T) {
	ctx := context.Background()
	// A printable secret, so that it would be visible if an error echoed a response.
	fake := &fakeVault{secret: []byte("printable-master-share-0123456789")}
	srv := httptest.NewUnstartedServer(fake)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshake refused below
	srv.StartTLS()
	defer srv.Close()
	caFile := writeCAFile(t, srv)

	// The VAULT_* variables the Vault client library reads must change nothing.
	t.Setenv("VAULT_TOKEN", "env-token")
	t.Setenv("VAULT_SKIP_VERIFY", "true")
	t.Setenv("VAULT_CACERT", caFile)
	t.Setenv("VAULT_ADDR", "https://elsewhere.invalid:8200")
	t.Setenv("VAULT_NAMESPACE", "env-namespace")

	cfg := VaultConfig{Address: srv.URL, Path: "polyroot/dta-1", Token: testToken, CAFile: caFile}
	v, err := NewVault(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var _ Keystore = v

	got, err := v.Get(ctx, "present")
	if err != nil || !bytes.Equal(got, fake.secret) {
		t.Fatalf("Get(present) = %q, %v", got, err)
	}
	secret := []byte("a new master share \x00\xff")
	if err := v.Put(ctx, "rotated", secret); err != nil {
		t.Fatal(err)
	}
	fake.mu.Lock()
	last := fake.writes[len(fake.writes)-1]
	for _, tok := range fake.tokens {
		if tok != testToken {
			t.Errorf("request carried token %q, want the configured one", tok)
		}
	}
	fake.mu.Unlock()
	want := map[string]any{"data": map[string]any{"value": base64.StdEncoding.EncodeToString(secret)}}
	if fmt.Sprint(last) != fmt.Sprint(want) {
		t.Errorf("Put sent %v, want %v", last, want)
	}

	cases := []struct {
		name     string
		notFound bool
		wantErr  string
	}{
		{"absent", true, "secret/polyroot/dta-1/absent"},
		{"deleted", true, "deleted"},
		{"no-value", false, `no string field "value"`},
		{"not-base64", false, "base64"},
		{"wrong-type", false, `no string field "value"`},
		{"data-not-object", false, "malformed"},
		{"kv1", false, "not a KV version 2 secret"},
		{"forbidden", false, "permission denied"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := v.Get(ctx, tc.name)
			if err == nil || got != nil {
				t.Fatalf("Get = %q, %v; want an error", got, err)
			}
			if errors.Is(err, ErrNotFound) != tc.notFound {
				t.Errorf("errors.Is(%v, ErrNotFound) = %v", err, !tc.notFound)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q lacks %q", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), "keystore: vault read secret/polyroot/dta-1/"+tc.name) {
				t.Errorf("error %q does not say which secret", err)
			}
			assertNoLeak(t, err, fake.secret, []byte(testToken))
		})
	}

	// Without CAFile the server's certificate is not trusted — whatever
	// VAULT_SKIP_VERIFY and VAULT_CACERT say.
	noCA := cfg
	noCA.CAFile = ""
	v2, err := NewVault(ctx, noCA)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v2.Get(ctx, "present"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("Get without the CA: %v; want a certificate error", err)
	}

	// A CA file without a certificate is refused up front.
	bad := filepath.Join(t.TempDir(), "empty.pem")
	os.WriteFile(bad, []byte("nothing here"), 0o644)
	badCA := cfg
	badCA.CAFile = bad
	if _, err := NewVault(ctx, badCA); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Fatalf("NewVault with an empty CA file: %v", err)
	}

	// Names are checked before any request.
	for _, name := range []string{"", "..", "a/b", "../../sys/seal", "Upper"} {
		if _, err := v.Get(ctx, name); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Get(%q): %v, want ErrInvalidName", name, err)
		}
		if err := v.Put(ctx, name, secret); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Put(%q): %v, want ErrInvalidName", name, err)
		}
	}
	// A non-JSON error body is not quoted: it could echo what was sent.
	err = v.Put(ctx, "echo", secret)
	if err == nil || !strings.Contains(err.Error(), "HTTP 400") || !strings.Contains(err.Error(), "not shown") {
		t.Errorf("Put to an echoing proxy: %v", err)
	}
	assertNoLeak(t, err, secret)
	if err := v.Put(ctx, "empty", nil); err == nil {
		t.Error("Put of an empty secret accepted")
	}

	text := fmt.Sprintf("%v %+v %#v %s", v, v, v, v)
	assertNoLeak(t, errors.New(text), []byte(testToken))
}

// TestVaultPlainHTTPLoopback checks that http works on loopback (a local agent).
func TestVaultPlainHTTPLoopback(t *testing.T) {
	fake := &fakeVault{secret: []byte("s")}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	v, err := NewVault(context.Background(), VaultConfig{Address: srv.URL, Path: "polyroot/dta-1", Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := v.Get(context.Background(), "present"); err != nil || string(got) != "s" {
		t.Fatalf("Get = %q, %v", got, err)
	}
}
