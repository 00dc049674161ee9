package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/eth/ethconfig"
	"github.com/ethereum/go-ethereum/ethclient/simulated"
	"github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/params"

	"github.com/polyroot/polyroot/client"
	"github.com/polyroot/polyroot/ledger"
)

// verifyCLIChain is an IssuanceLog on a simulated chain served over JSON-RPC on
// loopback, every log of the domain registered to one anchoring key.
type verifyCLIChain struct {
	sim      *simulated.Backend
	rpcURL   string
	contract common.Address
	anchorer *bind.TransactOpts
	owner    *bind.TransactOpts
}

func newVerifyCLIChain(t *testing.T, origins []string) *verifyCLIChain {
	t.Helper()
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
	ch := &verifyCLIChain{owner: keys[0], anchorer: keys[1], rpcURL: fmt.Sprintf("http://127.0.0.1:%d", port)}
	ch.sim = simulated.NewBackend(alloc, func(nc *node.Config, _ *ethconfig.Config) {
		nc.HTTPHost, nc.HTTPPort = "127.0.0.1", port
		nc.HTTPModules, nc.HTTPVirtualHosts = []string{"eth"}, []string{"*"}
	})
	t.Cleanup(func() { ch.sim.Close() })
	addr, _, err := bind.DeployContract(ch.owner, common.FromHex(ledger.IssuanceLogMetaData.Bin), ch.sim.Client(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ch.sim.Commit()
	ch.contract = addr
	for _, o := range origins {
		ch.send(t, ch.owner, ledger.Binding().PackRegister(ledger.LogID(o), ch.anchorer.From))
	}
	return ch
}

func (ch *verifyCLIChain) send(t *testing.T, from *bind.TransactOpts, data []byte) {
	t.Helper()
	tx, err := bind.Transact(ledger.Binding().Instance(ch.sim.Client(), ch.contract), from, data)
	if err != nil {
		t.Fatal(err)
	}
	ch.sim.Commit()
	if rcpt, err := bind.WaitMined(context.Background(), ch.sim.Client(), tx.Hash()); err != nil || rcpt.Status != types.ReceiptStatusSuccessful {
		t.Fatalf("transaction: %v %+v", err, rcpt)
	}
}

// TestClientVerifyIssuance: enrol through the auth server, anchor the DTAs' logs, renew
// the permits (entries after the anchor), fetch the proof bundle, then verify it with
// the chain, the DTAs and the auth server all stopped.
func TestClientVerifyIssuance(t *testing.T) {
	e := setupAuth(t)
	dir := e.bootstrap(t)
	e.ok(t, testPIN+"\n", e.clientArgs("enroll", dir, "--code", e.enrol(t, "alice@example.com"), "--pin-stdin")...)

	var origins []string
	for _, rec := range e.d.Bundle.DTAs {
		origins = append(origins, rec.LogOrigin)
	}
	ch := newVerifyCLIChain(t, origins)
	b, receipts, err := client.IssuanceReceipts(dir)
	if err != nil {
		t.Fatal(err)
	}
	anchored := map[uint32]uint64{}
	for _, r := range receipts {
		anchored[r.DTA] = max(anchored[r.DTA], r.Promise.Index+1)
	}
	for i, rec := range b.DTAs {
		pub, _ := rec.PublicKey()
		root := auditCLICheckpoint(t, e.d.DTAs[i].URL, rec.LogOrigin, pub, anchored[rec.Index])
		ch.send(t, ch.anchorer, ledger.Binding().PackAnchor(ledger.LogID(rec.LogOrigin), anchored[rec.Index], [32]byte(root)))
	}
	ch.sim.Commit() // the newest anchor gets its second confirmation (--confirmations 2 by default)
	// Permits renewed after the anchors: their entries are pending.
	e.ok(t, testPIN+"\n", "client", "permits", "renew", "--dir", dir, "--server", e.url, "--ca-file", e.ca, "--pin-stdin", "--days", "2")
	_, after, err := client.IssuanceReceipts(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) <= len(receipts) {
		t.Fatalf("renewal added no receipts: %d then %d", len(receipts), len(after))
	}
	wantIncluded, wantPending := len(receipts), len(after)-len(receipts)

	// Verifying before fetching names the remedy.
	e.fail(t, "", "no proof bundle at "+filepath.Join(dir, "proofs.json")+"; fetch one first", "client", "verify-issuance", "--dir", dir)
	e.fail(t, "", "--fetch needs --rpc-url", "client", "verify-issuance", "--dir", dir, "--fetch")
	e.fail(t, "", "--contract is required: the trust bundle does not name the contract", "client", "verify-issuance", "--dir", dir, "--fetch", "--rpc-url", ch.rpcURL)
	// An address without code (a devnet's contract before its restart): said as such, not as an ABI error.
	e.fail(t, "", "client verify-issuance: there is no contract at "+ch.owner.From.Hex()+" on this chain: check --contract",
		"client", "verify-issuance", "--dir", dir, "--fetch", "--rpc-url", ch.rpcURL, "--contract", ch.owner.From.Hex())

	out := e.ok(t, "", "client", "verify-issuance", "--dir", dir, "--fetch", "--rpc-url", ch.rpcURL, "--contract", ch.contract.Hex())
	if want := fmt.Sprintf("%d inclusion proofs, %d receipts not yet anchored, from 3 DTAs", wantIncluded, wantPending); !strings.Contains(out, want) {
		t.Fatalf("fetch: %s\nwant %q", out, want)
	}
	proofs := filepath.Join(dir, "proofs.json")
	if fi, err := os.Stat(proofs); err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("proofs file: %v %v", err, fi)
	}

	// Offline from here.
	e.stop(t)
	for _, x := range e.d.DTAs {
		x.Stop()
	}
	ch.sim.Close()

	out = e.ok(t, "", "client", "verify-issuance", "--dir", dir)
	t.Log(out)
	if want := fmt.Sprintf("%d included, %d pending, 0 FAILED", wantIncluded, wantPending); !strings.Contains(out, want) ||
		!strings.Contains(out, "DTA  LOG") || !strings.Contains(out, "included  size "+fmt.Sprint(anchored[1])+", block ") ||
		!strings.Contains(out, "pending   not yet anchored (latest anchor: size "+fmt.Sprint(anchored[1])) {
		t.Fatalf("offline verification:\n%s\nwant %q", out, want)
	}

	// A proof bundle whose proof for a receipt was altered: FAILED, naming the DTA and index.
	raw, err := os.ReadFile(proofs)
	if err != nil {
		t.Fatal(err)
	}
	var pb ledger.ProofBundle
	if err := json.Unmarshal(raw, &pb); err != nil {
		t.Fatal(err)
	}
	ep := &pb.DTAs[1].Entries[0]
	if len(ep.Proof) == 0 {
		t.Fatalf("DTA 2's first receipt has no proof: %+v", ep)
	}
	ep.Proof[0][0] ^= 1
	bad, _ := ledger.MarshalProofBundle(&pb)
	badFile := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(badFile, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	errOut := e.fail(t, "", fmt.Sprintf("DTA 2 log %s entry %d: not included at index %d under the root anchored at size %d", origins[1], ep.Index, ep.Index, anchored[2]),
		"client", "verify-issuance", "--dir", dir, "--proofs", badFile)
	if !strings.Contains(errOut, "1 receipt(s) FAILED") {
		t.Fatalf("altered proof: %s", errOut)
	}

	// A receipt whose entry was altered in the token file: FAILED, naming the DTA and index.
	tokenPath := filepath.Join(dir, "token.json")
	tok, err := os.ReadFile(tokenPath)
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]json.RawMessage
	if err := json.Unmarshal(tok, &st); err != nil {
		t.Fatal(err)
	}
	var rs []client.Receipt
	if err := json.Unmarshal(st["promises"], &rs); err != nil {
		t.Fatal(err)
	}
	r := &rs[len(rs)-1] // a pending one: the promise still catches it
	r.Entry = []byte(strings.Replace(string(r.Entry), `"permit"`, `"client"`, 1))
	st["promises"], _ = json.Marshal(rs)
	tok, _ = json.Marshal(st)
	if err := os.WriteFile(tokenPath, tok, 0o600); err != nil {
		t.Fatal(err)
	}
	e.fail(t, "", fmt.Sprintf("DTA %d log %s entry %d: the DTA's promise does not verify for this entry", r.DTA, origins[r.DTA-1], r.Promise.Index),
		"client", "verify-issuance", "--dir", dir)
}
