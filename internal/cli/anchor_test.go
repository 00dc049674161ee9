//go:build unix

package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/params"

	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/internal/testbin"
	"github.com/polyroot/polyroot/internal/testdomain"
	"github.com/polyroot/polyroot/internal/testnet"
	"github.com/polyroot/polyroot/internal/ticket"
	"github.com/polyroot/polyroot/ledger"
)

const anchorContract = "0x5FbDB2315678afecb367f032d93F642f64180aa3"

// TestAnchorSettings: the anchoring flags, environment and config keys of dta serve.
func TestAnchorSettings(t *testing.T) {
	clearEnv(t)
	req := []string{"--bundle", "b.json", "--index", "1", "--data-dir", "d", "--keystore-dir", "k"}

	if got := resolve(t, req...); got.Chain.Type != "none" || time.Duration(got.Chain.AnchorPeriod) != time.Hour || got.Chain.Confirmations != 2 {
		t.Fatalf("defaults: %+v", got.Chain)
	}
	got := resolve(t, append(req, "--chain", "rpc", "--rpc-url", "http://127.0.0.1:8545", "--chain-key-file", "chain.key",
		"--contract", anchorContract, "--anchor-period", "10s", "--confirmations", "3")...)
	want := chainConfig{Type: "rpc", RPCURL: "http://127.0.0.1:8545", KeyFile: "chain.key", Contract: anchorContract,
		AnchorPeriod: duration(10 * time.Second), Confirmations: 3}
	if got.Chain != want {
		t.Fatalf("flags: %+v, want %+v", got.Chain, want)
	}

	// A provider's API key in the URL is not printed.
	keyed := resolve(t, append(req, "--chain", "rpc", "--rpc-url", "https://user:pw@rpc.example.com/v2/SECRETAPIKEY", "--chain-key-file", "chain.key",
		"--contract", anchorContract)...)
	if keyed.Chain.RPCURL != "https://rpc.example.com/…" {
		t.Fatalf("--print-config shows the RPC URL %q", keyed.Chain.RPCURL)
	}

	dir := t.TempDir()
	cfg := filepath.Join(dir, "dta.toml")
	file := "[chain]\ntype = \"rpc\"\nrpc_url = \"http://node:8545\"\nkey_file = \"keys/chain.key\"\ncontract = \"" + anchorContract + "\"\nanchor_period = \"10s\"\nconfirmations = 5\n"
	if err := os.WriteFile(cfg, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	got = resolve(t, append(req, "--config", cfg)...)
	if got.Chain.KeyFile != filepath.Join(dir, "keys/chain.key") || got.Chain.Confirmations != 5 || got.Chain.RPCURL != "http://node:8545" {
		t.Fatalf("file: %+v (key_file relative to the file's directory)", got.Chain)
	}
	t.Setenv("POLYROOT_DTA_CHAIN", "embedded")
	t.Setenv("POLYROOT_DTA_CONFIRMATIONS", "4")
	got = resolve(t, append(req, "--config", cfg)...)
	if got.Chain.Type != "embedded" || got.Chain.Confirmations != 4 {
		t.Fatalf("environment over file: %+v", got.Chain)
	}
	os.Unsetenv("POLYROOT_DTA_CHAIN")
	os.Unsetenv("POLYROOT_DTA_CONFIRMATIONS")

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--chain", "ropsten"}, `--chain "ropsten": want none, embedded or rpc`},
		{[]string{"--chain", "rpc", "--chain-key-file", "k", "--contract", anchorContract}, "no chain RPC URL"},
		{[]string{"--chain", "rpc", "--rpc-url", "http://x", "--contract", anchorContract}, "no chain key file"},
		{[]string{"--chain", "rpc", "--rpc-url", "http://x", "--chain-key-file", "k", "--contract", "0x12"}, `--contract "0x12"`},
		{[]string{"--chain", "embedded", "--confirmations", "0"}, "at least 1"},
		{[]string{"--chain", "embedded", "--anchor-period", "0s"}, "anchor period must be positive"},
	} {
		code, _, errOut := run(append(append([]string{"dta", "serve"}, append(req, tc.args...)...), "--check-config")...)
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, %q; want an error with %q", tc.args, code, errOut, tc.want)
		}
	}
}

// TestAnchorServeEmbedded runs dta serve with --chain embedded: it deploys and registers
// on its in-memory chain, and the log's growth is anchored (seen in the metrics, which
// its operations listener serves and its public listener does not).
func TestAnchorServeEmbedded(t *testing.T) {
	clearEnv(t)
	t.Setenv(envPassphrase, "correct horse battery staple")
	t.Setenv(envScryptLogN, "10")
	d := setupDomain(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := startServe(t, ctx, "--config", d.configs[0], "--listen", "127.0.0.1:0", "--checkpoint-interval", "100ms",
		"--chain", "embedded", "--anchor-period", "200ms", "--confirmations", "2")
	if !strings.Contains(s.stderr.String(), "embedded chain: in memory") {
		t.Fatalf("no warning that the embedded chain is in memory:\n%s", s.stderr)
	}

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
	resp, err := http.Post(s.url+"/v1/shares/client", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("client share: %d", resp.StatusCode)
	}

	if code, _ := get(t, http.DefaultClient, s.url+"/metrics"); code != http.StatusNotFound {
		t.Fatalf("public /metrics: %d, want 404", code)
	}
	confirmed := regexp.MustCompile(`(?m)^polyroot_dta_anchor_confirmed_size (\d+)`)
	lag := regexp.MustCompile(`(?m)^polyroot_dta_anchor_lag_entries (\d+)`)
	if !waitFor(30*time.Second, func() bool {
		code, raw := get(t, http.DefaultClient, s.metricsURL)
		m, l := confirmed.FindSubmatch(raw), lag.FindSubmatch(raw)
		if code != http.StatusOK || m == nil || l == nil {
			return false
		}
		n, _ := strconv.Atoi(string(m[1]))
		return n >= 1 && string(l[1]) == "0"
	}) {
		_, raw := get(t, http.DefaultClient, s.metricsURL)
		t.Fatalf("the log was not anchored within 30 s\nmetrics: %s\nstderr: %s", grepLines(string(raw), "anchor"), s.stderr)
	}
	if !strings.Contains(s.stderr.String(), "anchor confirmed") {
		t.Fatalf("no anchor in the log:\n%s", s.stderr)
	}
	cancel()
	select {
	case code := <-s.done:
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, s.stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("dta serve did not stop")
	}
}

// TestIssuanceOutlivesChain runs dta serve with --chain rpc against a real geth --dev
// (the contract deployed and the DTA's key registered beforehand, as an operator
// would), reaching geth through a TCP relay the test cuts, as a network would, and
// reached by its clients through a readiness-gated proxy, as behind a load balancer.
// The log is anchored; then, with the chain cut off, the DTA stays in rotation
// (/readyz 200 "degraded", naming the chain but not the RPC URL) and keeps issuing
// while the anchoring lag grows on /metrics; once the chain is back, anchoring catches
// up by itself and the audit of the log against the chain passes.
func TestIssuanceOutlivesChain(t *testing.T) {
	clearEnv(t)
	g := testbin.StartGeth(t)
	t.Setenv(envPassphrase, "correct horse battery staple")
	t.Setenv(envScryptLogN, "10")
	d := setupDomain(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	client, err := ledger.Dial(ctx, g.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	// As an operator would: the owner's and the DTA's chain keys, funded; the contract
	// deployed and the DTA's log registered; the bundle assembled again to name them.
	keygen := func(name string) (string, common.Address) {
		path := filepath.Join(d.dir, name)
		code, out, errOut := run("ledger", "keygen", "--out", path)
		if code != 0 {
			t.Fatalf("ledger keygen: exit %d\n%s", code, errOut)
		}
		return path, common.HexToAddress(strings.TrimSpace(out))
	}
	ownerKey, owner := keygen("owner.key")
	keyFile, anchorer := keygen("chain.key")
	var accounts []common.Address
	if err := client.Client().CallContext(ctx, &accounts, "eth_accounts"); err != nil || len(accounts) == 0 {
		t.Fatalf("eth_accounts: %v %v", accounts, err)
	}
	value := (*hexutil.Big)(new(big.Int).Mul(big.NewInt(10), big.NewInt(params.Ether)))
	for _, a := range []common.Address{owner, anchorer} {
		var h common.Hash
		if err := client.Client().CallContext(ctx, &h, "eth_sendTransaction",
			map[string]any{"from": accounts[0], "to": a, "value": value}); err != nil {
			t.Fatal(err)
		}
	}
	if !waitFor(30*time.Second, func() bool {
		b, err := client.BalanceAt(ctx, anchorer, nil)
		return err == nil && b.Sign() > 0
	}) {
		t.Fatal("funding the keys took over 30 s")
	}
	code, out, errOut := run("ledger", "deploy", "--rpc-url", g.URL, "--key-file", ownerKey, "--timeout", "1m")
	if code != 0 {
		t.Fatalf("ledger deploy: exit %d\n%s", code, errOut)
	}
	contract := common.HexToAddress(strings.TrimSpace(out))
	origin := loadRecord(t, d.records[0]).LogOrigin
	if code, _, errOut := run("ledger", "register", "--rpc-url", g.URL, "--key-file", ownerKey, "--contract", contract.Hex(),
		"--origin", origin, "--anchorer", anchorer.Hex(), "--timeout", "1m"); code != 0 {
		t.Fatalf("ledger register: exit %d\n%s", code, errOut)
	}
	assemble := []string{"bundle", "assemble", "--domain", flowDomain, "--registrar-key", d.registrar, "--out", d.bundle, "--replace",
		"--chain-id", "1337", "--contract", contract.Hex()} // geth --dev's chain ID
	for _, r := range d.records {
		assemble = append(assemble, "--record", r)
	}
	if code, _, errOut := run(assemble...); code != 0 {
		t.Fatalf("bundle assemble: exit %d\n%s", code, errOut)
	}

	// The DTA reaches geth through a relay that the test can cut, and its clients reach
	// it through a proxy that routes only to a ready DTA.
	relay := testnet.NewRelay(t, strings.TrimPrefix(g.URL, "http://"))
	s := startServe(t, ctx, "--config", d.configs[0], "--listen", "127.0.0.1:0", "--checkpoint-interval", "100ms",
		"--chain", "rpc", "--rpc-url", "http://"+relay.Addr, "--chain-key-file", keyFile, "--contract", contract.Hex(),
		"--anchor-period", "300ms", "--confirmations", "2")
	lb := testnet.NewReadyProxy(t, &http.Client{Timeout: 2 * time.Second}, 50*time.Millisecond, s.url)
	priv, err := readRegistrarKey(d.registrar)
	if err != nil {
		t.Fatal(err)
	}
	issue := func() {
		t.Helper()
		var id [32]byte
		rand.Read(id[:])
		tk, _ := ticket.Sign(ticket.Ticket{Domain: flowDomain, Kind: ticket.KindClient, SealKey: testdomain.SealKey, IDHash: hex.EncodeToString(id[:]), NotAfter: time.Now().Add(time.Hour)}, priv)
		body, _ := json.Marshal(map[string]string{"ticket": tk})
		resp, err := http.Post(lb.URL+"/v1/shares/client", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatalf("client share through the proxy: %v (proxy: %+v)", err, lb.Backends())
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("client share: %d", resp.StatusCode)
		}
	}
	// A fresh log has nothing to anchor; a checkpoint of size 0 is never anchored.
	issue()
	var latest ledger.LatestOutput
	if !waitFor(30*time.Second, func() bool {
		latest, err = bind.Call(ledger.Binding().Instance(client, contract), &bind.CallOpts{Context: ctx},
			ledger.Binding().PackLatest(ledger.LogID(origin)), ledger.Binding().UnpackLatest)
		return err == nil && latest.Size >= 1
	}) {
		t.Fatalf("no anchor on geth within 30 s (%v)\n%s", err, s.stderr)
	}
	if !waitFor(30*time.Second, func() bool { return strings.Contains(s.stderr.String(), "anchor confirmed") }) {
		t.Fatalf("the anchor was not confirmed:\n%s", s.stderr)
	}
	if secret, _ := os.ReadFile(keyFile); strings.Contains(s.stderr.String(), strings.TrimSpace(string(secret))) {
		t.Fatal("the chain key appears in the log")
	}

	readyz := func() (int, string) {
		code, body := get(t, http.DefaultClient, s.url+"/readyz")
		return code, string(body)
	}
	gauge := func(name string) (float64, string) {
		_, raw := get(t, http.DefaultClient, s.metricsURL)
		m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindSubmatch(raw)
		if m == nil {
			return -1, string(raw)
		}
		v, _ := strconv.ParseFloat(string(m[1]), 64)
		return v, string(raw)
	}
	if code, body := readyz(); code != http.StatusOK || !strings.Contains(body, `"status":"ready"`) || !strings.Contains(body, `"chain":"ok"`) {
		t.Fatalf("readyz with the chain up: %d %s", code, body)
	}

	// The chain goes away: the DTA is degraded, not out of rotation, and keeps issuing.
	relay.Cut()
	var rbody string
	if !waitFor(30*time.Second, func() bool { code, rbody = readyz(); return strings.Contains(rbody, `"status":"degraded"`) }) {
		t.Fatalf("readyz not degraded with the chain cut off: %d %s", code, rbody)
	}
	if code != http.StatusOK || !strings.Contains(rbody, `"chain":"degraded: anchoring fails`) || strings.Contains(rbody, relay.Addr) {
		t.Fatalf("readyz with the chain cut off: %d %s", code, rbody)
	}
	for range 3 {
		issue()
	}
	if !waitFor(30*time.Second, func() bool { v, _ := gauge("polyroot_dta_anchor_lag_entries"); return v >= 3 }) {
		_, raw := gauge("")
		t.Fatalf("the anchoring lag does not show the 3 entries issued without the chain:\n%s", grepLines(raw, "anchor"))
	}
	if up, raw := gauge(`polyroot_dta_dependency_up{dependency="chain"}`); up != 0 {
		t.Fatalf("chain dependency gauge %v with the chain cut off:\n%s", up, grepLines(raw, "dependency"))
	}
	if st := lb.Backends()[0]; !st.InRotation || st.Left != 0 {
		t.Fatalf("the proxy took the DTA out of rotation while only its chain was down: %+v", st)
	}

	// The chain comes back: anchoring catches up by itself, the DTA is ready again.
	relay.Restore()
	if !waitFor(30*time.Second, func() bool { v, _ := gauge("polyroot_dta_anchor_lag_entries"); return v == 0 }) {
		_, raw := gauge("")
		t.Fatalf("anchoring did not catch up within 30 s of the chain's return:\n%s", grepLines(raw, "anchor"))
	}
	if !waitFor(30*time.Second, func() bool { code, rbody = readyz(); return strings.Contains(rbody, `"status":"ready"`) }) {
		t.Fatalf("readyz stayed %d after the chain came back: %s", code, rbody)
	}
	if up, _ := gauge(`polyroot_dta_dependency_up{dependency="chain"}`); up != 1 {
		t.Fatalf("chain dependency gauge %v after the chain came back", up)
	}
	logs := s.stderr.String()
	if strings.Count(logs, "degraded: a dependency is unavailable") != 1 || strings.Count(logs, "dependency available again") != 1 {
		t.Fatalf("want one line when the chain is lost and one when it is back:\n%s", grepLines(logs, "dependency"))
	}

	// The audit of the log against its anchors passes. It reads the log through the
	// proxy; only DTA 1 of the bundle runs here, so the bundle is cut down to it.
	raw, err := os.ReadFile(d.bundle)
	if err != nil {
		t.Fatal(err)
	}
	b, err := bundle.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	rec := b.DTAs[0]
	rec.URL = lb.URL
	b.DTAs = []bundle.DTA{rec}
	report, err := ledger.Audit(ctx, ledger.AuditConfig{Bundle: b, Chain: client, Contract: contract})
	if err != nil {
		t.Fatal(err)
	}
	if dr := report.DTAs[0]; !report.OK() || dr.Status != ledger.AuditOK || dr.CheckpointSize < 4 || dr.Lag != 0 {
		t.Fatalf("audit after the chain came back: %+v, problems %q", dr, report.Problems())
	}
	cancel()
	if code := <-s.done; code != 0 {
		t.Fatalf("exit %d\n%s", code, s.stderr)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
