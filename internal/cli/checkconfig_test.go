//go:build unix

package cli

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDTACheckConfig: dta serve --check-config checks the settings against the files
// they name (exit 1 and every problem listed), and dta serve names a taken data
// directory or port before it unlocks the keystore.
func TestDTACheckConfig(t *testing.T) {
	clearEnv(t)
	t.Setenv(envPassphrase, "correct horse battery staple")
	t.Setenv(envScryptLogN, "10")
	d := setupDomain(t)
	base := []string{"dta", "serve", "--config", d.configs[0], "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"}
	write := func(name, data string, mode os.FileMode) string {
		p := filepath.Join(d.dir, name)
		if err := os.WriteFile(p, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bundleRaw, _ := os.ReadFile(d.bundle)
	tampered := write("tampered.json", strings.Replace(string(bundleRaw), "127.0.0.1:8441", "127.0.0.1:9441", 1), 0o644)
	emptyKeys := filepath.Join(d.dir, "empty-keys")
	if err := os.Mkdir(emptyKeys, 0o700); err != nil {
		t.Fatal(err)
	}
	openKeys := filepath.Join(d.dir, "open-keys")
	if err := os.Mkdir(openKeys, 0o755); err != nil {
		t.Fatal(err)
	}
	notDir := write("not-a-dir", "", 0o600)

	for _, tc := range []struct {
		name    string
		args    []string
		code    int
		wantErr []string
	}{
		{"ok/checks-out", nil, 0, []string{"the settings check out: DTA 1 of " + flowDomain + " in the trust bundle " + d.bundle + " (fingerprint " + d.fingerprint + ")",
			"file keystore", "holds master-share, signing-key", "data directory"}},
		{"fail/index-not-in-bundle", []string{"--index", "4"}, 1, []string{"1 problem: serve would not start", "lists DTA 1, 2, 3, not DTA 4"}},
		{"fail/bundle-missing", []string{"--bundle", filepath.Join(d.dir, "none.json")}, 1, []string{"none.json: no such file or directory"}},
		{"fail/bundle-tampered", []string{"--bundle", tampered}, 1, []string{"registrar signature does not verify"}},
		{"fail/keystore-without-keys", []string{"--keystore-dir", emptyKeys}, 1,
			[]string{`the file keystore ` + emptyKeys + ` holds no "master-share" or "signing-key": create them with polyroot dta init`}},
		{"fail/keystore-open-to-others", []string{"--keystore-dir", openKeys}, 1, []string{"has mode 0755: the group or others can access it"}},
		{"fail/keystore-missing", []string{"--keystore-dir", filepath.Join(d.dir, "nokeys")}, 1, []string{"the file keystore " + filepath.Join(d.dir, "nokeys")}},
		{"fail/data-dir-is-a-file", []string{"--data-dir", notDir}, 1, []string{"the data directory " + notDir + " is not a directory"}},
		{"fail/tls-files", []string{"--tls-cert", "none.crt", "--tls-key", "none.key"}, 1, []string{"TLS certificate none.crt with key none.key"}},
		{"fail/every-problem-listed", []string{"--index", "4", "--tls-cert", "none.crt", "--tls-key", "none.key", "--data-dir", notDir}, 1,
			[]string{"3 problems", "not DTA 4", "TLS certificate", "is not a directory"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := run(append(append(append([]string{}, base...), tc.args...), "--check-config")...)
			if code != tc.code || !strings.Contains(out, "listen = ") {
				t.Fatalf("exit %d (want %d); the settings are printed first\nstdout: %s\nstderr: %s", code, tc.code, out, errOut)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
		})
	}
	// --print-config prints without checking: the same missing bundle passes.
	if code, out, errOut := run(append(base, "--bundle", filepath.Join(d.dir, "none.json"), "--print-config")...); code != 0 || !strings.Contains(out, "none.json") || errOut != "" {
		t.Fatalf("--print-config: exit %d\n%s%s", code, out, errOut)
	}

	// A running DTA: --check-config notes that its data directory is in use (the
	// settings may be right); a second serve says so before the keystore.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := startServe(t, ctx, "--config", d.configs[0], "--listen", "127.0.0.1:0")
	dataDir := filepath.Join(d.dir, "data", "dta-1")
	inUse := "the data directory " + dataDir + " is in use by another process (is the service already running on it?); stop it or choose another --data-dir"
	if code, _, errOut := run(append(base, "--check-config")...); code != 0 || !strings.Contains(errOut, "polyroot: note: "+inUse) {
		t.Fatalf("check-config of a running DTA: exit %d\n%s", code, errOut)
	}
	t.Setenv(envPassphrase, "wrong") // the keystore is never reached
	start := time.Now()
	if code, _, errOut := run(base...); code != 1 || errOut != "polyroot: dta serve: "+inUse+"\n" {
		t.Fatalf("a second DTA on the same data directory: exit %d\n%s", code, errOut)
	} else if time.Since(start) > 3*time.Second {
		t.Fatalf("the busy data directory took %v to report", time.Since(start))
	}
	cancel()
	<-s.done

	// A taken port, for the API and for the metrics.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().String()
	for _, flag := range []string{"listen", "metrics-listen"} {
		args := append(append([]string{}, base...), "--"+flag, taken)
		want := "polyroot: dta serve: " + taken + " is in use: another process listens there; choose another --" + flag + "\n"
		if code, _, errOut := run(args...); code != 1 || errOut != want {
			t.Errorf("--%s on a taken port: exit %d\n%s\nwant %q", flag, code, errOut, want)
		}
	}
}

// TestServerCheckConfig: server serve --check-config checks the bundle, the registrar
// key against it, the keystore's server key and the data directory; a second server
// on a running one's data directory or port is refused in the words dta serve uses.
func TestServerCheckConfig(t *testing.T) {
	e := setupAuth(t)
	base := []string{"server", "serve", "--config", e.cfg, "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"}
	otherKey := filepath.Join(e.dir, "other.pem")
	mustRun(t, "registrar", "keygen", "--out", otherKey)
	emptyKeys := filepath.Join(e.dir, "empty-keys")
	if err := os.Mkdir(emptyKeys, 0o700); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	withClient := func(name, client string) string {
		p := filepath.Join(filepath.Dir(e.cfg), name)
		if err := os.WriteFile(p, append(raw, "\n[[oidc.clients]]\n"+client...), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	goodClient := withClient("oidc-good.toml", `id = "shop"`+"\n"+`auth_method = "none"`+"\n"+`redirect_uris = ["https://shop.example.test/cb"]`+"\n")
	issuer := []string{"--oidc-issuer", "https://auth.example.test/oidc"}
	dataDir := filepath.Join(e.dir, "data", "server")
	inUse := "the data directory " + dataDir + " is in use by another process (is the service already running on it?); stop it or choose another --data-dir"
	for _, tc := range []struct {
		name    string
		args    []string
		code    int
		wantErr []string
	}{
		{"ok/running-server-noted", nil, 0, []string{"polyroot: note: " + inUse, "the settings check out: the trust bundle", "holds server-key"}},
		{"fail/other-registrar-key", []string{"--registrar-key", otherKey}, 1, []string{"the registrar key " + otherKey + " is not the one that signed the trust bundle"}},
		{"fail/no-server-key", []string{"--keystore-dir", emptyKeys}, 1, []string{`holds no "server-key": provision the server key with polyroot server provision`}},
		{"fail/dta-ca-file", []string{"--dta-ca-file", filepath.Join(e.dir, "none.pem")}, 1, []string{"--dta-ca-file: open"}},
		{"ok/oidc", append([]string{"--config", goodClient}, issuer...), 0, []string{"the OpenID Provider https://auth.example.test/oidc, with 1 relying parties"}},
		{"fail/oidc-client-without-issuer", []string{"--config", goodClient}, 1, []string{"OpenID Connect clients are configured but no issuer"}},
		{"fail/oidc-jwks-missing", append([]string{"--config", withClient("oidc-jwks.toml",
			`id = "api"`+"\n"+`auth_method = "private_key_jwt"`+"\n"+`jwks_file = "missing-jwks.json"`+"\n"+`redirect_uris = ["https://api.example.test/cb"]`+"\n")}, issuer...),
			1, []string{`oidc client "api": jwks_file: open ` + filepath.Join(filepath.Dir(e.cfg), "missing-jwks.json")}},
		{"fail/oidc-http-redirect", append([]string{"--config", withClient("oidc-http.toml",
			`id = "evil"`+"\n"+`auth_method = "none"`+"\n"+`redirect_uris = ["http://evil.example.test/cb"]`+"\n")}, issuer...),
			1, []string{`redirect URI "http://evil.example.test/cb" must be an absolute https URL`}},
		{"fail/oidc-issuer-path-taken", []string{"--oidc-issuer", "https://auth.example.test/v1"}, 1, []string{"is taken by the server's own routes"}},
		{"fail/oidc-and-refuse-unbound", append([]string{"--refuse-unbound-logins"}, issuer...), 1, []string{"exclude each other"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := runIn("", append(append(append([]string{}, base...), tc.args...), "--check-config")...)
			if code != tc.code {
				t.Fatalf("exit %d (want %d)\n%s", code, tc.code, errOut)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
		})
	}
	if code, out, errOut := runIn("", append(append(append([]string{}, base...), "--config", goodClient, "--print-config"), issuer...)...); code != 0 ||
		!strings.Contains(out, `issuer = "https://auth.example.test/oidc"`) || !strings.Contains(out, `id = "shop"`) {
		t.Fatalf("--print-config with an OpenID Provider: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := runIn("", base...); code != 1 || errOut != "polyroot: server serve: "+inUse+"\n" {
		t.Fatalf("a second server on the same data directory: exit %d\n%s", code, errOut)
	}
	taken := strings.TrimPrefix(e.url, "https://")
	want := "polyroot: server serve: " + taken + " is in use: another process listens there; choose another --listen\n"
	if code, _, errOut := runIn("", append(base, "--data-dir", filepath.Join(e.dir, "data", "server-2"), "--listen", taken)...); code != 1 || errOut != want {
		t.Fatalf("a second server on the same port: exit %d\n%s\nwant %q", code, errOut, want)
	}
}
