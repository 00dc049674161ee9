//go:build linux

package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/polyroot/polyroot/internal/testbin"
)

// devVault is a real Vault server in dev mode (testbin.StartVault) with a root client.
type devVault struct {
	addr, rootToken, caFile string
	root                    *vault.Client
}

func startDevVault(t *testing.T) *devVault {
	t.Helper()
	v := testbin.StartVault(t)
	pemBytes, err := os.ReadFile(v.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemBytes)
	c, err := vault.NewClient(&vault.Config{Address: v.Addr, HttpClient: &http.Client{
		Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}})
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(v.RootToken)
	return &devVault{addr: v.Addr, rootToken: v.RootToken, caFile: v.CAFile, root: c}
}

// appRole makes an AppRole that may use secret/data/<path>/* and returns its ids.
func (dv *devVault) appRole(t *testing.T, role, path string) (roleID, secretID string) {
	t.Helper()
	ctx := context.Background()
	if err := dv.root.Sys().EnableAuthWithOptionsWithContext(ctx, "approle", &vault.EnableAuthOptions{Type: "approle"}); err != nil &&
		!strings.Contains(err.Error(), "path is already in use") {
		t.Fatal(err)
	}
	policy := fmt.Sprintf(`path "secret/data/%s/*" { capabilities = ["create", "read", "update"] }`, path)
	if err := dv.root.Sys().PutPolicyWithContext(ctx, role, policy); err != nil {
		t.Fatal(err)
	}
	if _, err := dv.root.Logical().WriteWithContext(ctx, "auth/approle/role/"+role, map[string]any{"token_policies": role, "token_ttl": "10m"}); err != nil {
		t.Fatal(err)
	}
	sec, err := dv.root.Logical().ReadWithContext(ctx, "auth/approle/role/"+role+"/role-id")
	if err != nil {
		t.Fatal(err)
	}
	roleID, _ = sec.Data["role_id"].(string)
	if sec, err = dv.root.Logical().WriteWithContext(ctx, "auth/approle/role/"+role+"/secret-id", nil); err != nil {
		t.Fatal(err)
	}
	secretID, _ = sec.Data["secret_id"].(string)
	return roleID, secretID
}

// TestVaultKeystore runs init and serve with the vault keystore against a real Vault:
// DTA 1 with a token (settings from a config file), DTA 2 with AppRole (flags).
func TestVaultKeystore(t *testing.T) {
	clearEnv(t)
	dv := startDevVault(t)
	dir := t.TempDir()
	reg := filepath.Join(dir, "registrar.pem")
	mustRun(t, "registrar", "keygen", "--out", reg)

	cfg1 := filepath.Join(dir, "dta-1.toml")
	os.WriteFile(cfg1, []byte(fmt.Sprintf(`index = 1
bundle = "bundle.json"
data_dir = "data-1"
[keystore]
type = "vault"
[keystore.vault]
addr = %q
ca_file = %q
path = "polyroot/dta-1"
`, dv.addr, dv.caFile)), 0o600)
	vaultFlags := []string{"--keystore", "vault", "--vault-addr", dv.addr, "--vault-ca-file", dv.caFile, "--vault-path", "polyroot/dta-2"}

	t.Setenv(envVaultToken, dv.rootToken)
	rec1, rec2 := filepath.Join(dir, "dta-1.json"), filepath.Join(dir, "dta-2.json")
	mustRun(t, "dta", "init", "--config", cfg1, "--domain", flowDomain, "--url", "http://127.0.0.1:8441", "--out", rec1)
	if code, _, errOut := run("dta", "init", "--config", cfg1, "--domain", flowDomain, "--url", "http://127.0.0.1:8441"); code != 1 ||
		!strings.Contains(errOut, "refusing to overwrite") {
		t.Fatalf("second init on Vault: exit %d\n%s", code, errOut)
	}
	if code, _, errOut := run("dta", "serve", "--config", cfg1); code != 1 || !strings.Contains(errOut, "trust bundle") {
		t.Fatalf("serve without a bundle: exit %d\n%s", code, errOut)
	}

	// DTA 2 logs in with AppRole; an ambient VAULT_TOKEN does not get in the way.
	roleID, secretID := dv.appRole(t, "dta-2", "polyroot/dta-2")
	t.Setenv(envVaultSecretID, secretID)
	t.Setenv(envVaultToken, "not-a-token")
	mustRun(t, append([]string{"dta", "init", "--domain", flowDomain, "--index", "2", "--url", "http://127.0.0.1:8442",
		"--vault-approle-role-id", roleID, "--out", rec2}, vaultFlags...)...)
	mustRun(t, "bundle", "assemble", "--domain", flowDomain, "--registrar-key", reg, "--record", rec1, "--record", rec2,
		"--out", filepath.Join(dir, "bundle.json"))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	t.Setenv(envVaultToken, dv.rootToken)
	s1 := startServe(t, ctx, "--config", cfg1, "--listen", "127.0.0.1:0")
	s2 := startServe(t, ctx, append([]string{"--index", "2", "--bundle", filepath.Join(dir, "bundle.json"), "--data-dir", filepath.Join(dir, "data-2"),
		"--listen", "127.0.0.1:0", "--vault-approle-role-id", roleID}, vaultFlags...)...)
	for _, s := range []*serveProc{s1, s2} {
		if code, body := get(t, http.DefaultClient, s.url+"/readyz"); code != http.StatusOK {
			t.Fatalf("%s/readyz: %d %s", s.url, code, body)
		}
	}
	cancel()
	for _, s := range []*serveProc{s1, s2} {
		if code := <-s.done; code != 0 {
			t.Fatalf("exit %d\n%s", code, s.stderr)
		}
	}

	cases := []struct {
		name    string
		env     map[string]string
		args    []string
		wantErr string
	}{
		{"fail/no-token", map[string]string{envVaultToken: ""}, []string{"dta", "serve", "--config", cfg1}, "needs a token in the environment variable VAULT_TOKEN"},
		{"fail/approle-no-secret-id", map[string]string{envVaultSecretID: ""}, []string{"dta", "serve", "--config", cfg1, "--vault-approle-role-id", roleID},
			"AppRole login needs the secret id in the environment variable VAULT_SECRET_ID"},
		{"fail/bad-token", map[string]string{envVaultToken: "hvs.bad-token-value"}, []string{"dta", "serve", "--config", cfg1}, "HTTP 403"},
		{"fail/approle-wrong-path", nil, []string{"dta", "serve", "--config", cfg1, "--vault-approle-role-id", roleID}, "HTTP 403"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
				if v == "" {
					os.Unsetenv(k)
				}
			}
			code, _, errOut := run(tc.args...)
			if code != 1 || !strings.Contains(errOut, tc.wantErr) {
				t.Fatalf("exit %d, stderr:\n%s\nwant %q", code, errOut, tc.wantErr)
			}
			if testing.Verbose() {
				t.Log(strings.TrimSpace(errOut))
			}
			for _, secret := range []string{dv.rootToken, secretID, "hvs.bad-token-value"} {
				if strings.Contains(errOut, secret) {
					t.Fatal("a Vault credential appears in the output")
				}
			}
		})
	}
}
