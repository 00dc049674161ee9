package browsertest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/polyroot/polyroot/internal/wasmclient"
)

// The WebAssembly client is built once per test binary, into a temporary directory
// that TestMain removes.
var wasmBuild struct {
	once    sync.Once
	dir     string
	err     error
	elapsed time.Duration
	keep    bool // dir is the caller's (wasmDirEnv), not removed
}

func TestMain(m *testing.M) {
	code := m.Run()
	if wasmBuild.dir != "" && !wasmBuild.keep {
		os.RemoveAll(wasmBuild.dir)
	}
	os.Exit(code)
}

// wasmDir returns the directory holding polyroot.wasm, built with GOOS=js GOARCH=wasm
// from ./cmd/polyroot-wasm, and wasm_exec.js from the same Go's GOROOT, as
// webui.Config.WASMDir wants them (or the directory wasmDirEnv names).
func wasmDir(t testing.TB) string {
	t.Helper()
	wasmBuild.once.Do(buildWASM)
	if wasmBuild.err != nil {
		t.Fatal(wasmBuild.err)
	}
	return wasmBuild.dir
}

// wasmDirEnv names a directory that already holds polyroot.wasm and wasm_exec.js
// (e.g. bin/ after make build); the tests then use it instead of building.
const wasmDirEnv = "POLYROOT_WASM_DIR"

func buildWASM() {
	b := &wasmBuild
	if dir := os.Getenv(wasmDirEnv); dir != "" {
		for _, f := range []string{"polyroot.wasm", "wasm_exec.js"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				b.err = fmt.Errorf("%s=%s: %v", wasmDirEnv, dir, err)
				return
			}
		}
		abs, err := filepath.Abs(dir)
		b.dir, b.err = abs, err
		b.keep = true
		return
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		b.err = err
		return
	}
	out, err := exec.Command(goBin, "env", "GOMOD", "GOROOT").Output()
	if err != nil {
		b.err = err
		return
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 {
		b.err = fmt.Errorf("go env GOMOD GOROOT: %q", out)
		return
	}
	root, goroot := filepath.Dir(lines[0]), lines[1]
	if b.dir, err = os.MkdirTemp("", "polyroot-browsertest-"); err != nil {
		b.err = err
		return
	}
	start := time.Now()
	// The flags of make build, so that the size and speed measured are the shipped ones.
	cmd := exec.Command(goBin, wasmclient.BuildArgs(filepath.Join(b.dir, "polyroot.wasm"))...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.err = fmt.Errorf("GOOS=js GOARCH=wasm go build ./cmd/polyroot-wasm: %v\n%s", err, out)
		return
	}
	b.elapsed = time.Since(start)
	var js []byte
	for _, p := range []string{"lib/wasm/wasm_exec.js", "misc/wasm/wasm_exec.js"} {
		if js, err = os.ReadFile(filepath.Join(goroot, p)); err == nil {
			break
		}
	}
	if err != nil {
		b.err = fmt.Errorf("wasm_exec.js in GOROOT %s: %v", goroot, err)
		return
	}
	b.err = os.WriteFile(filepath.Join(b.dir, "wasm_exec.js"), js, 0o644)
}
