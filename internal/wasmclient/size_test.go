package wasmclient

import (
	"bytes"
	"compress/gzip"
	"os"
	"os/exec"
	"testing"
)

// wasmBudget is the most the gzipped WebAssembly client may weigh (issue 15).
const wasmBudget = 1_500_000

// TestWASMSize builds cmd/polyroot-wasm as the Makefile does and checks its size
// compressed with gzip -9 (compress/gzip at level 9 when there is no gzip) against
// the budget.
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
	t.Logf("polyroot.wasm: %d bytes, %d gzipped (budget %d)", len(raw), size, wasmBudget)
	if size > wasmBudget {
		t.Errorf("the gzipped WebAssembly client is %d bytes, over the budget of %d", size, wasmBudget)
	}
}
