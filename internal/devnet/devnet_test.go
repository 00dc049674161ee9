package devnet

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"

	"github.com/polyroot/polyroot/client"
	"github.com/polyroot/polyroot/dta"
	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/internal/dkgnet"
	"github.com/polyroot/polyroot/internal/dtacmd"
	"github.com/polyroot/polyroot/internal/keystore"
	"github.com/polyroot/polyroot/internal/testbin"
	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/ledger"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func await(t *testing.T, what string, limit time.Duration, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(limit); !ok(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, limit)
		}
	}
}

func start(t *testing.T, opts Options) *Devnet {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = filepath.Join(t.TempDir(), "devnet")
	}
	opts.ScryptLogN = 10
	opts.PlainHTTP = opts.ServerTLSCert == "" // TLS with the devnet CA: internal/cli's TestDevnet
	d, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// requestsServed is the sum of a service's HTTP request counter, read from its
// metrics URL: it only grows while the service keeps running, and starts again from 0
// after a restart.
func requestsServed(t *testing.T, metricsURL, metric string) int {
	t.Helper()
	_, body := get(t, metricsURL)
	total := 0
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, metric+"{") {
			n, _ := strconv.Atoi(line[strings.LastIndexByte(line, ' ')+1:])
			total += n
		}
	}
	return total
}

// enrolAndLogIn enrols alice through the registrar API, bootstraps and enrols her
// client in a new directory, and logs her in; it returns the directory.
func enrolAndLogIn(t *testing.T, d *Devnet) (string, wire.EnrolmentCreated) {
	t.Helper()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "alice")
	var created wire.EnrolmentCreated
	if err := d.Admin(ctx, "enrolments", wire.EnrolmentRequest{ID: "alice@example.com"}, &created); err != nil {
		t.Fatal(err)
	}
	if err := client.Bootstrap(ctx, dir, d.Info.Bundle, d.Info.Fingerprint); err != nil {
		t.Fatal(err)
	}
	c, err := client.Open(dir, client.WithInsecureHTTP())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Enroll(ctx, d.Info.ServerURL, created.Code, []byte("2468"), false); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Login(ctx, d.Info.ServerURL, []byte("2468")); err != nil {
		t.Fatal(err)
	}
	return dir, created
}

// TestMetrics: the DTAs and the server export what operators watch, on their
// operations listeners only, each on a port of its own.
func TestMetrics(t *testing.T) {
	d := start(t, Options{DTAs: 4, DTAProbeInterval: 100 * time.Millisecond, AnchorPeriod: 200 * time.Millisecond})
	if d.DTAs() != 4 || len(d.Info.DTAURLs) != 4 {
		t.Fatalf("%d DTAs: %v", d.DTAs(), d.Info.DTAURLs)
	}
	enrolAndLogIn(t, d)
	check := func(url string, want ...string) {
		t.Helper()
		_, body := get(t, url)
		for _, w := range want {
			if !strings.Contains(body, w) {
				t.Errorf("%s lacks %s", url, w)
			}
		}
	}
	urls := append([]string{d.Info.ServerURL, d.Info.ServerMetricsURL}, append(d.Info.DTAURLs, d.Info.DTAMetricsURLs...)...)
	hosts := map[string]bool{}
	for _, u := range urls {
		hosts[hostPort(u)] = true
	}
	if len(hosts) != 2*(d.DTAs()+1) || len(d.Info.DTAMetricsURLs) != d.DTAs() {
		t.Fatalf("the services and their metrics do not have a port each: %v", urls)
	}
	for _, u := range append([]string{d.Info.ServerURL}, d.Info.DTAURLs...) {
		if code, _ := get(t, u+"/metrics"); code != http.StatusNotFound {
			t.Errorf("%s/metrics: %d, want 404: the metrics are not public", u, code)
		}
	}
	check(d.Info.DTAMetricsURLs[0],
		`polyroot_dta_issuance_total{kind="client",result="ok"} 1`, // issuances by result
		`polyroot_dta_issuance_seconds_bucket{kind="permit"`,       // latency
		"polyroot_dta_anchor_lag_entries ", "polyroot_dta_anchor_confirmed_size ", "polyroot_dta_anchor_error 0",
		`polyroot_dta_http_requests_total{route="/v1/shares/client",status="200"} 1`)
	check(d.Info.ServerMetricsURL,
		`polyroot_server_logins_total{result="ok",step="finish"} 1`,              // logins by result
		`polyroot_server_login_seconds_bucket{step="finish"`,                     // latency
		`polyroot_server_dta_up{dta="1"} 1`, `polyroot_server_dta_up{dta="4"} 1`, // DTA reachability
		`polyroot_server_registrar_total{action="enrol",result="ok"} 1`)

	// The DTAs are in the signed bundle: a restart keeps them, and refuses another N.
	d.Close()
	_, err := Start(context.Background(), Options{Dir: d.opts.Dir, DTAs: 3, ScryptLogN: 10, PlainHTTP: true})
	if err == nil || !strings.Contains(err.Error(), "--dtas 3: the devnet in "+d.opts.Dir+" has 4 DTAs since its first start") {
		t.Fatalf("a restart with another number of DTAs: %v", err)
	}
}

// TestReadinessWithAStoppedDTA: with a DTA stopped the server stays ready to serve
// logins: its /readyz is 200 "degraded" naming the DTA, and 200 "ready" again after the
// DTA restarts, with nothing else restarted.
func TestReadinessWithAStoppedDTA(t *testing.T) {
	d := start(t, Options{DTAProbeInterval: 100 * time.Millisecond})
	srv := d.Info.ServerURL
	var code int
	var body string
	await(t, "server ready", 10*time.Second, func() bool { code, body = get(t, srv+"/readyz"); return strings.Contains(body, `"status":"ready"`) })
	before := []int{requestsServed(t, d.Info.ServerMetricsURL, "polyroot_server_http_requests_total"),
		requestsServed(t, d.Info.DTAMetricsURLs[0], "polyroot_dta_http_requests_total")}

	if err := d.StopDTA(2); err != nil {
		t.Fatal(err)
	}
	await(t, "server degraded", 10*time.Second, func() bool { code, body = get(t, srv+"/readyz"); return strings.Contains(body, `"status":"degraded"`) })
	if want := `"dtas":"degraded: DTA 2 unreachable`; code != 200 || !strings.Contains(body, want) || strings.Contains(body, "DTA 1") {
		t.Fatalf("readyz with DTA 2 stopped: %d %s, want 200 with %q", code, body, want)
	}
	if code, body := get(t, d.Info.DTAURLs[0]+"/readyz"); code != 200 {
		t.Fatalf("DTA 1 readyz: %d %s", code, body)
	}

	if err := d.StartDTA(2); err != nil {
		t.Fatal(err)
	}
	await(t, "server ready again", 10*time.Second, func() bool { code, body = get(t, srv+"/readyz"); return strings.Contains(body, `"status":"ready"`) })
	after := []int{requestsServed(t, d.Info.ServerMetricsURL, "polyroot_server_http_requests_total"),
		requestsServed(t, d.Info.DTAMetricsURLs[0], "polyroot_dta_http_requests_total")}
	if after[0] <= before[0] || after[1] <= before[1] {
		t.Fatalf("request counters went from %v to %v: the server or DTA 1 restarted", before, after)
	}
	if err := d.StartDTA(2); err == nil {
		t.Fatal("StartDTA of a running DTA succeeded")
	}
}

// fundedKey is a new key funded by geth --dev's developer account.
func fundedKey(t *testing.T, g *testbin.Geth) *ecdsa.PrivateKey {
	t.Helper()
	ctx := context.Background()
	c, err := ledger.Dial(ctx, g.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	key, _ := crypto.GenerateKey()
	var accounts []common.Address
	if err := c.Client().CallContext(ctx, &accounts, "eth_accounts"); err != nil || len(accounts) == 0 {
		t.Fatalf("eth_accounts: %v %v", accounts, err)
	}
	value := (*hexutil.Big)(new(big.Int).Mul(big.NewInt(100), big.NewInt(params.Ether)))
	var h common.Hash
	if err := c.Client().CallContext(ctx, &h, "eth_sendTransaction",
		map[string]any{"from": accounts[0], "to": ledger.Address(key), "value": value}); err != nil {
		t.Fatal(err)
	}
	await(t, "funding", 30*time.Second, func() bool {
		b, err := c.BalanceAt(ctx, ledger.Address(key), nil)
		return err == nil && b.Sign() > 0
	})
	return key
}

// TestDevnetRPCAndVault runs the devnet on a real geth --dev with its secrets in a real
// Vault: alice enrols and logs in, the logs are anchored and audited on geth; a
// restart on the same directory keeps the contract, the keys and alice.
func TestDevnetRPCAndVault(t *testing.T) {
	if testing.Short() {
		t.Skip("starts geth and Vault")
	}
	g, v := testbin.StartGeth(t), testbin.StartVault(t)
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "devnet")
	keyFile := filepath.Join(t.TempDir(), "owner.key")
	if err := os.WriteFile(keyFile, []byte(hex.EncodeToString(crypto.FromECDSA(fundedKey(t, g)))), 0o600); err != nil {
		t.Fatal(err)
	}
	opts := Options{Dir: dir, Chain: "rpc", RPCURL: g.URL, KeyFile: keyFile, AnchorPeriod: 500 * time.Millisecond,
		Vault: &keystore.VaultConfig{Address: v.Addr, Token: v.RootToken, CAFile: v.CAFile, Path: "devnet-test"}}
	d := start(t, opts)
	if d.Info.Chain != "rpc" || d.Info.RPCURL != g.URL || !regexp.MustCompile(`^0x[0-9a-fA-F]{40}$`).MatchString(d.Info.Contract) {
		t.Fatalf("devnet info: %+v", d.Info)
	}
	// The secrets are in Vault, not in the directory.
	if _, err := os.Stat(filepath.Join(dir, "dta-1", "keys")); !os.IsNotExist(err) {
		t.Fatalf("a file keystore in the devnet directory: %v", err)
	}
	if _, err := d.DTAKeystore(1).Get(ctx, dta.SecretMasterShare); err != nil {
		t.Fatalf("DTA 1's master share is not in Vault: %v", err)
	}

	alice, created := enrolAndLogIn(t, d)
	// Every DTA anchors its log on geth; the audit finds alice's shares and no problem.
	raw, _ := os.ReadFile(d.Info.Bundle)
	b, err := bundle.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	// On a chain that outlives the devnet, the bundle names where the logs are anchored.
	if a := b.Anchoring; a == nil || a.ChainID != 1337 || a.Contract != strings.ToLower(d.Info.Contract) {
		t.Fatalf("the bundle's anchoring %+v, want chain 1337 and contract %s", a, d.Info.Contract)
	}
	cfg := ledger.AuditConfig{Bundle: b, Chain: d.Chain(), Contract: common.HexToAddress(d.Info.Contract)}
	var report *ledger.Report
	var history []ledger.IdentityEntry
	await(t, "anchors covering every log", time.Minute, func() bool {
		report, history, err = ledger.AuditWithIdentity(ctx, cfg, created.IDHash)
		if err != nil || !report.OK() {
			return false
		}
		for _, r := range report.DTAs {
			if r.CheckpointSize == 0 || len(r.Anchors) == 0 || r.Lag > 0 {
				return false
			}
		}
		return true
	})
	if len(history) < d.DTAs() {
		t.Fatalf("alice's history has %d entries, want at least one per DTA", len(history))
	}

	contract := d.Info.Contract
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	// Its bundle pins the chain: the embedded one is refused.
	embedded := opts
	embedded.Chain, embedded.RPCURL, embedded.KeyFile = "", "", ""
	if d, err := Start(ctx, embedded); err == nil || !strings.Contains(err.Error(), "start it with --chain rpc on that chain") {
		if err == nil {
			d.Close()
		}
		t.Fatalf("an embedded chain for a bundle anchored on geth: %v", err)
	}
	d = start(t, opts)
	if d.Info.Contract != contract {
		t.Fatalf("restart deployed a new contract: %s → %s", contract, d.Info.Contract)
	}
	c, err := client.Open(alice, client.WithInsecureHTTP())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Login(ctx, d.Info.ServerURL, []byte("2468")); err != nil {
		t.Fatalf("login after restart: %v", err)
	}
}

// TestDevnetCtrlC runs `polyroot devnet` as a process: SIGINT (Ctrl-C) stops every
// service and the process exits 0; started again on the same directory it is ready.
func TestDevnetCtrlC(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the polyroot binary")
	}
	bin := testbin.Polyroot(t, t.TempDir())
	dir := filepath.Join(t.TempDir(), "devnet")
	for round := 1; round <= 2; round++ {
		var out, errOut syncBuffer
		cmd := exec.Command(bin, "devnet", "--dir", dir)
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		await(t, "devnet ready", time.Minute, func() bool {
			select {
			case err := <-exited:
				t.Fatalf("round %d: devnet exited before it was ready: %v\n%s", round, err, errOut.String())
			default:
			}
			return strings.Contains(out.String(), "ready (local use only")
		})
		cmd.Process.Signal(os.Interrupt)
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("round %d: after Ctrl-C: %v\n%s", round, err, errOut.String())
			}
		case <-time.After(time.Minute):
			cmd.Process.Kill()
			t.Fatalf("round %d: devnet did not stop on Ctrl-C", round)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a process's output and the test together.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestHalfMadeDevnet: a directory whose first start stopped after the DTAs' keys were
// made, but before the bundle, is refused with the remedy.
func TestHalfMadeDevnet(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "devnet")
	d := start(t, Options{Dir: dir})
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "bundle.json"))
	_, err := Start(context.Background(), Options{Dir: dir, ScryptLogN: 10})
	if err == nil || !strings.Contains(err.Error(), "an earlier first start stopped half-way: remove "+dir) {
		t.Fatalf("Start on a half-made devnet: %v", err)
	}
}

// TestSharedDirRefused: a directory that others can write to is refused before the
// devnet reads anything from it: another user could have planted its secrets there.
func TestSharedDirRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shared")
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil { // past the umask
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "admin-token"), []byte("planted-admin-token-0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Start(context.Background(), Options{Dir: dir, ScryptLogN: 10})
	if err == nil || !strings.Contains(err.Error(), "another user could plant the devnet's secrets there") {
		t.Fatalf("Start in a world-writable directory: %v", err)
	}
}

// TestMetricsPortsForAnOldDevnet: a devnet.json written before the metrics had their
// own listeners gets metrics addresses that clash with none of its services'.
func TestMetricsPortsForAnOldDevnet(t *testing.T) {
	dir := t.TempDir()
	held := &portPicker{taken: map[string]bool{}}
	old := Info{Domain: "devnet.localhost"}
	for i := 0; i <= DefaultDTAs; i++ {
		a, err := held.pick(0)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			old.ServerURL = "http://" + a
		} else {
			old.DTAURLs = append(old.DTAURLs, "http://"+a)
		}
	}
	held.close() // free again: the pick must avoid them anyway
	raw, _ := json.Marshal(old)
	if err := os.WriteFile(filepath.Join(dir, "devnet.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	d := &Devnet{opts: Options{Dir: dir, Chain: "embedded", PlainHTTP: true}}
	if err := d.loadInfo(d.opts); err != nil {
		t.Fatal(err)
	}
	if d.Info.ServerURL != old.ServerURL || !slices.Equal(d.Info.DTAURLs, old.DTAURLs) {
		t.Fatalf("the services moved: %+v", d.Info)
	}
	seen := map[string]bool{}
	for _, u := range append([]string{d.Info.ServerURL, d.Info.ServerMetricsURL}, append(d.Info.DTAURLs, d.Info.DTAMetricsURLs...)...) {
		if seen[hostPort(u)] {
			t.Fatalf("%s is used twice: %+v", hostPort(u), d.Info)
		}
		seen[hostPort(u)] = true
	}
	if len(seen) != 2*(d.DTAs()+1) || !strings.HasSuffix(d.Info.ServerMetricsURL, "/metrics") {
		t.Fatalf("%+v", d.Info)
	}
}

// TestThresholdDevnet: a 3-of-5 devnet makes its master shares with a distributed key
// generation among its DTAs; with two DTAs stopped a client enrols, receives permits
// and logs in; a restart keeps the mode and refuses another threshold.
func TestThresholdDevnet(t *testing.T) {
	d := start(t, Options{DTAs: 5, Threshold: 3, DTAProbeInterval: 100 * time.Millisecond})
	b, _, err := dtacmd.ReadBundle(d.Info.Bundle)
	if err != nil || b.Mode != "threshold" || b.Threshold != 3 || len(b.DTAs) != 5 {
		t.Fatalf("bundle: %+v %v", b, err)
	}
	if d.threshold != 3 || d.transcript != filepath.Join(d.opts.Dir, transcriptFile) { // the summary's threshold line
		t.Fatalf("the summary would say threshold %d, transcript %q", d.threshold, d.transcript)
	}
	raw, err := os.ReadFile(filepath.Join(d.opts.Dir, transcriptFile))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := dkgnet.ParseTranscript(raw)
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(raw); b.TranscriptSHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("the bundle names transcript %q", b.TranscriptSHA256)
	}
	res, err := tr.Verify()
	if err != nil || len(res.Qualified) != 5 {
		t.Fatalf("transcript: %v %v", res, err)
	}
	for i, c := range res.Commitments {
		if hex.EncodeToString(c.Bytes()) != b.DTAs[i].Commitment {
			t.Fatalf("DTA %d's commitment is not the transcript's", i+1)
		}
	}
	for _, i := range []int{2, 4} {
		if err := d.StopDTA(i); err != nil {
			t.Fatal(err)
		}
	}
	aliceDir, _ := enrolAndLogIn(t, d)

	// A resharing: fresh shares of the same key; alice's client adopts the successor
	// bundle when the DTAs' new shares fail her pinned commitments, and logs in.
	for _, i := range []int{2, 4} {
		if err := d.StartDTA(i); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	next, err := d.Reshare(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pk, _ := b.PublicKey()
	npk, err := next.PublicKey()
	if err != nil || next.Serial != 1 || !npk.Equal(pk) || next.DTAs[0].Commitment == b.DTAs[0].Commitment ||
		next.TranscriptSHA256 == "" || next.TranscriptSHA256 == b.TranscriptSHA256 {
		t.Fatalf("successor: serial %d, same key %v, %v", next.Serial, npk.Equal(pk), err)
	}
	// An old share does not combine with new ones: C_1 before and C_3, C_5 after
	// interpolate to another key.
	mixed := *next
	mixed.DTAs = []bundle.DTA{b.DTAs[0], next.DTAs[2], next.DTAs[4]}
	if mpk, err := mixed.PublicKey(); err != nil || mpk.Equal(pk) {
		t.Fatalf("an old and two new commitments combine to the key: %v", err)
	}
	c, err := client.Open(aliceDir, client.WithInsecureHTTP())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RenewPermits(ctx, d.Info.ServerURL, []byte("2468"), 1); err != nil {
		t.Fatal(err)
	}
	if c.Fingerprint() != d.Info.Fingerprint {
		t.Fatal("alice's client did not adopt the successor bundle")
	}
	if _, err := c.Login(ctx, d.Info.ServerURL, []byte("2468")); err != nil {
		t.Fatal(err)
	}

	d.Close()
	_, err = Start(context.Background(), Options{Dir: d.opts.Dir, Threshold: 2, ScryptLogN: 10, PlainHTTP: true})
	if err == nil || !strings.Contains(err.Error(), "--threshold 2: the devnet in "+d.opts.Dir+" is threshold, 3 of 5 DTAs") {
		t.Fatalf("a restart with another threshold: %v", err)
	}
}

// TestPrintNext: the summary says what a newcomer needs next to the lines it
// concerns: on a TLS devnet that a browser does not trust its CA before the browser
// URLs; on a plain-HTTP one that the exports do not replace --insecure-http; for a
// threshold domain its T of N and its key generation's transcript.
func TestPrintNext(t *testing.T) {
	dir := filepath.Join("some", "devnet")
	base := Info{Domain: "devnet.localhost", ServerURL: "https://127.0.0.1:8440", DTAURLs: []string{"http://127.0.0.1:8441"},
		DTAMetricsURLs: []string{"http://127.0.0.1:9441/metrics"}, Chain: dtacmd.ChainEmbedded, RPCURL: "http://127.0.0.1:8448",
		Contract: "0x5FbDB2315678afecb367f032d93F642f64180aa3", Bundle: filepath.Join(dir, "bundle.json"), Fingerprint: "3a5f",
		AdminToken: filepath.Join(dir, "admin-token"), CAFile: filepath.Join(dir, "ca.pem"), ExampleURL: "http://127.0.0.1:8449"}
	plain := base
	plain.ServerURL, plain.CAFile = "http://127.0.0.1:8440", ""
	before := func(a, b string) func(string) bool {
		return func(out string) bool {
			i, j := strings.Index(out, a), strings.Index(out, b)
			return i >= 0 && j >= 0 && i < j
		}
	}
	cases := []struct {
		name      string
		info      Info
		threshold int
		ok        func(string) bool
	}{
		{"ok/tls-browser-caveat-before-the-urls", base, 0, before("does not trust the devnet CA", "/login/enrol#code=CODE")},
		{"ok/go-run-from-a-clone", base, 0, func(out string) bool {
			return strings.Contains(out, "go run ./examples/relying-party --devnet some/devnet    # from the root of a polyroot clone; then open http://127.0.0.1:8449")
		}},
		{"ok/plain-http-still-needs-insecure-http", plain, 0, before("still pass --insecure-http", "export POLYROOT_SERVER_URL=")},
		{"ok/plain-http-no-ca-caveat", plain, 0, func(out string) bool { return !strings.Contains(out, "devnet CA") }},
		{"ok/tls-no-insecure-http-note", base, 0, func(out string) bool { return !strings.Contains(out, "--insecure-http to each") }},
		{"ok/threshold-says-t-of-n-and-transcript", base, 3, func(out string) bool {
			return strings.Contains(out, "  threshold:   3 of 5: any 3 of the DTAs serve the domain; they made its key among themselves (transcript "+
				filepath.Join(dir, transcriptFile)+")\n")
		}},
		{"ok/additive-no-threshold-line", base, 0, func(out string) bool { return !strings.Contains(out, "threshold:") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := &Devnet{Info: tc.info, opts: Options{Dir: dir, AnchorPeriod: 10 * time.Second}, n: 5}
			if tc.threshold != 0 {
				d.threshold, d.transcript = tc.threshold, d.path(transcriptFile)
			}
			var out bytes.Buffer
			d.printNext(&out)
			if !tc.ok(out.String()) {
				t.Fatalf("summary:\n%s", out.String())
			}
		})
	}
}
