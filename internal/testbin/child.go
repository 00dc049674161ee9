package testbin

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ChildPassphrase is the file keystore passphrase ChildEnv gives a child process.
const ChildPassphrase = "crash test passphrase"

// ChildEnv is this process's environment without polyroot or Vault settings, with the
// test keystore's passphrase (ChildPassphrase), a low scrypt work factor, and extra
// ("NAME=value") appended: the environment of a polyroot child process.
func ChildEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "POLYROOT_") && !strings.HasPrefix(kv, "VAULT_") {
			env = append(env, kv)
		}
	}
	env = append(env, "POLYROOT_KEYSTORE_PASSPHRASE="+ChildPassphrase, "POLYROOT_KEYSTORE_SCRYPT_LOG_N=10")
	return append(env, extra...)
}

// A Child is a polyroot service process (`polyroot dta serve`, `polyroot server serve`)
// started by StartChild, for tests that kill it (-9), stop it or restart it.
type Child struct {
	URL     string // from its ready line
	Metrics string // the URL of its metrics, from its ready line ("" if it names none)
	name    string
	cmd     *exec.Cmd
	exited  chan struct{}
}

// childReady finds the URL in a service's ready line ("… ready at URL (…)"), and
// childMetrics the URL of its metrics ("…; metrics at URL)").
var (
	childReady   = regexp.MustCompile(`ready at (\S+) `)
	childMetrics = regexp.MustCompile(`; metrics at (\S+)\)`)
)

// StartChild runs bin with args (a serve command that prints its ready line on
// stdout) and env, in its own process group and killed if the test process dies
// first, its stderr appended to logPath, and waits until it is ready. When the test
// ends it is killed (-9), and the log's tail is shown if the test failed.
func StartChild(t testing.TB, bin string, env []string, logPath string, args []string) *Child {
	t.Helper()
	name := strings.Join(args[:min(2, len(args))], " ")
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &Child{name: name, cmd: cmd, exited: make(chan struct{})}
	ready := make(chan [2]string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := childReady.FindStringSubmatch(sc.Text()); m != nil {
				var metrics string
				if mm := childMetrics.FindStringSubmatch(sc.Text()); mm != nil {
					metrics = mm[1]
				}
				select {
				case ready <- [2]string{m[1], metrics}:
				default:
				}
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	go func() { cmd.Wait(); close(c.exited) }()
	t.Cleanup(func() {
		c.Kill()
		<-c.exited
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 6000 {
				b = b[len(b)-6000:]
			}
			t.Logf("%s log (tail):\n%s", name, b)
		}
	})
	select {
	case urls := <-ready:
		c.URL, c.Metrics = urls[0], urls[1]
		return c
	case <-c.exited:
		t.Fatalf("%s exited before it was ready: %v", name, cmd.ProcessState)
	case <-time.After(30 * time.Second):
		t.Fatalf("%s not ready after 30 s", name)
	}
	return nil
}

// Pid is the child's process ID.
func (c *Child) Pid() int { return c.cmd.Process.Pid }

// Kill sends SIGKILL to the child's process group (no-op once it has exited).
func (c *Child) Kill() {
	select {
	case <-c.exited:
	default:
		syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	}
}

// Wait waits for the child to exit (after Kill).
func (c *Child) Wait(t testing.TB) {
	t.Helper()
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not exit after SIGKILL", c.name)
	}
}

// Stop sends SIGTERM and requires a clean exit.
func (c *Child) Stop(t testing.TB) {
	t.Helper()
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
		if code := c.cmd.ProcessState.ExitCode(); code != 0 {
			t.Fatalf("%s exited %d after SIGTERM", c.name, code)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not stop on SIGTERM", c.name)
	}
}

// RunAll calls fn(0..n-1) from workers goroutines and returns when all calls have.
func RunAll(workers, n int, fn func(i int)) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				fn(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}
