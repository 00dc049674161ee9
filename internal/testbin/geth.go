package testbin

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A Geth is a real `geth --dev` node (chain ID 1337, a funded and unlocked dev account,
// one block a second, in memory) started for one test and killed when the test ends.
type Geth struct {
	URL string // http://127.0.0.1:PORT, the JSON-RPC endpoint
}

// StartGeth starts `geth --dev --dev.period 1` with JSON-RPC over HTTP on a free loopback
// port. The binary comes from POLYROOT_GETH_BIN or PATH (see Path). The node runs in its
// own process group with a clean environment; t.Cleanup kills it, and Pdeathsig kills it
// too if the test binary dies.
func StartGeth(t testing.TB) *Geth {
	t.Helper()
	bin := Path(t, "POLYROOT_GETH_BIN", "geth")
	for attempt := 1; ; attempt++ {
		g, retry := tryStartGeth(t, bin)
		if g != nil {
			return g
		}
		if !retry || attempt == 5 {
			t.Fatalf("geth --dev did not start (attempt %d)", attempt)
		}
		t.Logf("geth --dev: port taken, retrying (attempt %d)", attempt)
	}
}

func tryStartGeth(t testing.TB, bin string) (g *Geth, retry bool) {
	t.Helper()
	start := time.Now()
	httpPort, authPort, p2pPort := freePort(t), freePort(t), freePort(t)
	dir := t.TempDir()
	logPath := filepath.Join(dir, "geth.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()

	cmd := exec.Command(bin, "--dev", "--dev.period", "1",
		"--datadir", filepath.Join(dir, "data"),
		"--http", "--http.addr", "127.0.0.1", "--http.port", strconv.Itoa(httpPort), "--http.api", "eth,net,web3",
		"--authrpc.addr", "127.0.0.1", "--authrpc.port", strconv.Itoa(authPort),
		"--port", strconv.Itoa(p2pPort),
		"--ipcdisable", "--nodiscover", "--maxpeers", "0", "--verbosity", "3")
	cmd.Env = []string{"HOME=" + dir, "PATH=/usr/bin:/bin"}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
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
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			t.Errorf("geth (pid %d) did not exit after SIGKILL", cmd.Process.Pid)
		}
		if t.Failed() {
			t.Logf("geth log (tail):\n%s", logTail())
		}
	})

	url := "http://127.0.0.1:" + strconv.Itoa(httpPort)
	deadline := time.Now().Add(60 * time.Second)
	for !gethHealthy(url) {
		select {
		case <-exited:
			tail := logTail()
			if strings.Contains(tail, "address already in use") {
				return nil, true
			}
			t.Fatalf("geth exited early: %v\n%s", cmd.ProcessState, tail)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("geth not answering JSON-RPC after 60 s:\n%s", logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("geth --dev up at %s in %v", url, time.Since(start).Round(time.Millisecond))
	return &Geth{URL: url}, false
}

// gethHealthy reports whether eth_chainId answers.
func gethHealthy(url string) bool {
	c := &http.Client{Timeout: 2 * time.Second}
	defer c.CloseIdleConnections()
	body := `{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}`
	resp, err := c.Post(url, "application/json", bytes.NewBufferString(body))
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var out struct {
		Result string `json:"result"`
	}
	return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&out) == nil && out.Result != ""
}
