// Package testbin finds the external programs that integration tests run — a real
// Vault server, a geth node — and decides what happens when one is missing.
//
// A test calls Path(t, "POLYROOT_VAULT_BIN", "vault"). The program is taken from the
// environment variable if it is set, else looked up on PATH. When it is not found:
//
//   - under plain `go test ./...` the test is skipped, so a checkout without the
//     (large, slow to build) binaries still tests everything else;
//   - when POLYROOT_INTEGRATION=1 — `make test` sets it, after building the pinned
//     binaries into its tool cache — the test fails, so CI can never pass by
//     silently skipping an integration test.
//
// By convention the Makefile has a target named after the program (`make vault`)
// that builds the pinned version into the tool cache.
package testbin

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// IntegrationEnv is the environment variable that turns a missing program from a
// skip into a failure when set to "1".
const IntegrationEnv = "POLYROOT_INTEGRATION"

// Required reports whether integration tests must run (IntegrationEnv is "1").
func Required() bool { return os.Getenv(IntegrationEnv) == "1" }

// Path returns the path of an executable for an integration test: the value of the
// environment variable envVar if it is set (it must name an executable file, else
// the test fails), otherwise fallbackName looked up on PATH. If neither gives a
// program, the test is skipped — or fails if Required.
func Path(t testing.TB, envVar, fallbackName string) string {
	t.Helper()
	if p := os.Getenv(envVar); p != "" {
		fi, err := os.Stat(p)
		switch {
		case err != nil:
			t.Fatalf("testbin: %s=%s: %v (run `make %s` to build it)", envVar, p, err, fallbackName)
		case fi.IsDir() || fi.Mode().Perm()&0o111 == 0:
			t.Fatalf("testbin: %s=%s is not an executable file", envVar, p)
		}
		return p
	}
	p, err := exec.LookPath(fallbackName)
	if err == nil {
		return p
	}
	if !errors.Is(err, exec.ErrNotFound) {
		t.Fatalf("testbin: looking up %s on PATH: %v", fallbackName, err)
	}
	if Required() {
		t.Fatalf("testbin: %s not found: %s is unset and there is no %q on PATH, but %s=1 requires this integration test. "+
			"Run `make %s` to build the pinned binary into the tool cache (make test does it and sets %s), or set %s to its path.",
			fallbackName, envVar, fallbackName, IntegrationEnv, fallbackName, envVar, envVar)
	}
	t.Skipf("testbin: %s not found (set %s or put %q on PATH; `make %s` builds it); skipping integration test",
		fallbackName, envVar, fallbackName, fallbackName)
	return ""
}

// Polyroot builds the polyroot command into dir and returns its path, for tests that
// need a real process: a kill -9, a signal, a restart.
func Polyroot(t testing.TB, dir string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go tool is needed to build polyroot: %v", err)
	}
	bin := filepath.Join(dir, "polyroot")
	cmd := exec.Command(goBin, "build", "-o", bin, "github.com/polyroot/polyroot/cmd/polyroot")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}
