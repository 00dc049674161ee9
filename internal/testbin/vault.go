package testbin

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// A Vault is a real Vault server in dev mode (in memory, unsealed, TLS with a generated
// CA) started for one test and killed when the test ends.
type Vault struct {
	Addr      string // https://127.0.0.1:PORT
	RootToken string
	CAFile    string
}

// StartVault starts `vault server -dev -dev-tls` on a free loopback port. The binary
// comes from POLYROOT_VAULT_BIN or PATH (see Path); the process is managed as
// startServer describes.
func StartVault(t testing.TB) *Vault {
	t.Helper()
	bin := Path(t, "POLYROOT_VAULT_BIN", "vault")
	v := &Vault{}
	startServer(t, "vault dev server", bin, func(dir string) ([]string, func() bool) {
		port := freePort(t)
		tokenBytes := make([]byte, 16)
		rand.Read(tokenBytes)
		certDir := filepath.Join(dir, "tls")
		if err := os.Mkdir(certDir, 0o700); err != nil {
			t.Fatal(err)
		}
		v.Addr = "https://127.0.0.1:" + strconv.Itoa(port)
		v.RootToken = "root-" + hex.EncodeToString(tokenBytes)
		v.CAFile = filepath.Join(certDir, "vault-ca.pem")
		args := []string{"server", "-dev", "-dev-tls", "-dev-tls-cert-dir=" + certDir,
			"-dev-listen-address=127.0.0.1:" + strconv.Itoa(port), "-dev-root-token-id=" + v.RootToken, "-dev-no-store-token"}
		return args, func() bool { return healthy(v.Addr, v.CAFile) }
	})
	return v
}

// healthy reports whether GET /v1/sys/health answers 200 (initialised, unsealed, active).
func healthy(addr, caFile string) bool {
	pemBytes, err := os.ReadFile(caFile)
	if err != nil {
		return false // not written yet
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return false
	}
	c := &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
	}
	defer c.CloseIdleConnections()
	resp, err := c.Get(addr + "/v1/sys/health")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
