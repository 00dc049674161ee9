package testbin

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startServer runs a test server: bin with the arguments setup returns for a fresh
// directory (setup picks fresh ports on every attempt), in its own process group, with
// a clean environment (no VAULT_* or other settings of the caller; HOME in the test's
// directory) and its output in a log file. It waits until healthy reports true, retries
// up to 5 times when a port was taken meanwhile, and kills the process group when the
// test ends (Pdeathsig kills it too if the test binary dies), showing the log's tail
// if the test failed.
func startServer(t testing.TB, name, bin string, setup func(dir string) (args []string, healthy func() bool)) {
	t.Helper()
	startServerAs(t, name, bin, nil, setup)
}

// startServerAs is startServer with the server running as the user cred (nil: this
// process's user).
func startServerAs(t testing.TB, name, bin string, cred *syscall.Credential, setup func(dir string) (args []string, healthy func() bool)) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		if !tryStartServer(t, name, bin, cred, setup) {
			return
		}
		if attempt == 5 {
			t.Fatalf("%s did not start: its ports were taken %d times", name, attempt)
		}
		t.Logf("%s: port taken, retrying (attempt %d)", name, attempt)
	}
}

// tryStartServer starts the server once; it reports whether to retry.
func tryStartServer(t testing.TB, name, bin string, cred *syscall.Credential, setup func(dir string) ([]string, func() bool)) (retry bool) {
	t.Helper()
	start := time.Now()
	dir := t.TempDir()
	args, healthy := setup(dir)
	logPath := filepath.Join(dir, "server.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"HOME=" + dir, "PATH=/usr/bin:/bin"}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: cred}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	logTail := func() string {
		b, _ := os.ReadFile(logPath)
		if len(b) > 4000 {
			b = b[len(b)-4000:]
		}
		return string(b)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // the whole process group
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			t.Errorf("%s (pid %d) did not exit after SIGKILL", name, cmd.Process.Pid)
		}
		if t.Failed() {
			t.Logf("%s log (tail):\n%s", name, logTail())
		}
	})
	deadline := time.Now().Add(90 * time.Second)
	for !healthy() {
		select {
		case <-exited:
			tail := logTail()
			if strings.Contains(tail, "address already in use") || strings.Contains(tail, "Address already in use") {
				return true
			}
			t.Fatalf("%s exited early: %v\n%s", name, cmd.ProcessState, tail)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not healthy after 90 s:\n%s", name, logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%s up in %v", name, time.Since(start).Round(time.Millisecond))
	return false
}

// freePort returns a loopback TCP port that was free a moment ago (a clash with
// another process is caught by startServer's retry).
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
