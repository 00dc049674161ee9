package ledger

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/polyroot/polyroot/internal/testbin"
)

const (
	contractsDir = "contracts"
	solcVersion  = "0.8.37" // ledger/contracts/package.json, and the pragma
)

// artifact is ledger/contracts/IssuanceLog.json, written by compile.js.
type artifact struct {
	ContractName     string          `json:"contractName"`
	Compiler         string          `json:"compiler"`
	EVMVersion       string          `json:"evmVersion"`
	ABI              json.RawMessage `json:"abi"`
	Bytecode         string          `json:"bytecode"`
	DeployedBytecode string          `json:"deployedBytecode"`
}

func readArtifact(t *testing.T) artifact {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(contractsDir, "IssuanceLog.json"))
	if err != nil {
		t.Fatal(err)
	}
	var a artifact
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Fatalf("IssuanceLog.json: %v", err)
	}
	return a
}

// pinnedSolc returns the node executable for compile.js, after checking that the pinned
// solc package is installed in ledger/contracts/node_modules. When either is missing the
// test is skipped under plain `go test`, and fails under POLYROOT_INTEGRATION=1 (make test,
// which installs solc with `make solc` first) — the same rule as internal/testbin.
func pinnedSolc(t *testing.T) string {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		if testbin.Required() {
			t.Fatalf(format+"; %s=1 requires it: run `make solc` (npm ci in ledger/contracts)", append(args, testbin.IntegrationEnv)...)
		}
		t.Skipf(format+"; skipping (`make solc` installs it)", args...)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node (Node.js) is not on PATH: %v", err)
		return ""
	}
	raw, err := os.ReadFile(filepath.Join(contractsDir, "node_modules", "solc", "package.json"))
	if errors.Is(err, os.ErrNotExist) {
		missing("the solc npm package is not installed in ledger/contracts/node_modules")
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	var pkg struct{ Version string }
	if err := json.Unmarshal(raw, &pkg); err != nil {
		t.Fatalf("node_modules/solc/package.json: %v", err)
	}
	if pkg.Version != solcVersion {
		missing("ledger/contracts/node_modules has solc %s, want %s", pkg.Version, solcVersion)
		return ""
	}
	return node
}

// TestContractBuildIsReproducible compiles IssuanceLog.sol with the pinned solc and checks
// that the committed IssuanceLog.json is byte for byte the result.
func TestContractBuildIsReproducible(t *testing.T) {
	node := pinnedSolc(t)
	cmd := exec.Command(node, "compile.js", "--check")
	cmd.Dir = contractsDir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node compile.js --check: %v\n%s", err, out)
	}
	t.Logf("%s", bytes.TrimSpace(out))
}

// TestBindingsMatchArtifact checks that the committed Go bindings embed the committed ABI
// and creation bytecode (so `make contracts` was run after the last compile).
func TestBindingsMatchArtifact(t *testing.T) {
	a := readArtifact(t)
	if a.ContractName != "IssuanceLog" || a.Compiler != solcVersion || a.EVMVersion != "cancun" {
		t.Fatalf("IssuanceLog.json is %s from solc %s for %s, want IssuanceLog from %s for cancun",
			a.ContractName, a.Compiler, a.EVMVersion, solcVersion)
	}
	if !strings.EqualFold(IssuanceLogMetaData.Bin, a.Bytecode) {
		t.Fatalf("issuancelog.go bytecode (%d hex chars) differs from IssuanceLog.json (%d): run `make contracts`",
			len(IssuanceLogMetaData.Bin), len(a.Bytecode))
	}
	if len(common.FromHex(a.Bytecode)) == 0 || len(common.FromHex(a.DeployedBytecode)) == 0 {
		t.Fatal("empty bytecode in IssuanceLog.json")
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, a.ABI); err != nil {
		t.Fatal(err)
	}
	if compact.String() != IssuanceLogMetaData.ABI {
		t.Fatalf("issuancelog.go ABI differs from IssuanceLog.json: run `make contracts`")
	}
}
