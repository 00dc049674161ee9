//go:build unix

package cli

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/internal/testdomain"
	"github.com/polyroot/polyroot/internal/ticket"
	"github.com/polyroot/polyroot/pairing"
)

const flowDomain = "api.example.com"

// syncBuffer is an io.Writer safe for a command running in another goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(timeout time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// runCtx runs Main with ctx and returns its exit code and output.
func runCtx(ctx context.Context, args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := Main(ctx, append([]string{"polyroot"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// mustRun runs a command that must succeed and returns its stdout.
func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := run(args...)
	if code != 0 {
		t.Fatalf("polyroot %s: exit %d\n%s", strings.Join(args, " "), code, errOut)
	}
	return out
}

// testDomain is a three-DTA domain set up on disk with the CLI, from copies of the
// example configs.
type testDomain struct {
	dir          string
	configs      []string // dta-i.toml
	records      []string // dta-i.json
	registrar    string   // PEM key file
	registrarPub string
	bundle       string
	fingerprint  string
}

func setupDomain(t *testing.T) *testDomain {
	t.Helper()
	d := &testDomain{dir: t.TempDir()}
	if err := os.Mkdir(filepath.Join(d.dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	d.registrar = filepath.Join(d.dir, "data", "registrar.pem")
	d.registrarPub = strings.TrimSpace(mustRun(t, "registrar", "keygen", "--out", d.registrar))
	if fi, err := os.Stat(d.registrar); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("registrar key file: %v, mode %v", err, fi.Mode())
	}
	for i := 1; i <= 3; i++ {
		name := "dta-" + string(rune('0'+i))
		raw, err := os.ReadFile(filepath.Join(examplesDir(t), name+".toml"))
		if err != nil {
			t.Fatal(err)
		}
		cfg := filepath.Join(d.dir, name+".toml")
		if err := os.WriteFile(cfg, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		rec := filepath.Join(d.dir, "data", name+".json")
		mustRun(t, "dta", "init", "--config", cfg, "--domain", flowDomain, "--url", "http://127.0.0.1:844"+string(rune('0'+i)), "--out", rec)
		d.configs, d.records = append(d.configs, cfg), append(d.records, rec)
	}
	d.bundle = filepath.Join(d.dir, "data", "bundle.json")
	args := []string{"bundle", "assemble", "--domain", flowDomain, "--registrar-key", d.registrar, "--out", d.bundle}
	for _, r := range d.records {
		args = append(args, "--record", r)
	}
	d.fingerprint = strings.TrimSpace(mustRun(t, args...))
	return d
}

func loadRecord(t *testing.T, path string) bundle.DTA {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r bundle.DTA
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// serveProc is `polyroot dta serve` or `polyroot server serve` running in process.
type serveProc struct {
	url, metricsURL string // the API's; /metrics on the operations listener
	adminURL        string // the admin listener's, if it has one
	stdout, stderr  *syncBuffer
	done            chan int
}

var (
	readyLine   = regexp.MustCompile(`ready at (\S+) `)
	metricsLine = regexp.MustCompile(`; metrics at (\S+)\)`)
	adminLine   = regexp.MustCompile(`; admin API at (\S+?)[;)]`)
	stoppedLine = regexp.MustCompile(`msg"?[:=]"?stopped`) // JSON or text
)

func startServe(t *testing.T, ctx context.Context, args ...string) *serveProc {
	t.Helper()
	return startProc(t, ctx, append([]string{"dta", "serve"}, args...)...)
}

// startProc runs `polyroot args…` in a goroutine until it prints its ready line. Its
// metrics listen on a free port (tests run in parallel: the default ports would clash).
func startProc(t *testing.T, ctx context.Context, args ...string) *serveProc {
	t.Helper()
	if !slices.Contains(args, "--metrics-listen") {
		args = append(slices.Clone(args), "--metrics-listen", "127.0.0.1:0")
	}
	s := &serveProc{stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan int, 1)}
	go func() {
		s.done <- Main(ctx, append([]string{"polyroot"}, args...), s.stdout, s.stderr)
	}()
	var exited bool
	ok := waitFor(30*time.Second, func() bool {
		select {
		case code := <-s.done:
			s.done <- code
			exited = true
			return true
		default:
		}
		return readyLine.MatchString(s.stdout.String())
	})
	if !ok || exited {
		t.Fatalf("%v did not get ready (exited %v)\nstdout: %s\nstderr: %s", args, exited, s.stdout, s.stderr)
	}
	s.url = readyLine.FindStringSubmatch(s.stdout.String())[1]
	if m := metricsLine.FindStringSubmatch(s.stdout.String()); m != nil {
		s.metricsURL = m[1]
	}
	if m := adminLine.FindStringSubmatch(s.stdout.String()); m != nil {
		s.adminURL = m[1]
	}
	return s
}

// selfSigned writes a self-signed certificate for 127.0.0.1 and returns the files and
// a pool that trusts it.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "dta.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func get(t *testing.T, c *http.Client, url string) (int, []byte) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// TestOperatorFlow is the whole operator flow through the command: registrar keygen,
// three dta init, bundle assemble, fingerprint, three dta serve (one over HTTPS),
// requests, SIGHUP reload, and a clean stop on cancellation.
func TestOperatorFlow(t *testing.T) {
	clearEnv(t)
	t.Setenv(envPassphrase, "correct horse battery staple")
	t.Setenv(envScryptLogN, "10")
	d := setupDomain(t)

	// The fingerprint: printed by assemble, by fingerprint, and the SHA-256 of the file.
	raw, err := os.ReadFile(d.bundle)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	if fp := strings.TrimSpace(mustRun(t, "bundle", "fingerprint", d.bundle)); fp != d.fingerprint || fp != hex.EncodeToString(sum[:]) {
		t.Fatalf("fingerprints: assemble %s, fingerprint %s, sha256 %x", d.fingerprint, fp, sum)
	}
	b, err := bundle.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if b.Domain != flowDomain || b.Mode != "additive" || b.Threshold != 3 || b.PermitPeriod != 86400 || b.RegistrarKey != d.registrarPub {
		t.Fatalf("bundle %+v", b)
	}
	for i, r := range d.records {
		if rec := loadRecord(t, r); !reflect.DeepEqual(rec, b.DTAs[i]) {
			t.Fatalf("bundle DTA %d %+v, record %+v", i+1, b.DTAs[i], rec)
		}
	}

	certFile, keyFile, pool := selfSigned(t, d.dir)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer client.CloseIdleConnections()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var servers []*serveProc
	for i, cfg := range d.configs {
		args := []string{"--config", cfg, "--listen", "127.0.0.1:0", "--checkpoint-interval", "100ms"}
		if i == 2 {
			args = append(args, "--tls-cert", certFile, "--tls-key", keyFile)
		}
		servers = append(servers, startServe(t, ctx, args...))
	}
	if !strings.HasPrefix(servers[2].url, "https://") || !strings.HasPrefix(servers[0].url, "http://") {
		t.Fatalf("URLs %s, %s", servers[0].url, servers[2].url)
	}
	for i, s := range servers {
		code, body := get(t, client, s.url+"/v1/record")
		var rec bundle.DTA
		if code != http.StatusOK || json.Unmarshal(body, &rec) != nil || !reflect.DeepEqual(rec, b.DTAs[i]) {
			t.Fatalf("DTA %d /v1/record: %d %s", i+1, code, body)
		}
		if code, body := get(t, client, s.url+"/readyz"); code != http.StatusOK || !strings.HasPrefix(string(body), `{"status":"ready",`) {
			t.Fatalf("DTA %d /readyz: %d %s", i+1, code, body)
		}
	}

	// A ticket signed with the registrar key file gets a share, with a valid promise.
	priv, err := readRegistrarKey(d.registrar)
	if err != nil {
		t.Fatal(err)
	}
	var id [32]byte
	rand.Read(id[:])
	tk, err := ticket.Sign(ticket.Ticket{Domain: flowDomain, Kind: ticket.KindClient, SealKey: testdomain.SealKey, IDHash: hex.EncodeToString(id[:]), NotAfter: time.Now().Add(time.Hour)}, priv)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"ticket": tk})
	resp, err := client.Post(servers[2].url+"/v1/shares/client", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var share struct {
		Shares []struct {
			Sealed  []byte `json:"sealed"`
			Entry   []byte `json:"entry"`
			Promise struct {
				Index uint64 `json:"index"`
			} `json:"promise"`
		} `json:"shares"`
	}
	json.NewDecoder(resp.Body).Decode(&share)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(share.Shares) != 1 || len(share.Shares[0].Sealed) != 32+pairing.G1Size+pairing.DLEQProofSize+16 {
		t.Fatalf("client share over HTTPS: %d %+v", resp.StatusCode, share)
	}

	// SIGHUP reloads the keys and the bundle of every running DTA.
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for i, s := range servers {
		if !waitFor(10*time.Second, func() bool {
			return strings.Contains(s.stderr.String(), "reloaded keys and trust bundle")
		}) {
			t.Fatalf("DTA %d did not reload on SIGHUP:\n%s", i+1, s.stderr)
		}
	}

	// A SIGHUP with a bad bundle file keeps what is in use.
	if err := os.WriteFile(d.bundle, bytes.Replace(raw, []byte("8441"), []byte("9441"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	for i, s := range servers {
		if !waitFor(10*time.Second, func() bool { return strings.Contains(s.stderr.String(), "reload failed") }) {
			t.Fatalf("DTA %d took a tampered bundle on SIGHUP:\n%s", i+1, s.stderr)
		}
		if code, _ := get(t, client, s.url+"/readyz"); code != http.StatusOK {
			t.Fatalf("DTA %d not ready after a failed reload", i+1)
		}
	}
	// A bundle that names an anchoring these DTAs do not anchor by needs a restart.
	args := []string{"bundle", "assemble", "--domain", flowDomain, "--registrar-key", d.registrar, "--out", d.bundle, "--replace",
		"--chain-id", "11155111", "--contract", "0x5FbDB2315678afecb367f032d93F642f64180aa3"}
	for _, r := range d.records {
		args = append(args, "--record", r)
	}
	if code, _, errOut := run(args...); code != 0 {
		t.Fatalf("bundle assemble: exit %d\n%s", code, errOut)
	}
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	for i, s := range servers {
		if !waitFor(10*time.Second, func() bool { return strings.Contains(s.stderr.String(), "names another anchoring") }) {
			t.Fatalf("DTA %d took a bundle with another anchoring on SIGHUP:\n%s", i+1, s.stderr)
		}
	}
	if err := os.WriteFile(d.bundle, raw, 0o644); err != nil {
		t.Fatal(err)
	}

	// Cancelling the context stops every server cleanly.
	cancel()
	for i, s := range servers {
		select {
		case code := <-s.done:
			if code != 0 || !stoppedLine.MatchString(s.stderr.String()) {
				t.Fatalf("DTA %d exit %d\n%s", i+1, code, s.stderr)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("DTA %d did not stop", i+1)
		}
	}
	// Its log is closed and can be reopened: a second serve on the same data starts.
	ctx2, cancel2 := context.WithCancel(context.Background())
	s := startServe(t, ctx2, "--config", d.configs[0], "--listen", "127.0.0.1:0")
	cancel2()
	if code := <-s.done; code != 0 {
		t.Fatalf("restart: exit %d\n%s", code, s.stderr)
	}
}

// TestFailures checks exit codes and messages of operator mistakes.
func TestFailures(t *testing.T) {
	clearEnv(t)
	t.Setenv(envPassphrase, "correct horse battery staple")
	t.Setenv(envScryptLogN, "10")
	d := setupDomain(t)
	write := func(name string, data []byte, mode os.FileMode) string {
		p := filepath.Join(d.dir, name)
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	rec1, _ := os.ReadFile(d.records[0])
	badCommit := write("bad-commitment.json", bytes.Replace(rec1, []byte(`"commitment": "`), []byte(`"commitment": "00`), 1), 0o644)
	notJSON := write("not-json.json", []byte("index: 1\n"), 0o644)
	regKey, _ := os.ReadFile(d.registrar)
	readableKey := write("readable.pem", regKey, 0o600)
	os.Chmod(readableKey, 0o644)
	bundleRaw, _ := os.ReadFile(d.bundle)
	tampered := write("tampered.json", bytes.Replace(bundleRaw, []byte("127.0.0.1:8441"), []byte("127.0.0.1:9441"), 1), 0o644)
	assemble := func(extra ...string) []string {
		return append([]string{"bundle", "assemble", "--domain", flowDomain, "--registrar-key", d.registrar, "--out", filepath.Join(d.dir, "b2.json")}, extra...)
	}
	dta2Keys := filepath.Join(d.dir, "data", "dta-2-keys")

	cases := []struct {
		name    string
		env     map[string]string // "" unsets
		args    []string
		wantErr string
	}{
		{"fail/init-twice", nil, []string{"dta", "init", "--config", d.configs[0], "--domain", flowDomain, "--url", "http://127.0.0.1:8441"},
			"the keystore already holds master-share; refusing to overwrite it"},
		{"fail/missing-passphrase", map[string]string{envPassphrase: ""},
			[]string{"dta", "init", "--domain", flowDomain, "--index", "4", "--url", "http://127.0.0.1:8444", "--keystore-dir", filepath.Join(d.dir, "k4")},
			"the file keystore needs its passphrase in the environment variable POLYROOT_KEYSTORE_PASSPHRASE"},
		{"fail/init-bad-url", nil, []string{"dta", "init", "--domain", flowDomain, "--index", "4", "--url", "dta4.example.net", "--keystore-dir", filepath.Join(d.dir, "k4")},
			"--url: \"dta4.example.net\" is not an http(s)://host[:port] URL"},
		{"fail/bundle-bad-record", nil, assemble("--record", d.records[0], "--record", badCommit),
			"record " + badCommit + ": bundle: invalid trust bundle: DTA 1 commitment"},
		{"fail/bundle-record-not-json", nil, assemble("--record", d.records[0], "--record", notJSON), "record " + notJSON + ": not a DTA record"},
		{"fail/bundle-one-dta", nil, assemble("--record", d.records[0]), "a bundle needs at least two DTAs"},
		{"fail/bundle-out-exists", nil, []string{"bundle", "assemble", "--domain", flowDomain, "--registrar-key", d.registrar,
			"--record", d.records[0], "--record", d.records[1], "--out", d.bundle}, "exists: clients may have pinned it; give --replace to overwrite it"},
		{"fail/bundle-record-other-domain", nil, []string{"bundle", "assemble", "--domain", "api.example.org", "--registrar-key", d.registrar,
			"--record", d.records[0], "--record", d.records[1], "--out", filepath.Join(d.dir, "b3.json")}, "is it a record of another domain?"},
		{"fail/bundle-duplicate-record", nil, assemble("--record", d.records[0], "--record", d.records[0]), "are both DTA 1"},
		{"fail/bundle-chain-id-alone", nil, assemble("--record", d.records[0], "--record", d.records[1], "--chain-id", "5"),
			"--chain-id and --contract go together"},
		{"fail/bundle-bad-contract", nil, assemble("--record", d.records[0], "--record", d.records[1], "--chain-id", "5", "--contract", "0x12"),
			"--contract \"0x12\": want the IssuanceLog contract's address"},
		{"fail/bundle-additive-threshold", nil, assemble("--record", d.records[0], "--record", d.records[1], "--threshold", "1"),
			"additive mode needs all 2 DTAs"},
		{"fail/bundle-threshold-too-high", nil, assemble("--mode", "threshold", "--threshold", "3", "--record", d.records[0], "--record", d.records[1]),
			"threshold mode needs --threshold between 2 and 2"},
		{"fail/bundle-threshold-without-dkg", nil, assemble("--mode", "threshold", "--threshold", "2", "--record", d.records[0], "--record", d.records[1]),
			"needs master shares from a distributed key generation"},
		{"fail/bundle-readable-registrar-key", nil, []string{"bundle", "assemble", "--domain", flowDomain, "--registrar-key", readableKey,
			"--record", d.records[0], "--record", d.records[1], "--out", filepath.Join(d.dir, "b4.json")}, "has mode 0644: the group or others can read it"},
		{"fail/registrar-keygen-exists", nil, []string{"registrar", "keygen", "--out", d.registrar}, "never overwritten"},
		{"fail/fingerprint-tampered", nil, []string{"bundle", "fingerprint", tampered}, "registrar signature does not verify"},
		{"fail/serve-index-not-in-bundle", nil, []string{"dta", "serve", "--config", d.configs[0], "--listen", "127.0.0.1:0", "--index", "4"},
			"lists DTA 1, 2, 3, not DTA 4"},
		{"fail/serve-keys-do-not-match-bundle", nil, []string{"dta", "serve", "--config", d.configs[0], "--listen", "127.0.0.1:0", "--keystore-dir", dta2Keys},
			"the master share in the keystore does not match commitment C_1 in the trust bundle"},
		{"fail/serve-wrong-passphrase", map[string]string{envPassphrase: "wrong"},
			[]string{"dta", "serve", "--config", d.configs[0], "--listen", "127.0.0.1:0"}, "wrong passphrase"},
		{"fail/serve-tampered-bundle", nil, []string{"dta", "serve", "--config", d.configs[0], "--listen", "127.0.0.1:0", "--bundle", tampered},
			"registrar signature does not verify"},
		{"fail/unknown-flag", nil, []string{"dta", "serve", "--no-such-flag"}, "dta serve: unknown flag --no-such-flag"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
				if v == "" {
					os.Unsetenv(k)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			code, _, errOut := runCtx(ctx, tc.args...)
			if code != 1 || !strings.Contains(errOut, tc.wantErr) {
				t.Fatalf("exit %d, stderr:\n%s\nwant exit 1 and %q", code, errOut, tc.wantErr)
			}
			if strings.Contains(errOut, "correct horse") {
				t.Fatal("the passphrase appears in the output")
			}
		})
	}

	t.Run("bundle-anchoring", func(t *testing.T) {
		// The bundle names the chain and the contract; a DTA without that chain does not start.
		const contract = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
		out := filepath.Join(d.dir, "anchored.json")
		args := append(assemble("--record", d.records[0], "--record", d.records[1], "--record", d.records[2],
			"--chain-id", "11155111", "--contract", contract), "--out", out)
		if code, _, errOut := run(args...); code != 0 {
			t.Fatalf("exit %d:\n%s", code, errOut)
		}
		raw, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		b, err := bundle.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if a := b.Anchoring; a == nil || a.ChainID != 11155111 || a.Contract != strings.ToLower(contract) {
			t.Fatalf("anchoring %+v", a)
		}
		code, _, errOut := run("dta", "serve", "--config", d.configs[0], "--listen", "127.0.0.1:0", "--bundle", out)
		if want := "the trust bundle says the logs are anchored on chain 11155111 at contract " + strings.ToLower(contract); code != 1 || !strings.Contains(errOut, want) {
			t.Fatalf("dta serve: exit %d, want %q:\n%s", code, want, errOut)
		}
	})
}
