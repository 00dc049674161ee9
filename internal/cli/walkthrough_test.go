package cli

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/polyroot/polyroot/internal/testbin"
)

// TestWalkThrough runs the sh blocks of deploy/examples/README.md in order, as
// written, in bash, on a copy of that directory, with a freshly built polyroot on the
// PATH: the document cannot drift from the command. Its fixed ports (8440–8443,
// 9440–9443) are those of a network namespace of its own when unshare(1) can make one
// (so that other tests' listeners cannot collide), else the host's loopback.
func TestWalkThrough(t *testing.T) {
	if testing.Short() {
		t.Skip("builds polyroot and starts four services")
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatalf("the walk-through needs bash: %v", err)
	}
	src := filepath.Join(deployDir(t), "examples")
	readme, err := os.ReadFile(filepath.Join(src, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?ms)^```sh\n(.*?)^```").FindAllSubmatch(readme, -1)
	if len(blocks) < 2 {
		t.Fatalf("deploy/examples/README.md has %d sh blocks", len(blocks))
	}
	dir := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".toml") {
			raw, err := os.ReadFile(filepath.Join(src, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, e.Name()), raw, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	binDir := t.TempDir()
	testbin.Polyroot(t, binDir)

	// set -e: any command of the document that fails fails the test. The services the
	// document starts in the background are stopped by the kill of the process group.
	var script bytes.Buffer
	script.WriteString("set -euo pipefail\n")
	for _, b := range blocks {
		script.Write(b[1])
	}
	script.WriteString("echo WALKTHROUGH-DONE\n")
	scriptPath := filepath.Join(t.TempDir(), "walkthrough.sh")
	if err := os.WriteFile(scriptPath, script.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	args := []string{bash, scriptPath}
	if exec.Command("unshare", "-rn", "ip", "link", "set", "lo", "up").Run() == nil {
		args = []string{"unshare", "-rn", bash, "-c", "ip link set lo up && exec " + bash + " " + scriptPath}
	} else {
		t.Log("unshare -rn (or ip) is not available: the walk-through uses the host's loopback ports")
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = dir
	env := []string{"PATH=" + binDir + string(os.PathListSeparator) + os.Getenv("PATH"), "HOME=" + t.TempDir(), "LANG=C.UTF-8"}
	for _, kv := range os.Environ() { // the Go toolchain's settings, nothing of polyroot's
		if strings.HasPrefix(kv, "GO") || strings.HasPrefix(kv, "TMPDIR=") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A file, not a pipe: the services started in the background outlive the script
	// and would hold a pipe open.
	outPath := filepath.Join(t.TempDir(), "output")
	out, err := os.Create(outPath)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	err = cmd.Start()
	if err == nil {
		err = cmd.Wait()
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // the services it left running
	}
	raw, _ := os.ReadFile(outPath)
	text := string(raw)
	if err != nil || !strings.Contains(text, "WALKTHROUGH-DONE") {
		t.Fatalf("the walk-through failed: %v\n%s", err, text)
	}
	for _, want := range []string{`logged in to api.example.com as "alice@example.com"`, "blocked after too many failed logins",
		"polyroot: 1 enrolment revoked on the server and at every DTA"} {
		if !strings.Contains(text, want) {
			t.Fatalf("the walk-through's output lacks %q:\n%s", want, text)
		}
	}
}
