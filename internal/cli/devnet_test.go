//go:build unix

package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/polyroot/polyroot/internal/devnet"
)

// startDevnet runs `polyroot devnet --dir dir` until it says it is ready; the returned
// function stops it and checks that it stopped cleanly.
func startDevnet(t *testing.T, dir string) (devnet.Info, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out, errOut := &syncBuffer{}, &syncBuffer{}
	done := make(chan int, 1)
	go func() { done <- Main(ctx, []string{"polyroot", "devnet", "--dir", dir}, out, errOut) }()
	exited := false
	ok := waitFor(90*time.Second, func() bool {
		select {
		case code := <-done:
			done <- code
			exited = true
			return true
		default:
		}
		return strings.Contains(out.String(), "ready (local use only")
	})
	if !ok || exited {
		cancel()
		t.Fatalf("devnet did not get ready (exited %v)\nstdout: %s\nstderr: %s", exited, out, errOut)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "devnet.json"))
	if err != nil {
		t.Fatal(err)
	}
	var info devnet.Info
	if err := json.Unmarshal(raw, &info); err != nil {
		t.Fatal(err)
	}
	return info, func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("devnet: exit %d\n%s", code, errOut)
			}
		case <-time.After(60 * time.Second):
			t.Error("devnet did not stop")
		}
	}
}

// TestDevnet: start, enrol and log in with the CLI as a user would, stop, restart on
// the same directory, log in again.
func TestDevnet(t *testing.T) {
	clearEnv(t)
	t.Setenv(envScryptLogN, "10")
	dir := filepath.Join(t.TempDir(), "devnet")
	info, stop := startDevnet(t, dir)
	for _, f := range []string{"bundle.json", "bundle.sha256", "admin-token", "devnet.json", "passphrase", "registrar.key"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if secret := f == "admin-token" || f == "passphrase" || f == "registrar.key"; secret && fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s has mode %v", f, fi.Mode())
		}
	}
	if len(info.DTAURLs) != 3 || info.Chain != "embedded" || !regexp.MustCompile(`^0x[0-9a-fA-F]{40}$`).MatchString(info.Contract) {
		t.Fatalf("devnet.json: %+v", info)
	}
	sha, _ := os.ReadFile(filepath.Join(dir, "bundle.sha256"))
	if strings.TrimSpace(string(sha)) != info.Fingerprint {
		t.Fatalf("bundle.sha256 %q, devnet.json %q", sha, info.Fingerprint)
	}
	admin, err := os.ReadFile(filepath.Join(dir, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(envAdminToken, string(admin))
	ok := func(stdin string, args ...string) string {
		t.Helper()
		code, out, errOut := runIn(stdin, args...)
		if code != 0 {
			t.Fatalf("polyroot %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
		}
		return out
	}
	const alice = "alice@example.com"
	code := strings.TrimSpace(ok("", "server", "enrol", "--server", info.ServerURL, "--insecure-http", alice))
	t.Setenv(envAdminToken, "")
	client := filepath.Join(t.TempDir(), "alice")
	ok("", "client", "bootstrap", "--dir", client, "--bundle", info.Bundle, "--fingerprint", info.Fingerprint)
	ok(testPIN+"\n", "client", "enroll", "--dir", client, "--server", info.ServerURL, "--insecure-http", "--code", code, "--pin-stdin")
	login := []string{"client", "login", "--dir", client, "--server", info.ServerURL, "--insecure-http", "--pin-stdin"}
	if out := ok(testPIN+"\n", login...); !strings.Contains(out, `logged in to `+devnet.Domain+` as "`+alice+`"`) {
		t.Fatalf("login: %s", out)
	}
	token := strings.TrimSpace(ok(testPIN+"\n", append(login, "--print-token")...))
	stop()

	info2, stop2 := startDevnet(t, dir)
	defer stop2()
	if info2.Fingerprint != info.Fingerprint || info2.ServerURL != info.ServerURL {
		t.Fatalf("restart changed the devnet: %+v → %+v", info, info2)
	}
	if out := ok(testPIN+"\n", login...); !strings.Contains(out, `as "`+alice+`"`) {
		t.Fatalf("login after restart: %s", out)
	}
	// The token issued before the restart is still valid (same token key, same state).
	ok(token+"\n", "client", "permits", "refresh", "--dir", client, "--server", info.ServerURL, "--insecure-http", "--token-stdin")
}

// TestDevnetRefusesBadSettings: each bad setting is named before anything starts.
func TestDevnetRefusesBadSettings(t *testing.T) {
	clearEnv(t)
	dir := filepath.Join(t.TempDir(), "devnet")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"fail/chain", []string{"--chain", "ropsten"}, `chain "ropsten": want embedded or rpc`},
		{"fail/rpc-without-url", []string{"--chain", "rpc", "--key", "k"}, "the rpc chain needs an RPC URL and the key file"},
		{"fail/rpc-without-key", []string{"--chain", "rpc", "--rpc-url", "http://127.0.0.1:1"}, "the rpc chain needs an RPC URL and the key file"},
		{"fail/keystore", []string{"--keystore", "hsm"}, `--keystore "hsm": want file or vault`},
		{"fail/vault-without-token", []string{"--keystore", "vault", "--vault-addr", "https://127.0.0.1:8200"}, "needs a token in the environment variable VAULT_TOKEN"},
		{"fail/log-format", []string{"--log-format", "xml"}, `--log-format "xml"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := run(append([]string{"devnet", "--dir", dir}, tc.args...)...)
			if code == 0 || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, stderr %q, want %q", code, errOut, tc.want)
			}
			if _, err := os.Stat(filepath.Join(dir, "devnet.json")); !os.IsNotExist(err) {
				t.Fatal("a refused devnet wrote devnet.json")
			}
		})
	}
}

// TestHoldSIGHUP: a SIGHUP while a service starts does not end the process (without
// holdSIGHUP this test binary would die of it).
func TestHoldSIGHUP(t *testing.T) {
	release := holdSIGHUP()
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	time.Sleep(100 * time.Millisecond)
	release()
}
