package testbin

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
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
// comes from POLYROOT_VAULT_BIN or PATH (see Path). The server runs in its own process
// group, which t.Cleanup kills; Pdeathsig kills it too if the test binary dies.
func StartVault(t testing.TB) *Vault {
	t.Helper()
	bin := Path(t, "POLYROOT_VAULT_BIN", "vault")
	for attempt := 1; ; attempt++ {
		v, retry := tryStartVault(t, bin)
		if v != nil {
			return v
		}
		if !retry || attempt == 5 {
			t.Fatalf("vault dev server did not start (attempt %d)", attempt)
		}
		t.Logf("vault dev server: port taken, retrying (attempt %d)", attempt)
	}
}

func tryStartVault(t testing.TB, bin string) (v *Vault, retry bool) {
	t.Helper()
	start := time.Now()
	port := freePort(t)
	tokenBytes := make([]byte, 16)
	rand.Read(tokenBytes)
	rootToken := "root-" + hex.EncodeToString(tokenBytes)
	dir := t.TempDir()
	certDir := filepath.Join(dir, "tls")
	if err := os.Mkdir(certDir, 0o700); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "vault.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()

	cmd := exec.Command(bin, "server", "-dev", "-dev-tls",
		"-dev-tls-cert-dir="+certDir,
		"-dev-listen-address=127.0.0.1:"+strconv.Itoa(port),
		"-dev-root-token-id="+rootToken,
		"-dev-no-store-token")
	// A clean environment: no VAULT_* from the caller, HOME in the test's directory.
	cmd.Env = []string{"HOME=" + dir, "PATH=/usr/bin:/bin"}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	logTail := func() string {
		b, _ := os.ReadFile(logPath)
		if len(b) > 4000 {
			b = b[len(b)-4000:]
		}
		return string(b)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // the whole process group
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			t.Errorf("vault dev server (pid %d) did not exit after SIGKILL", cmd.Process.Pid)
		}
		if t.Failed() {
			t.Logf("vault dev server log (tail):\n%s", logTail())
		}
	})

	addr := "https://127.0.0.1:" + strconv.Itoa(port)
	caFile := filepath.Join(certDir, "vault-ca.pem")
	deadline := time.Now().Add(90 * time.Second)
	for !healthy(addr, caFile) {
		select {
		case <-exited:
			tail := logTail()
			if strings.Contains(tail, "address already in use") {
				return nil, true
			}
			t.Fatalf("vault dev server exited early: %v\n%s", cmd.ProcessState, tail)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("vault dev server not healthy after 90 s:\n%s", logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("vault dev server up at %s in %v", addr, time.Since(start).Round(time.Millisecond))
	return &Vault{Addr: addr, RootToken: rootToken, CAFile: caFile}, false
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

// freePort returns a loopback TCP port that was free a moment ago (Vault's dev server
// also takes the next port for its cluster listener; a clash is retried).
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
