//go:build unix

package cli

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/polyroot/polyroot/internal/keystore"
	"github.com/polyroot/polyroot/internal/testdomain"
	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/server"
)

const (
	testAdminToken = "admin-token-0123456789abcdef"
	testPIN        = "4321"
)

// authEnv is a domain of three real DTAs (internal/testdomain) and its auth server
// run with `polyroot server serve` over HTTPS, set up from a copy of
// deploy/examples/server.toml.
type authEnv struct {
	d      *testdomain.Domain
	dir    string
	cfg    string // server.toml
	ca     string // the server's self-signed certificate, trusted with --ca-file
	url    string
	admin  string // the admin listener's URL (--admin-listen)
	proc   *serveProc
	cancel context.CancelFunc
}

func setupAuth(t *testing.T) *authEnv {
	t.Helper()
	clearEnv(t)
	t.Setenv(envPassphrase, "correct horse battery staple")
	t.Setenv(envScryptLogN, "10")
	t.Setenv(envAdminToken, testAdminToken)
	e := &authEnv{d: testdomain.New(t, flowDomain, 3, 3600), dir: t.TempDir()}
	data := filepath.Join(e.dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	e.d.WriteBundle(data)
	der, err := x509.MarshalPKCS8PrivateKey(e.d.Registrar)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "registrar.pem"), pem.EncodeToMemory(&pem.Block{Type: registrarKeyPEMType, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(examplesDir(t), "server.toml"))
	if err != nil {
		t.Fatal(err)
	}
	e.cfg = filepath.Join(e.dir, "server.toml")
	if err := os.WriteFile(e.cfg, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if out := mustRun(t, "server", "provision", "--config", e.cfg); !strings.Contains(out, "server key of "+flowDomain+" provisioned from DTA 1, 2, 3") ||
		!regexp.MustCompile(`the DTAs logged these issuances at DTA 1 entry \d+, DTA 2 entry \d+, DTA 3 entry \d+: `).MatchString(out) ||
		!strings.Contains(out, `the registrar key is stored as "registrar-key" too`) {
		t.Fatalf("provision: %s", out)
	}
	// Serve as the provision's output says: the registrar key from the keystore, no
	// key file in its settings.
	serveCfg := regexp.MustCompile(`(?m)^registrar_key = .*$`).ReplaceAll(raw, nil)
	if bytes.Equal(serveCfg, raw) {
		t.Fatal("the example server.toml sets no registrar_key")
	}
	serveFile := filepath.Join(e.dir, "serve.toml")
	if err := os.WriteFile(serveFile, serveCfg, 0o600); err != nil {
		t.Fatal(err)
	}
	cert, key, _ := selfSigned(t, e.dir)
	e.ca = cert
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	e.proc = startProc(t, ctx, "server", "serve", "--config", serveFile, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
		"--tls-cert", cert, "--tls-key", key, "--rate-limit", "1000", "--rate-burst", "1000")
	e.url, e.admin = e.proc.url, e.proc.adminURL
	if !strings.HasPrefix(e.admin, "https://127.0.0.1:") || e.admin == e.url {
		t.Fatalf("the ready line names no admin listener of its own: %s", e.proc.stdout)
	}
	t.Cleanup(func() { e.stop(t) })
	return e
}

// stop cancels the server and checks that it stopped cleanly.
func (e *authEnv) stop(t *testing.T) {
	if e.cancel == nil {
		return
	}
	e.cancel()
	e.cancel = nil
	select {
	case code := <-e.proc.done:
		if code != 0 || !stoppedLine.MatchString(e.proc.stderr.String()) {
			t.Errorf("server serve: exit %d\n%s", code, e.proc.stderr)
		}
	case <-time.After(20 * time.Second):
		t.Error("server serve did not stop")
	}
}

// runIn runs Main with stdin and returns its exit code and output.
func runIn(stdin string, args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code := MainWithStdin(ctx, append([]string{"polyroot"}, args...), strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

// ok runs a command that must succeed and returns its stdout.
func (e *authEnv) ok(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	code, out, errOut := runIn(stdin, args...)
	if code != 0 {
		t.Fatalf("polyroot %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	e.noSecrets(t, out+errOut)
	return out
}

// fail runs a command that must exit 1 with want in its stderr.
func (e *authEnv) fail(t *testing.T, stdin, want string, args ...string) string {
	t.Helper()
	code, out, errOut := runIn(stdin, args...)
	if code != 1 || !strings.Contains(errOut, want) {
		t.Fatalf("polyroot %s: exit %d, stderr:\n%s\nwant exit 1 and %q (stdout: %s)", strings.Join(args, " "), code, errOut, want, out)
	}
	e.noSecrets(t, out+errOut)
	t.Logf("polyroot %s → exit 1: %s", args[0]+" "+args[1], strings.TrimSpace(errOut))
	return errOut
}

func (e *authEnv) noSecrets(t *testing.T, s string) {
	t.Helper()
	for _, secret := range []string{testAdminToken, "correct horse", "PIN " + testPIN, "\n" + testPIN} {
		if strings.Contains(s, secret) {
			t.Fatalf("a secret (%q) appears in the output:\n%s", secret, s)
		}
	}
}

func (e *authEnv) enrol(t *testing.T, args ...string) string {
	t.Helper()
	code := strings.TrimSpace(e.ok(t, "", append([]string{"server", "enrol", "--server", e.admin, "--ca-file", e.ca}, args...)...))
	if !regexp.MustCompile(`^[A-Z2-7]{20}$`).MatchString(code) {
		t.Fatalf("enrol printed %q, not a code", code)
	}
	return code
}

// bootstrap pins the bundle (from the server's /v1/bundle) in a new client directory.
func (e *authEnv) bootstrap(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "client")
	out := e.ok(t, "", "client", "bootstrap", "--dir", dir, "--bundle", e.url+"/v1/bundle", "--fingerprint", e.d.Fingerprint, "--ca-file", e.ca)
	if !strings.Contains(out, "pinned the trust bundle of "+flowDomain) {
		t.Fatalf("bootstrap: %s", out)
	}
	return dir
}

func (e *authEnv) clientArgs(cmd, dir string, extra ...string) []string {
	return append([]string{"client", cmd, "--dir", dir, "--server", e.url, "--ca-file", e.ca}, extra...)
}

// TestAuthFlow is the whole user flow through the command: provision, serve, enrol,
// client bootstrap, enroll, login, status, permits refresh, wrong PINs up to the
// block, unblock, a device, revoke, and a clean stop.
func TestAuthFlow(t *testing.T) {
	e := setupAuth(t)
	if !strings.Contains(e.proc.stdout.String(), "polyroot: auth server of "+flowDomain+" ready at https://127.0.0.1:") {
		t.Fatalf("ready line: %s", e.proc.stdout)
	}
	if !strings.Contains(e.proc.stderr.String(), "created a new access-token signing key") {
		t.Fatalf("the token key was not created on first start:\n%s", e.proc.stderr)
	}
	const alice = "alice@example.com"
	code := e.enrol(t, alice)
	dir := e.bootstrap(t)

	if out := e.ok(t, testPIN+"\n", e.clientArgs("enroll", dir, "--code", code, "--pin-stdin")...); !strings.Contains(out, `enrolled "`+alice+`" with `+flowDomain) ||
		!strings.Contains(out, "permits until") {
		t.Fatalf("enroll: %s", out)
	}
	if fi, err := os.Stat(filepath.Join(dir, "token.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", err, fi)
	}
	login := e.clientArgs("login", dir, "--pin-stdin")
	loggedIn := regexp.MustCompile(`logged in to ` + regexp.QuoteMeta(flowDomain) + ` as "` + alice + `"; the access token expires at \S+Z \(in 1[45]m`)
	if out := e.ok(t, testPIN+"\n", login...); !loggedIn.MatchString(out) {
		t.Fatalf("login: %s", out)
	}
	status := e.ok(t, "", "client", "status", "--dir", dir)
	for _, want := range []string{"domain:    " + flowDomain, "enrolled:  yes", "id:        " + alice, "kind:      person (PIN)", "current one held"} {
		if !strings.Contains(status, want) {
			t.Fatalf("status lacks %q:\n%s", want, status)
		}
	}
	var sj statusJSON
	if out := e.ok(t, "", "client", "status", "--dir", dir, "--json"); json.Unmarshal([]byte(out), &sj) != nil || !sj.Enrolled || sj.Domain != flowDomain ||
		sj.ID != alice || sj.Kind != "pin" || !sj.CurrentPermit || len(sj.Permits) == 0 || sj.PermitsUntil == nil || sj.NotAfter != nil || sj.Directory != dir {
		t.Fatalf("status --json:\n%s", out)
	}

	// --print-token prints only the token; permits refresh takes it on stdin.
	token := strings.TrimSpace(e.ok(t, testPIN+"\n", append(login, "--print-token")...))
	if strings.Count(token, ".") != 2 || strings.Contains(token, " ") {
		t.Fatalf("--print-token printed %q", token)
	}
	refresh := append([]string{"client", "permits", "refresh", "--dir", dir, "--server", e.url, "--ca-file", e.ca}, "--token-stdin", "--days", "3")
	if out := e.ok(t, token+"\n", refresh...); !regexp.MustCompile(`\d+ permits held, one per permit period of \S+, until`).MatchString(out) {
		t.Fatalf("permits refresh: %s", out)
	}

	// Permits expired (dropped from the token file here): login says so and names the
	// remedy; permits renew with the PIN gets new ones without an access token.
	dropPermits(t, dir)
	if out := e.ok(t, "", "client", "status", "--dir", dir); !strings.Contains(out, "permits:   none") {
		t.Fatalf("status without permits: %s", out)
	}
	e.fail(t, testPIN+"\n", "no valid time permit for the current period; renew the permits with your PIN (polyroot client permits renew)", login...)
	renew := []string{"client", "permits", "renew", "--dir", dir, "--server", e.url, "--ca-file", e.ca, "--pin-stdin", "--days", "2"}
	if out := e.ok(t, testPIN+"\n", renew...); !regexp.MustCompile(`\d+ permits held, one per permit period of \S+, until`).MatchString(out) {
		t.Fatalf("permits renew: %s", out)
	}
	if out := e.ok(t, testPIN+"\n", login...); !loggedIn.MatchString(out) {
		t.Fatalf("login after renew: %s", out)
	}
	e.fail(t, "9999\n", "2 tries left", renew...) // a renewal with a wrong PIN counts
	e.ok(t, testPIN+"\n", login...)               // and a login resets the count

	// Wrong PINs: tries left, then blocked, even for the right PIN.
	e.fail(t, "9999\n", "wrong PIN, or an identity the server does not accept (unknown, revoked or expired); 2 tries left", login...)
	e.fail(t, "9999\n", "1 try left", login...)
	e.fail(t, "9999\n", "blocked after too many failed logins; ask the administrator to unblock it", login...)
	e.fail(t, testPIN+"\n", "blocked", login...)
	unblock := []string{"server", "unblock", "--server", e.admin, "--ca-file", e.ca, alice}
	if out := e.ok(t, "", unblock...); !strings.Contains(out, "unblocked "+alice+" (1 enrolment blocked, of 1 enrolment)") {
		t.Fatalf("unblock: %s", out)
	}
	if out := e.ok(t, "", unblock...); !strings.Contains(out, alice+" was not blocked") {
		t.Fatalf("unblock again: %s", out)
	}
	if out := e.ok(t, testPIN+"\n", login...); !loggedIn.MatchString(out) {
		t.Fatalf("login after unblock: %s", out)
	}

	// A device enrols and logs in without a PIN; its bundle comes from a file.
	devCode := e.enrol(t, "--device", "--permit-days", "2", "sensor-0042")
	devDir := filepath.Join(t.TempDir(), "device")
	e.ok(t, "", "client", "bootstrap", "--dir", devDir, "--bundle", filepath.Join(e.dir, "data", "bundle.json"), "--fingerprint", "sha256:"+strings.ToUpper(e.d.Fingerprint))
	e.ok(t, "", e.clientArgs("enroll", devDir, "--code", devCode, "--no-pin")...)
	if out := e.ok(t, "", e.clientArgs("login", devDir)...); !strings.Contains(out, `as "sensor-0042"`) {
		t.Fatalf("device login: %s", out)
	}
	if out := e.ok(t, "", "client", "status", "--dir", devDir); !strings.Contains(out, "device (no PIN)") {
		t.Fatalf("device status: %s", out)
	}
	e.fail(t, testPIN+"\n", "this identity is a device", e.clientArgs("login", devDir, "--pin-stdin")...)

	// A temporary identity: status shows its end.
	tmpCode := e.enrol(t, "--ttl", "5m", "maintenance@example.com")
	tmpDir := e.bootstrap(t)
	e.ok(t, testPIN+"\n", e.clientArgs("enroll", tmpDir, "--code", tmpCode, "--pin-stdin")...)
	if out := e.ok(t, "", "client", "status", "--dir", tmpDir); !strings.Contains(out, "temporary: until") {
		t.Fatalf("temporary status: %s", out)
	}
	var tj statusJSON
	if out := e.ok(t, "", "client", "status", "--dir", tmpDir, "--json"); json.Unmarshal([]byte(out), &tj) != nil || tj.NotAfter == nil || tj.Expired ||
		time.Until(*tj.NotAfter) > 5*time.Minute {
		t.Fatalf("temporary status --json:\n%s", out)
	}

	// Alice adds a second device: the registrar is told about the first; both are listed.
	exit, out, errOut := runIn("", "server", "enrol", "--server", e.admin, "--ca-file", e.ca, alice)
	if exit != 0 || !strings.Contains(errOut, `note: "`+alice+`" already has 1 other enrolment that can log in`) {
		t.Fatalf("second enrolment of alice: exit %d\n%s", exit, errOut)
	}
	laptop := e.bootstrap(t)
	e.ok(t, testPIN+"\n", e.clientArgs("enroll", laptop, "--code", strings.TrimSpace(out), "--pin-stdin")...)
	e.fail(t, "9999\n", "2 tries left", e.clientArgs("login", laptop, "--pin-stdin")...)
	listing := e.ok(t, "", "server", "enrolments", "--server", e.admin, "--ca-file", e.ca, alice)
	if lines := strings.Split(strings.TrimSpace(listing), "\n"); len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") ||
		!regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(alice)+`\s+[0-9a-f]{64}\s+active\s+pin\s+\S+Z\s+-\s+1 / 1 today$`).MatchString(listing) {
		t.Fatalf("server enrolments %s:\n%s", alice, listing)
	}
	// The admin listener reached by a name its certificate does not hold (its
	// certificate names 127.0.0.1 alone): --tls-server-name says which to check.
	local := strings.Replace(e.admin, "127.0.0.1", "localhost", 1)
	e.fail(t, "", "certificate", "server", "enrolments", "--server", local, "--ca-file", e.ca, alice)
	if again := e.ok(t, "", "server", "enrolments", "--server", local, "--ca-file", e.ca, "--tls-server-name", "127.0.0.1", alice); again != listing {
		t.Fatalf("server enrolments with --tls-server-name:\n%s", again)
	}
	var all []wire.EnrolmentInfo
	if err := json.Unmarshal([]byte(e.ok(t, "", "server", "enrolments", "--server", e.admin, "--ca-file", e.ca, "--json")), &all); err != nil || len(all) != 4 {
		t.Fatalf("server enrolments --json: %v, %d records", err, len(all))
	}
	states := map[string]int{}
	for _, x := range all {
		states[x.ID+" "+x.State]++
	}
	if states[alice+" active"] != 2 || states["sensor-0042 active"] != 1 || states["maintenance@example.com active"] != 1 {
		t.Fatalf("domain listing: %v", states)
	}

	// Revocation of alice: both devices, at every DTA, and logins fail at once.
	revOut := e.ok(t, "", "server", "revoke", "--server", e.admin, "--ca-file", e.ca, alice)
	if !regexp.MustCompile(`^[0-9a-f]{64}\n[0-9a-f]{64}\n$`).MatchString(revOut) {
		t.Fatalf("revoke printed %q", revOut)
	}
	e.fail(t, testPIN+"\n", "login refused", login...)
	e.fail(t, testPIN+"\n", "login refused", e.clientArgs("login", laptop, "--pin-stdin")...)
	// Revoking again by idhash is harmless.
	e.ok(t, "", "server", "revoke", "--server", e.admin, "--ca-file", e.ca, "--idhash", strings.Fields(revOut)[0])

	// SIGHUP re-reads the TLS certificate; logins go on.
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if !waitFor(10*time.Second, func() bool { return strings.Contains(e.proc.stderr.String(), "reloaded the TLS certificate") }) {
		t.Fatalf("no reload on SIGHUP:\n%s", e.proc.stderr)
	}
	e.ok(t, "", e.clientArgs("login", devDir)...)

	e.stop(t)
}

// dropPermits removes the permits from a client's token file, as if they expired.
func dropPermits(t *testing.T, dir string) {
	t.Helper()
	p := filepath.Join(dir, "token.json")
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var tok map[string]any
	if err := json.Unmarshal(raw, &tok); err != nil {
		t.Fatal(err)
	}
	if _, ok := tok["permits"]; !ok {
		t.Fatalf("token file has no permits: %s", raw)
	}
	delete(tok, "permits")
	raw, _ = json.Marshal(tok)
	if err := os.WriteFile(p, raw, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestAuthFailures: every server and client subcommand's failure paths, with exit 1
// and a message that says what is wrong.
func TestAuthFailures(t *testing.T) {
	e := setupAuth(t)
	fresh := func() string { return filepath.Join(t.TempDir(), "keys") }
	enrolled := e.bootstrap(t)
	e.ok(t, testPIN+"\n", e.clientArgs("enroll", enrolled, "--code", e.enrol(t, "carol@example.com"), "--pin-stdin")...)

	t.Run("fail/provision-twice-without-force", func(t *testing.T) {
		e.fail(t, "", "already holds the server key \"server-key\"; refusing to overwrite it (give --force", "server", "provision", "--config", e.cfg)
		e.ok(t, "", "server", "provision", "--config", e.cfg, "--force")
	})
	t.Run("fail/provision-dta-down", func(t *testing.T) {
		e.d.DTAs[1].Stop()
		defer e.d.DTAs[1].Start()
		errOut := e.fail(t, "", "nothing stored: DTA 2 ("+e.d.DTAs[1].URL+"): unreachable", "server", "provision", "--config", e.cfg, "--keystore-dir", fresh())
		if strings.Contains(errOut, "DTA 1") || strings.Contains(errOut, "DTA 3") {
			t.Fatalf("names DTAs that answered: %s", errOut)
		}
	})
	t.Run("fail/provision-readable-registrar-key", func(t *testing.T) {
		key := filepath.Join(e.dir, "data", "registrar.pem")
		os.Chmod(key, 0o644)
		defer os.Chmod(key, 0o600)
		e.fail(t, "", "the group or others can read it", "server", "provision", "--config", e.cfg, "--keystore-dir", fresh())
	})
	t.Run("fail/serve-no-admin-token", func(t *testing.T) {
		t.Setenv(envAdminToken, "")
		e.fail(t, "", "the admin token must be in the environment variable POLYROOT_ADMIN_TOKEN", "server", "serve", "--config", e.cfg, "--listen", "127.0.0.1:0")
	})
	t.Run("fail/serve-short-admin-token", func(t *testing.T) {
		t.Setenv(envAdminToken, "short")
		e.fail(t, "", "at least 16 characters", "server", "serve", "--config", e.cfg, "--listen", "127.0.0.1:0")
	})
	t.Run("fail/serve-short-introspection-token", func(t *testing.T) {
		t.Setenv(envIntrospectionToken, "short")
		e.fail(t, "", envIntrospectionToken+" must be at least 16 characters and not the admin token", "server", "serve", "--config", e.cfg, "--listen", "127.0.0.1:0")
	})
	t.Run("fail/serve-introspection-token-is-admin-token", func(t *testing.T) {
		t.Setenv(envIntrospectionToken, testAdminToken)
		e.fail(t, "", "not the admin token", "server", "serve", "--config", e.cfg, "--listen", "127.0.0.1:0")
	})
	t.Run("fail/serve-not-provisioned", func(t *testing.T) {
		e.fail(t, "", "run `polyroot server provision` first", "server", "serve", "--config", e.cfg, "--listen", "127.0.0.1:0",
			"--metrics-listen", "127.0.0.1:0", "--keystore-dir", fresh(), "--data-dir", filepath.Join(t.TempDir(), "d"))
	})
	t.Run("fail/serve-no-registrar-key", func(t *testing.T) {
		// A keystore provisioned before provision stored the registrar key, and no
		// registrar_key file: serve says what to do.
		open := func(dir string) keystore.Keystore {
			ks, err := keystore.OpenFile(dir, []byte(os.Getenv(envPassphrase)), keystore.WithScryptWorkFactor(10))
			if err != nil {
				t.Fatal(err)
			}
			return ks
		}
		sQ, err := open(filepath.Join(e.dir, "data", "server-keys")).Get(t.Context(), server.SecretServerKey)
		keys := fresh()
		if err != nil || open(keys).Put(t.Context(), server.SecretServerKey, sQ) != nil {
			t.Fatal(err)
		}
		e.fail(t, "", "no registrar key: the keystore does not hold \"registrar-key\" and no registrar_key file is set; run `polyroot server provision`",
			"server", "serve", "--config", filepath.Join(e.dir, "serve.toml"), "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--keystore-dir", keys, "--data-dir", filepath.Join(t.TempDir(), "d"))
	})
	t.Run("fail/serve-data-dir-in-use", func(t *testing.T) {
		// bbolt's lock: one process per data directory. The running server holds it;
		// serve says so before it unlocks the keystore.
		e.fail(t, "", "server serve: the data directory "+filepath.Join(e.dir, "data", "server")+" is in use by another process", "server", "serve", "--config", e.cfg, "--listen", "127.0.0.1:0")
	})
	t.Run("fail/serve-tls-half", func(t *testing.T) {
		e.fail(t, "", "TLS needs both --tls-cert and --tls-key", "server", "serve", "--config", e.cfg, "--tls-cert", e.ca)
	})
	t.Run("fail/enrol-bad-admin-token", func(t *testing.T) {
		t.Setenv(envAdminToken, "wrong-token-0123456789abcdef")
		e.fail(t, "", "the server refused the admin token (401 unauthorized): check POLYROOT_ADMIN_TOKEN",
			"server", "enrol", "--server", e.admin, "--ca-file", e.ca, "dave@example.com")
	})
	t.Run("fail/enrol-no-admin-token", func(t *testing.T) {
		t.Setenv(envAdminToken, "")
		e.fail(t, "", "the admin token must be in the environment variable POLYROOT_ADMIN_TOKEN (never a flag)",
			"server", "enrol", "--server", e.admin, "--ca-file", e.ca, "dave@example.com")
	})
	t.Run("fail/enrol-on-the-public-listener", func(t *testing.T) {
		e.fail(t, "", "no admin API at "+e.url+" (404 not_found): if the server serves it on a listener of its own (admin_listen), give that address with --server",
			"server", "enrol", "--server", e.url, "--ca-file", e.ca, "dave@example.com")
	})
	t.Run("fail/enrol-redirected", func(t *testing.T) {
		// A redirect to plain http would carry the admin token in clear.
		var leaked atomic.Bool
		plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			leaked.Store(r.Header.Get("Authorization") != "")
		}))
		defer plain.Close()
		redirect := httptest.NewServer(http.RedirectHandler(plain.URL+"/v1/admin/enrolments", http.StatusTemporaryRedirect))
		defer redirect.Close()
		e.fail(t, "", "which admin commands do not follow", "server", "enrol", "--server", redirect.URL, "--insecure-http", "dave@example.com")
		if leaked.Load() {
			t.Fatal("the admin token followed the redirect")
		}
	})
	t.Run("fail/enrol-untrusted-certificate", func(t *testing.T) {
		e.fail(t, "", "certificate", "server", "enrol", "--server", e.admin, "dave@example.com")
	})
	t.Run("fail/enrol-plain-http", func(t *testing.T) {
		e.fail(t, "", "is not https (plain HTTP is for loopback tests only, with --insecure-http)",
			"server", "enrol", "--server", strings.Replace(e.url, "https:", "http:", 1), "dave@example.com")
	})
	t.Run("fail/enrol-no-id", func(t *testing.T) {
		e.fail(t, "", "give one identity ID", "server", "enrol", "--server", e.admin, "--ca-file", e.ca)
	})
	t.Run("fail/enrol-bad-ttl", func(t *testing.T) {
		e.fail(t, "", "--ttl 1.5s: want whole seconds", "server", "enrol", "--server", e.admin, "--ca-file", e.ca, "--ttl", "1500ms", "x")
	})
	t.Run("fail/revoke-unknown-identity", func(t *testing.T) {
		e.fail(t, "", "the server knows no such identity", "server", "revoke", "--server", e.admin, "--ca-file", e.ca, "nobody@example.com")
	})
	t.Run("fail/revoke-dta-down", func(t *testing.T) {
		code := e.enrol(t, "erin@example.com")
		_ = code
		e.d.DTAs[2].Stop()
		defer e.d.DTAs[2].Start()
		e.fail(t, "", "revoked on the server, but DTA 3 could not be told; run revoke again", "server", "revoke", "--server", e.admin, "--ca-file", e.ca, "erin@example.com")
	})
	t.Run("fail/unblock-id-and-idhash", func(t *testing.T) {
		e.fail(t, "", "name the identity by its ID or by --idhash, not both",
			"server", "unblock", "--server", e.admin, "--ca-file", e.ca, "--idhash", strings.Repeat("ab", 32), "carol@example.com")
	})
	t.Run("fail/unblock-bad-idhash", func(t *testing.T) {
		e.fail(t, "", "want 64 hex digits", "server", "unblock", "--server", e.admin, "--ca-file", e.ca, "--idhash", "xyz")
	})
	t.Run("fail/unblock-unknown-identity", func(t *testing.T) {
		e.fail(t, "", "no such identity", "server", "unblock", "--server", e.admin, "--ca-file", e.ca, "nobody@example.com")
	})
	t.Run("fail/bootstrap-wrong-fingerprint", func(t *testing.T) {
		e.fail(t, "", "the trust bundle does not match the pinned fingerprint",
			"client", "bootstrap", "--dir", t.TempDir(), "--bundle", e.url+"/v1/bundle", "--ca-file", e.ca, "--fingerprint", strings.Repeat("0", 64))
	})
	t.Run("fail/bootstrap-no-fingerprint", func(t *testing.T) {
		e.fail(t, "", "--fingerprint is required", "client", "bootstrap", "--dir", t.TempDir(), "--bundle", e.url+"/v1/bundle")
	})
	t.Run("fail/enroll-used-code", func(t *testing.T) {
		code := e.enrol(t, "frank@example.com")
		e.ok(t, testPIN+"\n", e.clientArgs("enroll", e.bootstrap(t), "--code", code, "--pin-stdin")...)
		e.fail(t, testPIN+"\n", "404 unknown_code: unknown, used or expired enrolment code; ask the administrator for a new enrolment code", e.clientArgs("enroll", e.bootstrap(t), "--code", code, "--pin-stdin")...)
	})
	t.Run("fail/enroll-dta-down", func(t *testing.T) {
		code := e.enrol(t, "grace@example.com")
		e.d.DTAs[2].Stop()
		dir := e.bootstrap(t)
		e.fail(t, testPIN+"\n", "DTA 3 ("+e.d.DTAs[2].URL+") is unreachable", e.clientArgs("enroll", dir, "--code", code, "--pin-stdin")...)
		if _, err := os.Stat(filepath.Join(dir, "token.json")); err == nil {
			t.Fatal("a token file was stored")
		}
		e.d.DTAs[2].Start()
		e.ok(t, testPIN+"\n", e.clientArgs("enroll", dir, "--code", code, "--pin-stdin")...) // the same command, later
	})
	t.Run("fail/enroll-over-an-enrolment", func(t *testing.T) {
		code := e.enrol(t, "ivan@example.com")
		errOut := e.fail(t, testPIN+"\n", `already holds the enrolment of "carol@example.com"`, e.clientArgs("enroll", enrolled, "--code", code, "--pin-stdin")...)
		if !strings.Contains(errOut, "replace it (--replace)") || strings.Contains(errOut, "WithReplace") {
			t.Fatalf("the way out is not named as a flag:\n%s", errOut)
		}
		dir := e.bootstrap(t)
		e.ok(t, testPIN+"\n", e.clientArgs("enroll", dir, "--code", code, "--pin-stdin")...) // the code was not used
	})
	t.Run("fail/enroll-short-pin", func(t *testing.T) {
		e.fail(t, "123\n", "the PIN does not meet the domain's PIN policy: at least 4 characters, this one has 3",
			e.clientArgs("enroll", e.bootstrap(t), "--code", e.enrol(t, "judy@example.com"), "--pin-stdin")...)
	})
	t.Run("fail/enroll-no-pin-source", func(t *testing.T) {
		e.fail(t, "", "give the PIN on standard input with --pin-stdin", e.clientArgs("enroll", e.bootstrap(t), "--code", "AAAA")...)
	})
	t.Run("fail/enroll-empty-pin", func(t *testing.T) {
		e.fail(t, "\n", "no PIN on standard input", e.clientArgs("enroll", e.bootstrap(t), "--code", "AAAA", "--pin-stdin")...)
	})
	t.Run("fail/enroll-no-pin-not-a-device", func(t *testing.T) {
		e.fail(t, "", "device", e.clientArgs("enroll", e.bootstrap(t), "--code", e.enrol(t, "heidi@example.com"), "--no-pin")...)
	})
	t.Run("fail/enroll-not-bootstrapped", func(t *testing.T) {
		e.fail(t, testPIN+"\n", "holds no pinned trust bundle; run bootstrap first", e.clientArgs("enroll", t.TempDir(), "--code", "AAAA", "--pin-stdin")...)
	})
	t.Run("fail/login-not-enrolled", func(t *testing.T) {
		e.fail(t, testPIN+"\n", "not enrolled; run enroll", e.clientArgs("login", e.bootstrap(t), "--pin-stdin")...)
	})
	t.Run("fail/login-wrong-pin", func(t *testing.T) {
		e.fail(t, "0000\n", "2 tries left before the identity is blocked", e.clientArgs("login", enrolled, "--pin-stdin")...)
		e.ok(t, testPIN+"\n", e.clientArgs("login", enrolled, "--pin-stdin")...) // resets the count
	})
	t.Run("fail/login-no-pin", func(t *testing.T) {
		e.fail(t, "", "give the PIN on standard input with --pin-stdin (never as a flag)", e.clientArgs("login", enrolled)...)
	})
	t.Run("fail/login-insecure-http-not-loopback", func(t *testing.T) {
		e.fail(t, testPIN+"\n", "--insecure-http works only with a loopback address",
			"client", "login", "--dir", enrolled, "--server", "http://auth.example.com:8440", "--insecure-http", "--pin-stdin")
	})
	t.Run("fail/login-server-down", func(t *testing.T) {
		e.fail(t, testPIN+"\n", "auth server", "client", "login", "--dir", enrolled, "--server", "https://127.0.0.1:1", "--pin-stdin")
	})
	t.Run("fail/login-token-file-readable", func(t *testing.T) {
		tf := filepath.Join(enrolled, "token.json")
		os.Chmod(tf, 0o644)
		defer os.Chmod(tf, 0o600)
		e.fail(t, testPIN+"\n", "the token file is readable by others; chmod 600", e.clientArgs("login", enrolled, "--pin-stdin")...)
	})
	t.Run("fail/permits-refresh-bad-token", func(t *testing.T) {
		e.fail(t, "not-a-token\n", "401 invalid_token", "client", "permits", "refresh", "--dir", enrolled, "--server", e.url, "--ca-file", e.ca, "--token-stdin")
	})
	t.Run("fail/permits-renew-wrong-pin", func(t *testing.T) {
		e.fail(t, "0000\n", "2 tries left before the identity is blocked",
			"client", "permits", "renew", "--dir", enrolled, "--server", e.url, "--ca-file", e.ca, "--pin-stdin")
		e.ok(t, testPIN+"\n", e.clientArgs("login", enrolled, "--pin-stdin")...) // resets the count
	})
	t.Run("fail/permits-renew-no-pin", func(t *testing.T) {
		e.fail(t, "", "client permits renew: give the PIN on standard input with --pin-stdin",
			"client", "permits", "renew", "--dir", enrolled, "--server", e.url, "--ca-file", e.ca)
	})
	t.Run("fail/permits-refresh-no-token", func(t *testing.T) {
		e.fail(t, "", "give an access token", "client", "permits", "refresh", "--dir", enrolled, "--server", e.url)
	})
	t.Run("fail/status-no-bundle", func(t *testing.T) {
		e.fail(t, "", "holds no pinned trust bundle; run bootstrap first", "client", "status", "--dir", t.TempDir())
	})
	t.Run("fail/status-tampered-bundle", func(t *testing.T) {
		dir := e.bootstrap(t)
		os.WriteFile(filepath.Join(dir, "bundle.json"), []byte("{}"), 0o644)
		e.fail(t, "", "was changed after bootstrap", "client", "status", "--dir", dir)
	})
	t.Run("fail/unknown-flag", func(t *testing.T) {
		// A PIN is never a flag.
		e.fail(t, "", "unknown flag --pin; did you mean --pin-stdin?", e.clientArgs("login", enrolled, "--pin", testPIN+"x")...)
	})
	t.Run("ok/status-not-enrolled", func(t *testing.T) {
		if out := e.ok(t, "", "client", "status", "--dir", e.bootstrap(t)); !strings.Contains(out, "enrolled:  no") {
			t.Fatal(out)
		}
		var sj statusJSON
		if out := e.ok(t, "", "client", "status", "--dir", e.bootstrap(t), "--json"); json.Unmarshal([]byte(out), &sj) != nil ||
			sj.Enrolled || sj.Domain != flowDomain || sj.ID != "" || sj.Permits == nil || !strings.Contains(out, `"permits": []`) {
			t.Fatalf("status --json, not enrolled:\n%s", out)
		}
	})
}
