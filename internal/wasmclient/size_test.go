package wasmclient

import (
	"bytes"
	"compress/gzip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/polyroot/polyroot/internal/testbin"
)

// wasmBudget is the target size of the gzipped WebAssembly client (issue 15).
const wasmBudget = 1_500_000

// TestWASMSize builds cmd/polyroot-wasm as the Makefile does and reports its size
// compressed with gzip -9 (compress/gzip at level 9 when there is no gzip); it fails
// past the budget.
func TestWASMSize(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the WebAssembly client (about a minute)")
	}
	out := buildWASM(t)
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var size int
	if gz, err := exec.LookPath("gzip"); err == nil {
		b, err := exec.Command(gz, "-9", "-c", out).Output()
		if err != nil {
			t.Fatal(err)
		}
		size = len(b)
	} else {
		var buf bytes.Buffer
		w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		w.Write(raw)
		w.Close()
		size = buf.Len()
	}
	t.Logf("polyroot.wasm: %d bytes, %d gzipped: %.1f%% of the budget of %d", len(raw), size, 100*float64(size)/wasmBudget, wasmBudget)
	if size > wasmBudget {
		t.Errorf("the gzipped WebAssembly client is %d bytes, %.2f× the budget of %d", size, float64(size)/wasmBudget, wasmBudget)
	}
}

// TestBuildFlagsShipped: make build and the deploy image build the browser client with
// the flags the tests measure (BuildArgs).
func TestBuildFlagsShipped(t *testing.T) {
	for _, f := range []string{"../../Makefile", "../../deploy/compose/Dockerfile"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, flag := range gcflags {
			if !bytes.Contains(b, []byte(flag)) {
				t.Errorf("%s does not build the browser client with %s", f, flag)
			}
		}
	}
}

// TestPairingInNode runs package pairing's tests that the browser build has (the
// decoders' rejections, DLEQ proofs, hashing, combination) in WebAssembly under Node:
// there the decoders and the DLEQ check are circl's alone (pairing/point_js.go).
func TestPairingInNode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds package pairing's tests for WebAssembly")
	}
	node := testbin.Path(t, "POLYROOT_NODE_BIN", "node")
	goroot := mustGoRoot(t)
	cmd := exec.Command(filepath.Join(goroot, "bin", "go"), "test", "-count=1",
		"-exec", filepath.Join(goroot, "lib", "wasm", "go_js_wasm_exec"), "github.com/polyroot/polyroot/pairing")
	cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm", "CGO_ENABLED=0",
		"PATH="+filepath.Dir(node)+string(os.PathListSeparator)+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("GOOS=js GOARCH=wasm go test ./pairing: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
