package cli

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/eth/ethconfig"
	"github.com/ethereum/go-ethereum/ethclient/simulated"
	"github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/params"

	"github.com/polyroot/polyroot/dta"
	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/internal/freeport"
	"github.com/polyroot/polyroot/internal/testdomain"
	"github.com/polyroot/polyroot/internal/ticket"
	"github.com/polyroot/polyroot/internal/translog"
	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/ledger"
	"github.com/polyroot/polyroot/pairing"
)

// auditCLIEnv is a domain whose logs are anchored on a simulated chain served over
// JSON-RPC on loopback, as `polyroot audit --rpc-url` reads it.
type auditCLIEnv struct {
	d        *testdomain.Domain
	rpcURL   string
	contract common.Address
	size     uint64 // every DTA's log size
	id, salt string // an enrolled identity: a client share and permits 1..2 at every DTA
	idhash   string
	sim      *simulated.Backend
	owner    *bind.TransactOpts // the contract's deployer
}

// auditCLIFreePort is a loopback port free for a DTA to listen on later.
func auditCLIFreePort(t *testing.T) int {
	t.Helper()
	l, err := freeport.Listen() // below the ephemeral range: still free when listened on again
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func newAuditCLIEnv(t *testing.T) *auditCLIEnv {
	t.Helper()
	ctx := context.Background()
	env := &auditCLIEnv{d: testdomain.New(t, "audit-cli.example.com", 3, 3600), id: "alice@example.com"}
	salt := make([]byte, pairing.SaltSize)
	rand.Read(salt)
	env.salt = hex.EncodeToString(salt)
	h, err := pairing.NewIDHash(env.d.Name, env.id, salt)
	if err != nil {
		t.Fatal(err)
	}
	env.idhash = hex.EncodeToString(h[:])

	// The chain, with its JSON-RPC on a loopback port.
	chainID := big.NewInt(1337)
	var keys [2]*bind.TransactOpts
	alloc := types.GenesisAlloc{}
	for i := range keys {
		k, err := crypto.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		keys[i] = bind.NewKeyedTransactor(k, chainID)
		alloc[keys[i].From] = types.Account{Balance: new(big.Int).Mul(big.NewInt(100), big.NewInt(params.Ether))}
	}
	port := auditCLIFreePort(t)
	sim := simulated.NewBackend(alloc, func(nc *node.Config, _ *ethconfig.Config) {
		nc.HTTPHost, nc.HTTPPort = "127.0.0.1", port
		nc.HTTPModules, nc.HTTPVirtualHosts = []string{"eth"}, []string{"*"}
	})
	t.Cleanup(func() { sim.Close() })
	env.rpcURL = fmt.Sprintf("http://127.0.0.1:%d", port)
	owner, anchorer := keys[0], keys[1]
	env.sim, env.owner = sim, owner
	addr, _, err := bind.DeployContract(owner, common.FromHex(ledger.IssuanceLogMetaData.Bin), sim.Client(), nil)
	if err != nil {
		t.Fatal(err)
	}
	sim.Commit()
	env.contract = addr
	contract := ledger.Binding().Instance(sim.Client(), addr)
	send := func(from *bind.TransactOpts, data []byte) {
		t.Helper()
		tx, err := bind.Transact(contract, from, data)
		if err != nil {
			t.Fatal(err)
		}
		sim.Commit()
		if rcpt, err := bind.WaitMined(ctx, sim.Client(), tx.Hash()); err != nil || rcpt.Status != types.ReceiptStatusSuccessful {
			t.Fatalf("transaction: %v %+v", err, rcpt)
		}
	}
	for _, rec := range env.d.Bundle.DTAs {
		send(owner, ledger.Binding().PackRegister(ledger.LogID(rec.LogOrigin), anchorer.From))
	}

	// Entries: some identities, then alice's client share and permits; anchored; then one more.
	for range 4 {
		env.issue(t, ticket.KindClient, auditCLIRandomIDHash(), 0, 0)
	}
	env.issue(t, ticket.KindClient, env.idhash, 0, 0)
	env.issue(t, ticket.KindPermit, env.idhash, 1, 2)
	for i, rec := range env.d.Bundle.DTAs {
		pub, _ := rec.PublicKey()
		root := auditCLICheckpoint(t, env.d.DTAs[i].URL, rec.LogOrigin, pub, env.size)
		send(anchorer, ledger.Binding().PackAnchor(ledger.LogID(rec.LogOrigin), env.size, [32]byte(root)))
	}
	env.issue(t, ticket.KindClient, auditCLIRandomIDHash(), 0, 0)
	for i, rec := range env.d.Bundle.DTAs {
		pub, _ := rec.PublicKey()
		auditCLICheckpoint(t, env.d.DTAs[i].URL, rec.LogOrigin, pub, env.size)
	}
	return env
}

func auditCLIRandomIDHash() string {
	var b [32]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// issue sends a registrar-signed ticket to every DTA.
func (env *auditCLIEnv) issue(t *testing.T, kind, idhash string, first, last uint64) {
	t.Helper()
	token, err := ticket.Sign(ticket.Ticket{Domain: env.d.Name, Kind: kind, IDHash: idhash, FirstSlot: first, LastSlot: last,
		SealKey: testdomain.SealKeyFor(kind), NotAfter: time.Now().Add(time.Hour)}, env.d.Registrar)
	if err != nil {
		t.Fatal(err)
	}
	path := map[string]string{ticket.KindClient: "/v1/shares/client", ticket.KindPermit: "/v1/shares/permit"}[kind]
	body, _ := json.Marshal(wire.DTARequest{Ticket: token})
	for _, x := range env.d.DTAs {
		resp, err := http.Post(x.URL+path, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("DTA %d: %d %s", x.Index, resp.StatusCode, msg)
		}
	}
	if kind == ticket.KindPermit {
		env.size += last - first + 1
	} else {
		env.size++
	}
}

// auditCLICheckpoint waits for the log at base to publish a checkpoint at size.
func auditCLICheckpoint(t *testing.T, base, origin string, pub ed25519.PublicKey, size uint64) []byte {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(base + "/v1/log/checkpoint")
		if err != nil {
			continue
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if cp, err := translog.ParseCheckpoint(raw, origin, pub); err == nil && cp.Size == size {
			return cp.Hash
		}
	}
	t.Fatalf("no checkpoint of %s at %d", origin, size)
	return nil
}

// forkDTA2 serves another log under DTA 2's origin and key, and returns the path of a
// bundle, signed by the registrar, that points DTA 2 at it.
func (env *auditCLIEnv) forkDTA2(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	rec := env.d.Bundle.DTAs[1]
	seed, err := env.d.DTAs[1].Keys.Get(ctx, dta.SecretSigningKey)
	if err != nil {
		t.Fatal(err)
	}
	fork, err := translog.Open(ctx, filepath.Join(t.TempDir(), "log"), rec.LogOrigin, ed25519.NewKeyFromSeed(seed),
		translog.Options{CheckpointInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fork.Close(context.Background()) })
	var leaves [][]byte
	for i := range env.size + 3 {
		h := sha256.Sum256(fmt.Append(nil, "forged ", i))
		e := wire.Entry{Version: wire.EntryVersion, DTA: rec.Index, Domain: env.d.Name, Kind: wire.KindClient, Subject: auditCLIRandomIDHash(),
			SealedSHA256: hex.EncodeToString(h[:]), TicketSHA256: hex.EncodeToString(h[:]), Time: time.Now().Unix()}
		leaf, err := e.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		leaves = append(leaves, leaf)
	}
	if _, err := fork.AppendAll(ctx, leaves); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/log/", http.StripPrefix("/v1/log", fork.Handler()))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	pub, _ := rec.PublicKey()
	auditCLICheckpoint(t, srv.URL, rec.LogOrigin, pub, env.size+3)

	b := *env.d.Bundle
	b.DTAs = slices.Clone(b.DTAs)
	b.DTAs[1].URL = srv.URL
	return env.writeBundle(t, &b)
}

// writeBundle signs b with the domain's registrar key and returns the file's path.
func (env *auditCLIEnv) writeBundle(t *testing.T, b *bundle.Bundle) string {
	t.Helper()
	file, _, err := bundle.Sign(b, env.d.Registrar)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "bundle.json")
	if err := os.WriteFile(p, file, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAuditCommand(t *testing.T) {
	env := newAuditCLIEnv(t)
	bundleFile := env.d.WriteBundle(t.TempDir())
	base := []string{"audit", "--bundle", bundleFile, "--rpc-url", env.rpcURL, "--contract", env.contract.Hex()}

	t.Run("ok/honest", func(t *testing.T) {
		code, out, errOut := run(base...)
		if code != 0 {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
		for _, want := range []string{
			"DTA  LOG", "STATUS",
			"1    polyroot/audit-cli.example.com/dta-1  8           1        7 at ",
			"Every log is consistent with its anchors.",
		} {
			if !strings.Contains(out, want) {
				t.Fatalf("output lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(errOut, "scanning") {
			t.Fatalf("a progress bar on a non-terminal without --progress:\n%s", errOut)
		}
	})

	t.Run("ok/identity-by-id-and-salt", func(t *testing.T) {
		code, out, errOut := run(append(base, "--id", env.id, "--salt", env.salt, "--progress")...)
		if code != 0 {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
		if !strings.Contains(out, "Entries for idhash "+env.idhash+": 9") || strings.Count(out, " permit ") != 6 || strings.Count(out, " client ") != 3 {
			t.Fatalf("identity listing:\n%s", out)
		}
		if !strings.Contains(errOut, "scanning the logs") {
			t.Fatalf("no progress bar with --progress:\n%s", errOut)
		}
		code, out2, _ := run(append(base, "--idhash", env.idhash)...)
		if code != 0 || !strings.Contains(out2, "Entries for idhash "+env.idhash+": 9") {
			t.Fatalf("--idhash: exit %d\n%s", code, out2)
		}
	})

	t.Run("ok/json", func(t *testing.T) {
		code, out, errOut := run(append(base, "--json", "--idhash", env.idhash)...)
		var r auditJSON
		if code != 0 || json.Unmarshal([]byte(out), &r) != nil {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
		d := r.DTAs[0]
		if !r.OK || len(r.Problems) != 0 || r.ChainID != 1337 || r.AnchorsAt == 0 || len(r.DTAs) != 3 || d.Index != 1 || d.Status != "ok" || d.CheckpointSize == nil || *d.CheckpointSize != 8 ||
			d.Anchors != 1 || d.LastAnchor == nil || d.LastAnchor.Size != 7 || len(d.LastAnchor.Root) != 64 || r.IDHash != env.idhash || r.Entries == nil || len(*r.Entries) != 9 {
			t.Fatalf("audit --json:\n%s", out)
		}
		if strings.Contains(out, "Every log") || strings.Contains(out, "CHECKPOINT") {
			t.Fatalf("the table besides the JSON:\n%s", out)
		}
	})

	t.Run("ok/throttled", func(t *testing.T) {
		// DTA 2 allows 2 requests to its log, then 1 a second: the audit waits as told.
		env.d.DTAs[1].Configure(func(c *dta.Config) { c.LogRatePerSecond, c.LogRateBurst = 1, 2 })
		defer env.d.DTAs[1].Configure(nil)
		code, out, errOut := run(append(base, "--json", "--concurrency", "2")...)
		var r auditJSON
		if code != 0 || json.Unmarshal([]byte(out), &r) != nil || !r.OK {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
		d1, d2 := r.DTAs[0], r.DTAs[1]
		if d1.Throttled != 0 || d2.Throttled == 0 || d2.Retries != d2.Throttled || d2.WaitedSeconds < 1 || d2.Scanned != 8 {
			t.Fatalf("throttled DTA 2, --json:\n%s", out)
		}
		for _, want := range []string{
			"polyroot: DTA 2 slows the audit down (answered 429 Too Many Requests): waiting 1",
			fmt.Sprintf("polyroot: DTA 2 refused %d request(s) with 429 or 503; the audit waited ", d2.Throttled),
		} {
			if !strings.Contains(errOut, want) {
				t.Fatalf("stderr lacks %q:\n%s", want, errOut)
			}
		}
		if strings.Count(errOut, "slows the audit down") != 1 || strings.Contains(errOut, "DTA 1") || strings.Contains(errOut, "DTA 3") {
			t.Fatalf("one note for DTA 2 only, want:\n%s", errOut)
		}
	})

	t.Run("fail/forked", func(t *testing.T) {
		args := slices.Clone(base)
		args[2] = env.forkDTA2(t)
		code, out, errOut := run(args...)
		if code != 1 {
			t.Fatalf("exit %d, want 1\n%s%s", code, out, errOut)
		}
		if !strings.Contains(out, "FAILED") ||
			!strings.Contains(errOut, "DTA 2 log polyroot/audit-cli.example.com/dta-2: anchored root at size 7 is not consistent with the checkpoint at 11: the log was rewritten or forked") {
			t.Fatalf("forked DTA 2 not named with its sizes:\nstdout:\n%s\nstderr:\n%s", out, errOut)
		}
		if strings.Contains(errOut, "DTA 1 ") || strings.Contains(errOut, "DTA 3 ") {
			t.Fatalf("an honest DTA blamed:\n%s", errOut)
		}
		code, out, _ = run(append(args, "--json")...)
		var r auditJSON
		if code != 1 || json.Unmarshal([]byte(out), &r) != nil || r.OK || len(r.Problems) == 0 || r.DTAs[1].Status == "ok" || len(r.DTAs[1].Problems) == 0 {
			t.Fatalf("forked, --json: exit %d\n%s", code, out)
		}
	})

	t.Run("state", func(t *testing.T) {
		stateFile := filepath.Join(t.TempDir(), "audit-state.json")
		withState := append(slices.Clone(base), "--state", stateFile)
		if code, out, errOut := run(withState...); code != 0 {
			t.Fatalf("first audit with --state: exit %d\n%s%s", code, out, errOut)
		}
		read := func() auditState {
			t.Helper()
			raw, err := os.ReadFile(stateFile)
			var st auditState
			if err != nil || json.Unmarshal(raw, &st) != nil {
				t.Fatalf("state file: %v\n%s", err, raw)
			}
			return st
		}
		st := read()
		if st.Domain != env.d.Name || len(st.Checkpoints) != 3 || st.Checkpoints["polyroot/audit-cli.example.com/dta-2"].Size != 8 {
			t.Fatalf("state after an honest audit: %+v", st)
		}
		if st.Bundle == nil || st.Bundle.Serial != 0 || len(st.Logs) != 3 {
			t.Fatalf("the bundle and the logs audited are not kept: %+v", st)
		}
		// Entry 7 is past the anchor at 7: the state keeps when the auditor first saw it
		// so, its own clock against which --max-anchor-age holds.
		if cp := st.Checkpoints["polyroot/audit-cli.example.com/dta-2"]; cp.UnanchoredSize != 8 || time.Since(cp.UnanchoredSince) > time.Minute {
			t.Fatalf("the unanchored tail is not kept: %+v", cp)
		}
		// successor signs the bundle at path again, with a greater serial and change.
		successor := func(path string, serial uint64, change func(*bundle.Bundle)) string {
			t.Helper()
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			b, err := bundle.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			b.Serial = serial
			if change != nil {
				change(b)
			}
			return env.writeBundle(t, b)
		}
		// DTA 2 now shows another log, in a bundle with the same serial: not the bundle
		// audited last, nor a successor of it.
		forked := slices.Clone(withState)
		forked[2] = env.forkDTA2(t)
		code, out, errOut := run(forked...)
		if code != 1 || !strings.Contains(errOut, "is neither the one audited last (serial 0") {
			t.Fatalf("a changed bundle of the same serial: exit %d\n%s%s", code, out, errOut)
		}
		// In a successor: the state names the checkpoint it no longer extends, and
		// keeps it for the next audit.
		forked[2] = successor(forked[2], 1, nil)
		code, out, errOut = run(forked...)
		if code != 1 || !strings.Contains(errOut, "DTA 2 log polyroot/audit-cli.example.com/dta-2: root seen before at size 8 is not consistent with the checkpoint at 11") {
			t.Fatalf("forked after an audit with --state: exit %d\n%s%s", code, out, errOut)
		}
		if got := read().Checkpoints["polyroot/audit-cli.example.com/dta-2"]; got.Size != 8 || read().Bundle.Serial != 1 {
			t.Fatalf("the failed DTA's checkpoint was replaced: %+v", got)
		}
		// A successor that renames DTA 3's log: the old log is no longer audited, and
		// that is a problem until the auditor forgets it.
		renamed := slices.Clone(withState)
		renamed[2] = successor(bundleFile, 2, func(b *bundle.Bundle) { b.DTAs[2].LogOrigin = "polyroot/audit-cli.example.com/dta-3-new" })
		const gone = "log polyroot/audit-cli.example.com/dta-3 (DTA 3, key "
		code, out, errOut = run(renamed...)
		if code != 1 || !strings.Contains(errOut, gone) || !strings.Contains(errOut, "audited before, is not in the trust bundle (serial 2)") ||
			!strings.Contains(out, "Logs audited before that the trust bundle no longer names, not checked: 1") {
			t.Fatalf("a renamed log: exit %d\n%s%s", code, out, errOut)
		}
		code, out, _ = run(append(slices.Clone(renamed), "--json")...)
		var r auditJSON
		if code != 1 || json.Unmarshal([]byte(out), &r) != nil || r.OK || len(r.Problems) == 0 || !strings.HasPrefix(r.Problems[0], gone) {
			t.Fatalf("a renamed log, --json: exit %d\n%s", code, out)
		}
		code, out, errOut = run(append(slices.Clone(renamed), "--forget-log", "polyroot/audit-cli.example.com/dta-3")...)
		if code != 1 || strings.Contains(errOut, "audited before") || !strings.Contains(errOut, "dta-3-new") {
			t.Fatalf("a renamed log forgotten: exit %d\n%s%s", code, out, errOut)
		}
		if st := read(); len(st.Logs) != 3 || st.Logs["polyroot/audit-cli.example.com/dta-3-new"].DTA != 3 {
			t.Fatalf("state after --forget-log: %+v", st.Logs)
		}
		other := filepath.Join(t.TempDir(), "other.json")
		os.WriteFile(other, []byte(`{"version":1,"domain":"other.example.com","checkpoints":{}}`), 0o644)
		if code, _, errOut := run(append(slices.Clone(base), "--state", other)...); code != 1 || !strings.Contains(errOut, `is the state of domain "other.example.com"`) {
			t.Fatalf("another domain's state: exit %d\n%s", code, errOut)
		}
	})

	t.Run("fail/no-contract-at-address", func(t *testing.T) {
		// An address without code, as a devnet's contract after its restart: said as
		// such, with the remedy, not as an ABI error.
		other := common.HexToAddress("0x00000000000000000000000000000000000000aa")
		code, out, errOut := run("audit", "--bundle", bundleFile, "--rpc-url", env.rpcURL, "--contract", other.Hex())
		want := "audit: there is no contract at " + other.Hex() + " on this chain: check --contract (or $POLYROOT_CONTRACT); " +
			"a devnet's embedded chain gets a new contract at every start: see its devnet.json"
		if code != 1 || !strings.Contains(errOut, want) || strings.Contains(errOut, "abi:") {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
	})

	t.Run("fail/other-contract-code", func(t *testing.T) {
		// A contract that answers as IssuanceLog does but whose code is not the
		// artifact's (here, a byte more), as one with a permissive anchor() would be:
		// refused, whether named by --contract or by the bundle.
		code := append(slices.Clone(ledger.DeployedCode()), 0)
		n := len(code)
		initCode := append([]byte{0x61, byte(n >> 8), byte(n), 0x60, 0x0e, 0x60, 0x00, 0x39, // CODECOPY(0, 14, n)
			0x61, byte(n >> 8), byte(n), 0x60, 0x00, 0xf3}, code...) // RETURN(0, n)
		impostor, _, err := bind.DeployContract(env.owner, initCode, env.sim.Client(), nil)
		if err != nil {
			t.Fatal(err)
		}
		env.sim.Commit()
		b := *env.d.Bundle
		b.Anchoring = &bundle.Anchoring{ChainID: 1337, Contract: strings.ToLower(impostor.Hex())}
		named := env.writeBundle(t, &b)
		want := "not the IssuanceLog contract: the code at " + impostor.Hex()
		for _, args := range [][]string{
			{"audit", "--bundle", bundleFile, "--rpc-url", env.rpcURL, "--contract", impostor.Hex()},
			{"audit", "--bundle", named, "--rpc-url", env.rpcURL},
		} {
			code, out, errOut := run(args...)
			if code != 1 || !strings.Contains(errOut, want) || !strings.Contains(errOut, "check --contract") {
				t.Fatalf("%q: exit %d\n%s%s", args, code, out, errOut)
			}
		}
	})

	t.Run("fail/rpc-never-answers", func(t *testing.T) {
		stop := make(chan struct{})
		hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-stop:
			}
		}))
		defer hung.Close()
		defer close(stop) // before Close: the RPC client may keep its connection
		defer func(d time.Duration) { contractCheckTimeout = d }(contractCheckTimeout)
		contractCheckTimeout = 300 * time.Millisecond
		code, out, errOut := run("audit", "--bundle", bundleFile, "--rpc-url", hung.URL, "--contract", env.contract.Hex())
		if code != 1 || !strings.Contains(errOut, "audit: the chain at --rpc-url did not answer within 300ms: check the URL") {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
	})

	t.Run("fail/dta-timeout", func(t *testing.T) {
		code, out, errOut := run(append(slices.Clone(base), "--dta-timeout", "1ns")...)
		if code != 1 || !strings.Contains(errOut, "DTA 1 log polyroot/audit-cli.example.com/dta-1: reading the log did not finish within 1ns") {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
	})

	t.Run("fail/max-entries", func(t *testing.T) {
		code, out, errOut := run(append(slices.Clone(base), "--max-entries", "7")...)
		if code != 1 || !strings.Contains(errOut, "DTA 1 log polyroot/audit-cli.example.com/dta-1: the checkpoint is at 8 and the last anchor at 7: more than the 7 entries an audit reads of a log (--max-entries)") {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
		// Both bounds are on by default.
		_, help, _ := run("audit", "--help")
		if !strings.Contains(help, "(default: 10m0s)") || !strings.Contains(help, fmt.Sprintf("(default: %d)", ledger.DefaultAuditMaxEntries)) {
			t.Fatalf("audit --help lacks the default bounds:\n%s", help)
		}
	})

	t.Run("anchoring", func(t *testing.T) {
		// A bundle that names its anchoring gives the contract, and refuses another
		// contract or another chain.
		anchored := func(chainID uint64) string {
			b := *env.d.Bundle
			b.Anchoring = &bundle.Anchoring{ChainID: chainID, Contract: strings.ToLower(env.contract.Hex())}
			return env.writeBundle(t, &b)
		}
		ours, theirs := anchored(1337), anchored(5)
		other := common.HexToAddress("0x00000000000000000000000000000000000000aa")
		for _, tc := range []struct {
			name string
			args []string
			want string // on standard error; "" for exit 0
		}{
			{"ok/contract-from-bundle", []string{"--bundle", ours}, ""},
			{"ok/same-contract", []string{"--bundle", ours, "--contract", env.contract.Hex()}, ""},
			{"fail/other-contract", []string{"--bundle", ours, "--contract", other.Hex()},
				"audit: not the bundle's anchoring: the trust bundle anchors at contract " + env.contract.Hex() + ", not " + other.Hex()},
			{"fail/other-chain", []string{"--bundle", theirs},
				"audit: not the bundle's anchoring: the RPC endpoint serves chain 1337, the trust bundle anchors on chain 5"},
			{"fail/none-named", []string{"--bundle", bundleFile}, "audit: --contract is required: the trust bundle does not name the contract"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				code, out, errOut := run(append([]string{"audit", "--rpc-url", env.rpcURL}, tc.args...)...)
				if tc.want == "" && code != 0 || tc.want != "" && (code != 1 || !strings.Contains(errOut, tc.want)) {
					t.Fatalf("exit %d, want %q\n%s%s", code, tc.want, out, errOut)
				}
			})
		}
	})

	t.Run("fail/usage", func(t *testing.T) {
		for _, args := range [][]string{
			{"audit", "--bundle", bundleFile},
			append(slices.Clone(base), "--id", "alice"),
			append(slices.Clone(base), "--idhash", "xyz"),
			append(slices.Clone(base), "--idhash", env.idhash, "--id", "alice", "--salt", env.salt),
			{"audit", "--bundle", bundleFile, "--rpc-url", env.rpcURL, "--contract", "nope"},
			append(slices.Clone(base), "--concurrency", "0"),
			append(slices.Clone(base), "--rate", "-1"),
			append(slices.Clone(base), "--max-retries", "-2"),
			append(slices.Clone(base), "--max-entries", "0"),
			append(slices.Clone(base), "--forget-log", "polyroot/audit-cli.example.com/dta-1"),
		} {
			if code, out, errOut := run(args...); code != 1 || !strings.Contains(errOut, "audit") {
				t.Fatalf("%q: exit %d\n%s%s", args, code, out, errOut)
			}
		}
	})
}
