package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"

	"github.com/polyroot/polyroot/internal/freeport"
	"github.com/polyroot/polyroot/ledger"
)

// TestLedgerCommands: an operator makes the owner's and a DTA's keys, deploys the
// contract and registers the DTA's log with the CLI alone, over JSON-RPC; the contract
// then names the DTA's key as the log's anchorer. Mistakes get a clear error.
func TestLedgerCommands(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	keygen := func(name string) (string, common.Address) {
		t.Helper()
		path := filepath.Join(dir, name)
		code, out, errOut := run("ledger", "keygen", "--out", path)
		if code != 0 || !common.IsHexAddress(strings.TrimSpace(out)) {
			t.Fatalf("ledger keygen: exit %d\n%s%s", code, out, errOut)
		}
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("key file: %v %v", fi, err)
		}
		return path, common.HexToAddress(strings.TrimSpace(out))
	}
	ownerKey, owner := keygen("owner.key")
	anchorKey, anchorer := keygen("dta-1-chain.key")
	if code, _, errOut := run("ledger", "keygen", "--out", ownerKey); code != 1 || !strings.Contains(errOut, "never overwritten") {
		t.Fatalf("keygen over an existing key: exit %d\n%s", code, errOut)
	}

	l, err := freeport.Listen()
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	chain, err := ledger.NewEmbeddedRPC(100*time.Millisecond, addr, owner, anchorer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { chain.Close() })
	rpc := "http://" + addr

	poorKey, poor := keygen("poor.key") // not funded by the chain
	if code, _, errOut := run("ledger", "deploy", "--rpc-url", rpc, "--key-file", poorKey, "--timeout", "20s"); code != 1 ||
		!strings.Contains(errOut, "fund the account "+poor.Hex()+" of --key-file on chain 1337") {
		t.Fatalf("ledger deploy from an unfunded account: exit %d\n%s", code, errOut)
	}
	code, out, errOut := run("ledger", "deploy", "--rpc-url", rpc, "--key-file", ownerKey, "--timeout", "20s")
	contract := strings.TrimSpace(out)
	if code != 0 || !common.IsHexAddress(contract) || !strings.Contains(errOut, "--chain-id 1337 --contract "+contract) {
		t.Fatalf("ledger deploy: exit %d\n%s%s", code, out, errOut)
	}
	const origin = "polyroot/ledger.example.com/dta-1"
	register := func(keyFile, contract string) (int, string) {
		code, _, errOut := run("ledger", "register", "--rpc-url", rpc, "--key-file", keyFile, "--contract", contract,
			"--origin", origin, "--anchorer", anchorer.Hex(), "--timeout", "20s")
		return code, errOut
	}
	if code, errOut := register(ownerKey, contract); code != 0 || !strings.Contains(errOut, anchorer.Hex()+" may now anchor the log "+origin) {
		t.Fatalf("ledger register: exit %d\n%s", code, errOut)
	}
	data := ledger.Binding().PackAnchorer(ledger.LogID(origin))
	to := common.HexToAddress(contract)
	ret, err := chain.Chain().CallContract(context.Background(), ethereum.CallMsg{To: &to, Data: data}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ledger.Binding().UnpackAnchorer(ret); err != nil || got != anchorer {
		t.Fatalf("the contract's anchorer of %s is %v (%v), want %v", origin, got, err, anchorer)
	}

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"fail/not-the-owner", []string{"ledger", "register", "--rpc-url", rpc, "--key-file", anchorKey, "--contract", contract,
			"--origin", origin, "--anchorer", anchorer.Hex(), "--timeout", "20s"}, "is not the owner of the contract"},
		{"fail/no-contract-there", []string{"ledger", "register", "--rpc-url", rpc, "--key-file", ownerKey, "--contract", owner.Hex(),
			"--origin", origin, "--anchorer", anchorer.Hex()}, "there is no contract at " + owner.Hex()},
		{"fail/zero-anchorer", []string{"ledger", "register", "--rpc-url", rpc, "--key-file", ownerKey, "--contract", contract,
			"--origin", origin, "--anchorer", "0x0000000000000000000000000000000000000000"}, "--anchorer"},
		{"fail/no-origin", []string{"ledger", "register", "--rpc-url", rpc, "--key-file", ownerKey, "--contract", contract,
			"--anchorer", anchorer.Hex()}, "--origin is required"},
		{"fail/no-key-file", []string{"ledger", "deploy", "--rpc-url", rpc}, "--key-file is required"},
		{"fail/no-rpc-url", []string{"ledger", "deploy", "--key-file", ownerKey}, "--rpc-url is required"},
		{"fail/missing-key-file", []string{"ledger", "deploy", "--rpc-url", rpc, "--key-file", filepath.Join(dir, "nope.key")}, "chain key file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := run(tc.args...)
			if code != 1 || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, want %q\n%s%s", code, tc.want, out, errOut)
			}
		})
	}
}
