//go:build unix

package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/polyroot/polyroot/internal/devnet"
	"github.com/polyroot/polyroot/internal/testbin"
)

// startDevnet runs `polyroot devnet --dir dir` (and args) until it says it is ready;
// it returns devnet.json, the summary it printed, and a function that stops it and
// checks that it stopped cleanly.
func startDevnet(t *testing.T, dir string, args ...string) (devnet.Info, string, func()) {
	t.Helper()
	info, summary, _, stop := startDevnetLogs(t, dir, args...)
	return info, summary, stop
}

// startDevnetLogs is startDevnet that also returns the devnet's stderr (its logs).
func startDevnetLogs(t *testing.T, dir string, args ...string) (devnet.Info, string, *syncBuffer, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out, errOut := &syncBuffer{}, &syncBuffer{}
	done := make(chan int, 1)
	go func() { done <- Main(ctx, append([]string{"polyroot", "devnet", "--dir", dir}, args...), out, errOut) }()
	exited := false
	ok := waitFor(90*time.Second, func() bool {
		select {
		case code := <-done:
			done <- code
			exited = true
			return true
		default:
		}
		return strings.Contains(out.String(), "export POLYROOT_CONTRACT=") // the summary's last line
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
	return info, out.String(), errOut, func() {
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

// printed is the command of the devnet's summary that starts with prefix (after any
// VAR=value assignments): the assignments, then the arguments after "polyroot".
// A line that is exactly prefix comes before one that only starts with it.
func printed(t *testing.T, summary, prefix string) []string {
	t.Helper()
	var found []string
	for _, line := range strings.Split(summary, "\n") {
		line, _, _ = strings.Cut(line, " # ") // a comment for the user
		f := strings.Fields(line)
		i := 0
		for i < len(f) && strings.Contains(f[i], "=") {
			i++
		}
		cmd := strings.Join(f[i:], " ")
		if cmd != prefix && (found != nil || !strings.HasPrefix(cmd, prefix+" ")) {
			continue
		}
		if strings.ContainsAny(line, `'"`) {
			t.Fatalf("quoted words in %q: this test splits on spaces", line)
		}
		found = slices.Delete(f, i, i+1)
		if cmd == prefix {
			break
		}
	}
	if found == nil {
		t.Fatalf("the devnet's summary has no %q command:\n%s", prefix, summary)
	}
	return found
}

// exports sets the variables of the summary's export lines, as a shell would.
func exports(t *testing.T, summary string) {
	t.Helper()
	wd, _ := os.Getwd()
	n := 0
	for _, line := range strings.Split(summary, "\n") {
		if kv, ok := strings.CutPrefix(strings.TrimSpace(line), "export "); ok {
			k, v, _ := strings.Cut(kv, "=")
			v = os.Expand(strings.Trim(v, `"`), func(string) string { return wd }) // $PWD
			t.Setenv(k, v)
			n++
		}
	}
	if n == 0 {
		t.Fatalf("no export lines in the devnet's summary:\n%s", summary)
	}
}

// runPrinted runs a command of the devnet's summary, which must succeed, with its
// leading VAR=value assignments for it alone; it returns stdout and stderr.
func runPrinted(t *testing.T, stdin string, args ...string) (string, string) {
	t.Helper()
	for len(args) > 0 && strings.Contains(args[0], "=") {
		k, v, _ := strings.Cut(args[0], "=")
		t.Setenv(k, v)
		defer os.Unsetenv(k)
		args = args[1:]
	}
	code, out, errOut := runIn(stdin, args...)
	if code != 0 {
		t.Fatalf("polyroot %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out, errOut
}

// TestDevnet: start, then run the commands the devnet printed as a user would: enrol
// and log in over TLS trusting the devnet CA, audit the DTAs' logs through the chain's
// JSON-RPC endpoint and verify alice's shares in them; stop, restart on the same
// directory, log in again with only the exported variables.
func TestDevnet(t *testing.T) {
	clearEnv(t)
	t.Setenv(envScryptLogN, "10")
	dir := filepath.Join(t.TempDir(), "devnet")
	t.Chdir(t.TempDir()) // the printed commands use the client directory alice, here
	info, summary, stop := startDevnet(t, dir, "--anchor-period", "300ms")
	for _, f := range []string{"bundle.json", "bundle.sha256", "admin-token", "devnet.json", "passphrase", "registrar.key", "ca.pem", "ca.key"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if secret := f == "admin-token" || f == "passphrase" || f == "registrar.key" || f == "ca.key"; secret && fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s has mode %v", f, fi.Mode())
		}
	}
	if len(info.DTAURLs) != 3 || info.Chain != "embedded" || !regexp.MustCompile(`^0x[0-9a-fA-F]{40}$`).MatchString(info.Contract) ||
		!strings.HasPrefix(info.ServerURL, "https://127.0.0.1:") || !strings.HasPrefix(info.RPCURL, "http://127.0.0.1:") ||
		info.CAFile != filepath.Join(dir, "ca.pem") {
		t.Fatalf("devnet.json: %+v", info)
	}
	sha, _ := os.ReadFile(filepath.Join(dir, "bundle.sha256"))
	if strings.TrimSpace(string(sha)) != info.Fingerprint {
		t.Fatalf("bundle.sha256 %q, devnet.json %q", sha, info.Fingerprint)
	}
	ok := func(stdin string, args ...string) string {
		t.Helper()
		out, _ := runPrinted(t, stdin, args...)
		return out
	}
	const alice = "alice@example.com"
	code := strings.TrimSpace(ok("", printed(t, summary, "polyroot server enrol")...))
	ok("", printed(t, summary, "polyroot client bootstrap")...)
	t.Setenv(envEnrolmentCode, code) // what the prompt asks for at a terminal
	ok(testPIN+"\n", append(printed(t, summary, "polyroot client enroll"), "--pin-stdin")...)
	os.Unsetenv(envEnrolmentCode)
	login := append(printed(t, summary, "polyroot client login"), "--pin-stdin")
	if out := ok(testPIN+"\n", login...); !strings.Contains(out, `logged in to `+info.Domain+` as "`+alice+`"`) {
		t.Fatalf("login: %s", out)
	}
	// Without the devnet CA the server is not trusted: it is TLS, not plain HTTP.
	i := slices.Index(login, "--ca-file")
	if c, _, errOut := runIn(testPIN+"\n", slices.Delete(slices.Clone(login), i, i+2)...); c == 0 || !strings.Contains(errOut, "is not trusted") {
		t.Fatalf("login without --ca-file: exit %d, %s", c, errOut)
	}
	token := strings.TrimSpace(ok(testPIN+"\n", append(login, "--print-token")...))

	// The audit through the chain's JSON-RPC endpoint, then alice's receipts, once
	// anchored, included under the anchors.
	if out := ok("", printed(t, summary, "polyroot audit")...); !strings.Contains(out, "Every log is consistent with its anchors.") {
		t.Fatalf("audit: %s", out)
	}
	fetch, out := printed(t, summary, "polyroot client verify-issuance --dir alice --fetch"), ""
	if !waitFor(30*time.Second, func() bool {
		out = ok("", fetch...)
		return strings.Contains(out, " 0 receipts not yet anchored")
	}) {
		t.Fatalf("alice's receipts are not anchored: %s", out)
	}
	if out := ok("", printed(t, summary, "polyroot client verify-issuance --dir alice")...); !regexp.MustCompile(`\n\d+ included, 0 pending, 0 FAILED`).MatchString(out) {
		t.Fatalf("verify-issuance: %s", out)
	}
	stop()

	info2, summary2, stop2 := startDevnet(t, dir)
	defer stop2()
	if info2.Fingerprint != info.Fingerprint || info2.ServerURL != info.ServerURL || info2.RPCURL != info.RPCURL {
		t.Fatalf("restart changed the devnet: %+v → %+v", info, info2)
	}
	// The exported variables are those the commands read: no flag needed.
	exports(t, summary2)
	if out := ok(testPIN+"\n", "client", "login", "--pin-stdin"); !strings.Contains(out, `as "`+alice+`"`) {
		t.Fatalf("login after restart: %s", out)
	}
	ok("", "server", "enrolments", alice)
	// The token issued before the restart is still valid (same token key, same state).
	ok(token+"\n", "client", "permits", "refresh", "--token-stdin")
}

// TestDevnetPostgres: with --store postgres the devnet migrates a fresh database and
// its auth server keeps its state there: alice enrols and logs in with the printed
// commands, and her enrolment is a row of the database. The URL's password (from the
// environment, as server serve reads it) is in neither the summary nor the logs; a
// restart without --store postgres is refused.
func TestDevnetPostgres(t *testing.T) {
	clearEnv(t)
	t.Setenv(envScryptLogN, "10")
	pg := testbin.StartPostgres(t)
	const secret = "Devnet5ecretPw" // the test cluster trusts loopback: never checked
	dbURL := strings.Replace(pg.CreateDatabase(t), "polyroot@", "polyroot:"+secret+"@", 1)
	t.Setenv(envDatabaseURL, dbURL)
	dir := filepath.Join(t.TempDir(), "devnet")
	t.Chdir(t.TempDir())
	info, summary, logs, stop := startDevnetLogs(t, dir, "--store", "postgres")
	if info.Store != "postgres" || !regexp.MustCompile(`state store: PostgreSQL, database test\d+ at 127\.0\.0\.1:\d+ as polyroot \(schema version \d+\)`).MatchString(summary) {
		t.Fatalf("store %q, summary:\n%s", info.Store, summary)
	}
	ok := func(stdin string, args ...string) string {
		t.Helper()
		out, _ := runPrinted(t, stdin, args...)
		return out
	}
	const alice = "alice@example.com"
	code := strings.TrimSpace(ok("", printed(t, summary, "polyroot server enrol")...))
	ok("", printed(t, summary, "polyroot client bootstrap")...)
	t.Setenv(envEnrolmentCode, code) // what the prompt asks for at a terminal
	ok(testPIN+"\n", append(printed(t, summary, "polyroot client enroll"), "--pin-stdin")...)
	os.Unsetenv(envEnrolmentCode)
	if out := ok(testPIN+"\n", append(printed(t, summary, "polyroot client login"), "--pin-stdin")...); !strings.Contains(out, `as "`+alice+`"`) {
		t.Fatalf("login: %s", out)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM enrolments WHERE app_id = $1", alice).Scan(&n); err != nil || n != 1 {
		t.Fatalf("alice's enrolments in PostgreSQL: %d, %v", n, err)
	}
	stop()
	if strings.Contains(summary+logs.String(), secret) {
		t.Fatal("the database URL's password is in the devnet's output")
	}
	if _, err := os.Stat(filepath.Join(dir, "server", "data", "server.db")); !os.IsNotExist(err) {
		t.Fatalf("a postgres devnet made a bbolt state file (%v)", err)
	}
	// Restarted without --store postgres, it would come up with empty state.
	t.Setenv(envDatabaseURL, "")
	if code, _, errOut := run("devnet", "--dir", dir); code == 0 || !strings.Contains(errOut, "keeps its auth server's state in postgres since its first start") {
		t.Fatalf("restart on bbolt: exit %d, %s", code, errOut)
	}
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
		{"fail/one-dta", []string{"--dtas", "1"}, "1 DTAs: want 2 to 16"},
		{"fail/threshold-beyond-key-generation", []string{"--dtas", "4", "--threshold", "3"}, "threshold 3 of 4 DTAs: want 2 to 2 (a key generation needs at least 2t−1 DTAs)"},
		{"fail/chain", []string{"--chain", "ropsten"}, `chain "ropsten": want embedded or rpc`},
		{"fail/rpc-without-url", []string{"--chain", "rpc", "--key", "k"}, "the rpc chain needs an RPC URL and the key file"},
		{"fail/rpc-without-key", []string{"--chain", "rpc", "--rpc-url", "http://127.0.0.1:1"}, "the rpc chain needs an RPC URL and the key file"},
		{"fail/keystore", []string{"--keystore", "hsm"}, `--keystore "hsm": want file or vault`},
		{"fail/vault-without-token", []string{"--keystore", "vault", "--vault-addr", "https://127.0.0.1:8200"}, "needs a token in the environment variable VAULT_TOKEN"},
		{"fail/log-format", []string{"--log-format", "xml"}, `--log-format "xml"`},
		{"fail/store", []string{"--store", "mysql"}, `--store "mysql": want bbolt or postgres`},
		{"fail/postgres-without-url", []string{"--store", "postgres"}, "--store postgres needs the database URL"},
		{"fail/url-without-postgres", []string{"--database-url", "postgres://polyroot@127.0.0.1/x"}, "--database-url is for --store postgres"},
		{"fail/url-with-password", []string{"--store", "postgres", "--database-url", "postgres://polyroot:Pw0rd@127.0.0.1/x"}, "--database-url holds a password"},
		{"fail/url-with-password-setting", []string{"--store", "postgres", "--database-url", "host=127.0.0.1 password = Pw0rd"}, "--database-url holds a password"},
		{"fail/url-unparsable", []string{"--store", "postgres", "--database-url", "postgres://polyroot@127.0.0.1:notaport/x"}, "the database URL does not parse"},
		{"fail/postgres-unreachable", []string{"--store", "postgres", "--database-url", "postgres://polyroot@127.0.0.1:1/x?sslmode=disable&connect_timeout=5"},
			"the postgres state store: server: connecting to PostgreSQL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := run(append([]string{"devnet", "--dir", dir}, tc.args...)...)
			if code == 0 || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, stderr %q, want %q", code, errOut, tc.want)
			}
			if strings.Contains(errOut, "Pw0rd") {
				t.Fatalf("a password in the error: %s", errOut)
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

// TestDevnetThreshold: `polyroot devnet --dtas 5 --threshold 3` makes its shares with
// a distributed key generation; with two of its DTAs stopped, alice enrols, logs in
// and is revoked with the printed commands (the revocation holds: three DTAs, n-t+1,
// acknowledged it).
func TestDevnetThreshold(t *testing.T) {
	clearEnv(t)
	t.Setenv(envScryptLogN, "10")
	dir := filepath.Join(t.TempDir(), "devnet")
	t.Chdir(t.TempDir())
	info, summary, stop := startDevnet(t, dir, "--dtas", "5", "--threshold", "3")
	stop()
	if len(info.DTAURLs) != 5 {
		t.Fatalf("devnet.json: %+v", info)
	}
	if code, _, errOut := run("bundle", "fingerprint", info.Bundle); code != 0 || !strings.Contains(errOut, "threshold mode, 3 of 5 DTAs") {
		t.Fatalf("bundle fingerprint: exit %d, %s", code, errOut)
	}
	// The same devnet again, in this process, to stop two of its DTAs.
	d, err := devnet.Start(context.Background(), devnet.Options{Dir: dir, ScryptLogN: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, i := range []int{2, 4} {
		if err := d.StopDTA(i); err != nil {
			t.Fatal(err)
		}
	}
	ok := func(stdin string, args ...string) string {
		t.Helper()
		out, _ := runPrinted(t, stdin, args...)
		return out
	}
	exports(t, summary)
	code := strings.TrimSpace(ok("", printed(t, summary, "polyroot server enrol")...))
	ok("", printed(t, summary, "polyroot client bootstrap")...)
	t.Setenv(envEnrolmentCode, code) // what the prompt asks for at a terminal
	ok(testPIN+"\n", append(printed(t, summary, "polyroot client enroll"), "--pin-stdin")...)
	os.Unsetenv(envEnrolmentCode)
	if out := ok(testPIN+"\n", append(printed(t, summary, "polyroot client login"), "--pin-stdin")...); !strings.Contains(out, `as "alice@example.com"`) {
		t.Fatalf("login: %s", out)
	}
	if _, out := runPrinted(t, "", envAdminToken+"_FILE="+info.AdminToken, "server", "revoke", "alice@example.com"); !strings.Contains(out, "acknowledged by 3 DTAs (3 needed)") ||
		!strings.Contains(out, "keeps telling DTA 2, 4 in the background") {
		t.Fatalf("revoke: %s", out)
	}
}
