package cli

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/polyroot/polyroot/dta"
	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/internal/testbin"
	"github.com/polyroot/polyroot/pairing"
)

// The polyroot binary of the kill -9 tests, built once per test run.
var (
	killBinOnce sync.Once
	killBinDir  string
	killBin     string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if killBinDir != "" {
		os.RemoveAll(killBinDir)
	}
	os.Exit(code)
}

func polyrootBin(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("kill -9 test builds and runs the polyroot binary; skipped with -short")
	}
	killBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "polyroot-kill9-")
		if err != nil {
			t.Fatal(err)
		}
		killBinDir = dir
		start := time.Now()
		killBin = testbin.Polyroot(t, dir)
		t.Logf("built polyroot in %v", time.Since(start).Round(time.Millisecond))
	})
	if killBin == "" {
		t.Fatal("polyroot was not built")
	}
	return killBin
}

// withRoundTimeout returns args with --round-timeout set to d.
func withRoundTimeout(args []string, d string) []string {
	out := append([]string(nil), args...)
	for k := range out {
		if out[k] == "--round-timeout" {
			out[k+1] = d
		}
	}
	return out
}

// ceremonyChild is one dta dkg or dta reshare process.
type ceremonyChild struct {
	cmd    *exec.Cmd
	stderr strings.Builder
	mu     sync.Mutex
	done   chan struct{}
	err    error
}

func (c *ceremonyChild) log() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stderr.String()
}

// startCeremonyChild runs bin args in its own process group (killed if the test
// process dies); killOn, if not nil, is closed when a stderr line contains killAt.
func startCeremonyChild(t *testing.T, bin string, args []string, killAt string, killOn chan struct{}) *ceremonyChild {
	t.Helper()
	c := &ceremonyChild{cmd: exec.Command(bin, args...), done: make(chan struct{})}
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	pipe, err := c.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			c.mu.Lock()
			c.stderr.WriteString(sc.Text() + "\n")
			c.mu.Unlock()
			if killOn != nil && strings.Contains(sc.Text(), killAt) {
				close(killOn)
				killOn = nil
			}
		}
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		<-c.done
	})
	return c
}

// killMidCeremony runs args(i) as child processes for every i in idx, kills victim
// with SIGKILL once it logs that the deal round is done (after the hello round, in
// the middle of the ceremony), and requires every other one to fail naming it, having
// missed either the victim's done notice or its board.
func killMidCeremony(t *testing.T, idx []int, victim int, args func(int) []string) {
	t.Helper()
	bin := polyrootBin(t)
	kill := make(chan struct{})
	kids := map[int]*ceremonyChild{}
	for _, i := range idx {
		var k chan struct{}
		if i == victim {
			k = kill
		}
		kids[i] = startCeremonyChild(t, bin, withRoundTimeout(args(i), "2s"), "round=deal", k)
	}
	select {
	case <-kill:
	case <-kids[victim].done:
		t.Fatalf("DTA %d exited before the deal round: %v\n%s", victim, kids[victim].err, kids[victim].log())
	case <-time.After(30 * time.Second):
		t.Fatalf("DTA %d did not reach the deal round:\n%s", victim, kids[victim].log())
	}
	syscall.Kill(-kids[victim].cmd.Process.Pid, syscall.SIGKILL)
	<-kids[victim].done
	for _, i := range idx {
		if i == victim {
			continue
		}
		select {
		case <-kids[i].done:
		case <-time.After(30 * time.Second):
			t.Fatalf("DTA %d still runs 30 s after DTA %d was killed:\n%s", i, victim, kids[i].log())
		}
		log := kids[i].log()
		t.Logf("DTA %d: %s", i, lastLine(log))
		last := lastLine(log)
		// The victim may die before its done notice reaches this DTA, or after it, so
		// that only this DTA's posts to the victim's board fail: both abort naming it.
		lost := strings.Contains(last, "no done notice from") || strings.Contains(last, "did not take this DTA's posts")
		if kids[i].err == nil || !lost || !strings.Contains(last, fmt.Sprintf("DTA %d (", victim)) ||
			!strings.Contains(last, "nothing was stored") {
			t.Fatalf("DTA %d after DTA %d was killed: exit %v\n%s", i, victim, kids[i].err, log)
		}
	}
}

// TestDKGKill9: DTA 2's dta dkg is killed with SIGKILL after the deal round; DTAs 1
// and 3 abort naming it and store nothing; a new session with DTA 2 restarted
// completes, and the shares combine.
func TestDKGKill9(t *testing.T) {
	p, dkgArgs := dkgSetup(t, 3, 2, "20s")
	dir := filepath.Dir(p("%d", 0))
	killMidCeremony(t, []int{1, 2, 3}, 2, dkgArgs)
	for i := 1; i <= 3; i++ {
		if storedShare(t, p("keys-%d", i), dta.SecretMasterShare) != nil {
			t.Fatalf("DTA %d stored a master share after the abort", i)
		}
		if _, err := os.Stat(p("transcript-%d.json", i)); err == nil {
			t.Fatalf("DTA %d wrote a transcript after the abort", i)
		}
	}

	// The rerun: a new session (fresh nonce), the same keystores, DTA 2 restarted.
	args := []string{"dkg", "session", "--domain", dkgDomain, "--threshold", "2", "--out", filepath.Join(dir, "session-2.json")}
	addrs := map[int]string{}
	for i := 1; i <= 3; i++ {
		addrs[i] = freePort(t)
		args = append(args, "--member", p("dta-%d.json", i)+"=http://"+addrs[i])
	}
	mustRun(t, args...)
	codes, errs := runEach([]int{1, 2, 3}, func(i int) []string {
		a := dkgArgs(i)
		for k := range a {
			switch a[k] {
			case "--session":
				a[k+1] = filepath.Join(dir, "session-2.json")
			case "--listen":
				a[k+1] = addrs[i]
			}
		}
		return a
	})
	shares := map[uint32]*pairing.Scalar{}
	for i := 1; i <= 3; i++ {
		if codes[i] != 0 {
			t.Fatalf("rerun, DTA %d: %s", i, errs[i])
		}
		shares[uint32(i)] = storedShare(t, p("keys-%d", i), dta.SecretMasterShare)
	}
	mustRun(t, "registrar", "keygen", "--out", filepath.Join(dir, "registrar.pem"))
	w := &reshareWorld{t: t, p: p, dir: dir}
	b := w.assemble("bundle.json", p("transcript-%d.json", 2), 2, []string{p("dta-%d.dkg.json", 1), p("dta-%d.dkg.json", 2), p("dta-%d.dkg.json", 3)}, "")
	pk, _ := b.PublicKey()
	if !combine(t, shares, 1, 2).Equal(pk) || !combine(t, shares, 2, 3).Equal(pk) {
		t.Fatal("the shares of the rerun do not combine to the bundle's public key")
	}
}

// TestReshareKill9: in a resharing of a 2-of-3 domain, DTA 3's dta reshare is killed
// with SIGKILL after the deal round; DTAs 1 and 2 abort naming it, store no pending
// share and keep their active one; a new session with DTA 3 restarted completes, and
// the successor bundle, loaded on SIGHUP by the DTAs' `dta serve` processes that ran
// all along, activates shares that combine to the same key.
func TestReshareKill9(t *testing.T) {
	w := dkgDomainOf(t, 3, 2)
	raw, _ := os.ReadFile(w.path("bundle.json"))
	b0, err := bundle.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	pk, _ := b0.PublicKey()
	old := map[uint32]*pairing.Scalar{}
	members := map[int]string{}
	for i := 1; i <= 3; i++ {
		old[uint32(i)] = storedShare(t, w.p("keys-%d", i), dta.SecretMasterShare)
		members[i] = w.p("dta-%d.dkg.json", i)
	}
	// The DTAs serve the current bundle all along, as `dta serve` children.
	bin := polyrootBin(t)
	served := w.path("served-bundle.json")
	if err := os.WriteFile(served, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	serving := map[int]*testbin.Child{}
	for i := 1; i <= 3; i++ {
		serving[i] = testbin.StartChild(t, bin, os.Environ(), w.p("serve-%d.log", i), []string{"dta", "serve", "--bundle", served,
			"--index", fmt.Sprint(i), "--data-dir", w.p("data-%d", i), "--keystore-dir", w.p("keys-%d", i), "--listen", "127.0.0.1:0",
			"--metrics-listen", "off", "--log-format", "text", "--log-level", "info"})
	}
	killMidCeremony(t, []int{1, 2, 3}, 3, w.reshare("reshare-killed", "bundle.json", 2, members, []int{1, 2, 3}, "20s"))
	for i := 1; i <= 3; i++ {
		if storedShare(t, w.p("keys-%d", i), dta.SecretMasterShareNext) != nil {
			t.Fatalf("DTA %d stored a pending share after the abort", i)
		}
		if !storedShare(t, w.p("keys-%d", i), dta.SecretMasterShare).Equal(old[uint32(i)]) {
			t.Fatalf("DTA %d: the aborted resharing changed the active share", i)
		}
	}

	codes, errs := runEach([]int{1, 2, 3}, w.reshare("reshare-2", "bundle.json", 2, members, []int{1, 2, 3}, "20s"))
	var recs []string
	for i := 1; i <= 3; i++ {
		if codes[i] != 0 {
			t.Fatalf("rerun, DTA %d: %s", i, errs[i])
		}
		recs = append(recs, w.p("reshare-2-dta-%d.json", i))
	}
	b1 := w.assemble("bundle-1.json", w.p("reshare-2-transcript-%d.json", 1), 2, recs, "bundle.json")
	// The successor replaces the served bundle file; SIGHUP makes each DTA load it and
	// activate its pending share.
	raw1, _ := os.ReadFile(w.path("bundle-1.json"))
	if err := os.WriteFile(served, raw1, 0o644); err != nil {
		t.Fatal(err)
	}
	shares := map[uint32]*pairing.Scalar{}
	for i := 1; i <= 3; i++ {
		if err := syscall.Kill(serving[i].Pid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if log, _ := os.ReadFile(w.p("serve-%d.log", i)); bytes.Contains(log, []byte("reloaded keys and trust bundle")) {
				if !bytes.Contains(log, []byte("master share from the resharing activated")) {
					t.Fatalf("DTA %d reloaded without activating:\n%s", i, log)
				}
				// A key entry for the first bundle at start, one for the successor before it serves it.
				if b0.TranscriptSHA256 == "" || bytes.Count(log, []byte("logged the key entry of the trust bundle")) != 2 ||
					!bytes.Contains(log, []byte("serial=0 transcript_sha256="+b0.TranscriptSHA256)) ||
					!bytes.Contains(log, []byte("serial=1 transcript_sha256="+b1.TranscriptSHA256)) {
					t.Fatalf("DTA %d: not one key entry per bundle:\n%s", i, log)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("DTA %d did not reload on SIGHUP", i)
			}
		}
		rec, _ := b1.Find(uint32(i))
		shares[uint32(i)] = storedShare(t, w.p("keys-%d", i), dta.SecretMasterShare)
		if c, _ := rec.CommitmentPoint(); !pairing.G1Generator().Mul(shares[uint32(i)]).Equal(c) ||
			storedShare(t, w.p("keys-%d", i), dta.SecretMasterShareNext) != nil {
			t.Fatalf("DTA %d: after SIGHUP the active share is not the successor's, or a pending one is left", i)
		}
	}
	if !combine(t, shares, 1, 3).Equal(pk) || !combine(t, shares, 2, 3).Equal(pk) {
		t.Fatal("the shares of the rerun resharing do not combine to the public key")
	}
	if combine(t, map[uint32]*pairing.Scalar{1: old[1], 3: shares[3]}, 1, 3).Equal(pk) {
		t.Fatal("an old share combines with a new one")
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
