package bench

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/polyroot/polyroot/dta"
	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/internal/freeport"
	"github.com/polyroot/polyroot/internal/keystore"
	"github.com/polyroot/polyroot/internal/testbin"
	"github.com/polyroot/polyroot/internal/testdomain"
	"github.com/polyroot/polyroot/internal/ticket"
	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/pairing"
)

// oneDTA starts one DTA of a one-DTA domain, a real `polyroot dta serve` child
// process on loopback, and returns its URL, the registrar key that signs its tickets
// and the child (whose CPU time is the DTA's).
func oneDTA(b *testing.B) (string, ed25519.PrivateKey, *testbin.Child) {
	b.Helper()
	ctx := context.Background()
	dir := b.TempDir()
	const passphrase = "bench"
	keysDir := filepath.Join(dir, "keys")
	ks, err := keystore.OpenFile(keysDir, []byte(passphrase), keystore.WithScryptWorkFactor(10))
	if err != nil {
		b.Fatal(err)
	}
	l, err := freeport.Listen() // below the ephemeral range: still free when the child listens
	if err != nil {
		b.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // the child listens there
	rec, err := dta.Init(ctx, ks, "bench.example.com", 1, "http://"+addr)
	if err != nil {
		b.Fatal(err)
	}
	// A bundle names at least two DTAs; the second one never runs here.
	peerKeys, err := keystore.OpenFile(filepath.Join(dir, "peer-keys"), []byte(passphrase), keystore.WithScryptWorkFactor(10))
	if err != nil {
		b.Fatal(err)
	}
	peer, err := dta.Init(ctx, peerKeys, "bench.example.com", 2, "https://127.0.0.1:1")
	if err != nil {
		b.Fatal(err)
	}
	regPub, regPriv, _ := ed25519.GenerateKey(nil)
	file, _, err := bundle.Sign(&bundle.Bundle{Version: 1, Protocol: pairing.ProtocolVersion, Domain: "bench.example.com",
		Mode: "additive", Threshold: 2, PermitPeriod: 86400, RegistrarKey: hex.EncodeToString(regPub), DTAs: []bundle.DTA{*rec, *peer}}, regPriv)
	if err != nil {
		b.Fatal(err)
	}
	bundleFile := filepath.Join(dir, "bundle.json")
	if err := os.WriteFile(bundleFile, file, 0o644); err != nil {
		b.Fatal(err)
	}
	child := testbin.StartChild(b, polyrootBinary(b), testbin.ChildEnv("POLYROOT_KEYSTORE_PASSPHRASE="+passphrase), // GOMAXPROCS passes through
		filepath.Join(dir, "serve.log"), []string{"dta", "serve", "--bundle", bundleFile, "--index", "1",
			"--keystore-dir", keysDir, "--data-dir", benchDataDir(b), "--listen", addr, "--metrics-listen", "off",
			"--rate-limit", "1000000000", "--rate-burst", "1000000000", "--log-format", "text", "--log-level", "warn"})
	return child.URL, regPriv, child
}

// BenchmarkDTAIssueHTTP is a client share from a real DTA process (`polyroot dta
// serve`) over HTTP on loopback, from 64 concurrent clients per CPU, including ticket
// checks, the state database and the log (on /dev/shm when there is one:
// benchDataDir). Its cpu-ns/op is the DTA process's CPU time per share;
// client-cpu-ns/op is this process's, the clients'. Compare cpu-ns/op with
// BenchmarkIssueClientShare (the crypto of a share, sealing included).
//
// The requests go in rounds of dtaRound; after each, with the timer stopped, this
// process does as many shares' crypto as BenchmarkIssueClientShare does. x-crypto is
// the DTA's CPU per share ÷ that crypto's CPU per share: both come from the same
// stretches of time, so unlike the ratio of two benchmarks run a minute apart, a
// change in the machine's load does not move it.
func BenchmarkDTAIssueHTTP(b *testing.B) {
	url, registrar, child := oneDTA(b)
	bodies := make([][]byte, b.N)
	for i := range bodies {
		var id [32]byte
		copy(id[:], fmt.Sprintf("bench identity %d %d", i, time.Now().UnixNano()))
		tk, err := ticket.Sign(ticket.Ticket{Domain: "bench.example.com", Kind: ticket.KindClient, SealKey: testdomain.SealKey,
			IDHash: hex.EncodeToString(id[:]), NotAfter: time.Now().Add(time.Hour)}, registrar)
		if err != nil {
			b.Fatal(err)
		}
		bodies[i], _ = json.Marshal(wire.DTARequest{Ticket: tk})
	}
	shareCrypto, err := newShareCrypto(getFixture(b))
	if err != nil {
		b.Fatal(err)
	}
	workers := 64 * runtime.GOMAXPROCS(0)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	post := func(body []byte) error {
		resp, err := client.Post(url+"/v1/shares/client", "application/json", bytes.NewReader(body))
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	// The DTA and the crypto in process run on one CPU: see pinPID.
	const cpu = 0
	pinned, apart := pinPID(child.Pid(), cpu), true
	b.ReportAllocs()
	dta0, okDTA0 := pidCPU(child.Pid())
	own0, okOwn0 := processCPU()
	var cryptoCPU int64
	b.ResetTimer()
	for done := 0; done < b.N && !b.Failed(); {
		round := bodies[done:min(done+dtaRound, b.N)]
		var next atomic.Int64
		var wg sync.WaitGroup
		apart = offCPU(cpu, func() {
			for range min(workers, len(round)) {
				wg.Go(func() {
					for i := next.Add(1) - 1; i < int64(len(round)); i = next.Add(1) - 1 {
						if err := post(round[i]); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
		}) && apart
		b.StopTimer()
		var c0, c1 int64
		var err error
		pinned = onCPU(cpu, func() {
			c0, _ = processCPU()
			for range round {
				if err = shareCrypto(); err != nil {
					break
				}
			}
			c1, _ = processCPU()
		}) && pinned
		if err != nil {
			b.Fatal(err)
		}
		cryptoCPU += c1 - c0
		b.StartTimer()
		done += len(round)
	}
	b.StopTimer()
	dta1, okDTA1 := pidCPU(child.Pid())
	own1, okOwn1 := processCPU()
	if !okDTA0 || !okDTA1 || !okOwn0 || !okOwn1 {
		b.Fatal("the CPU time of a process cannot be read")
	}
	n := float64(b.N)
	b.ReportMetric(float64(dta1-dta0)/n, "cpu-ns/op")
	b.ReportMetric(float64(own1-own0-cryptoCPU)/n, "client-cpu-ns/op")
	b.ReportMetric(float64(dta1-dta0)/float64(cryptoCPU), "x-crypto")
	if !pinned {
		b.Log("the DTA and the crypto in process could not be kept on one CPU: x-crypto is noisier")
	}
	if !apart {
		b.Log("the clients could not be kept off the DTA's CPU: x-crypto is higher")
	}
}

// dtaRound is how many shares BenchmarkDTAIssueHTTP asks for between two stretches of
// the same crypto in process.
const dtaRound = 256

// reportProcessCPU starts counting the process's CPU time; the function it returns
// reports it per operation as cpu-ns/op. Unlike ns/op it leaves out the time spent
// waiting while other processes hold the CPUs, so two benchmarks of one run compare
// on a shared machine; it counts every goroutine of the process, the garbage
// collector's included.
func reportProcessCPU(b *testing.B) func() { return reportProcessCPUAs(b, "cpu-ns/op") }

// reportProcessCPUAs is reportProcessCPU with the metric's unit.
func reportProcessCPUAs(b *testing.B, unit string) func() {
	t0, ok0 := processCPU()
	return func() {
		if t1, ok1 := processCPU(); ok0 && ok1 && b.N > 0 {
			b.ReportMetric(float64(t1-t0)/float64(b.N), unit)
		}
	}
}
