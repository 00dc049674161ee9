package bench

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/polyroot/polyroot/dta"
	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/internal/keystore"
	"github.com/polyroot/polyroot/internal/testdomain"
	"github.com/polyroot/polyroot/internal/ticket"
	"github.com/polyroot/polyroot/internal/translog"
	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/pairing"
)

// oneDTA starts one DTA of a one-DTA domain as an HTTP server on loopback and returns
// its URL and the registrar key that signs its tickets.
func oneDTA(b testing.TB) (string, ed25519.PrivateKey) {
	b.Helper()
	ctx := context.Background()
	translog.RouteTesseraLogs(slog.New(slog.DiscardHandler))
	dir := b.TempDir()
	ks, err := keystore.OpenFile(filepath.Join(dir, "keys"), []byte("bench"), keystore.WithScryptWorkFactor(10))
	if err != nil {
		b.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	url := "http://" + l.Addr().String()
	rec, err := dta.Init(ctx, ks, "bench.example.com", 1, url)
	if err != nil {
		b.Fatal(err)
	}
	// A bundle names at least two DTAs; the second one never runs here.
	peerKeys, err := keystore.OpenFile(filepath.Join(dir, "peer-keys"), []byte("bench"), keystore.WithScryptWorkFactor(10))
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
	bd, err := bundle.Parse(file)
	if err != nil {
		b.Fatal(err)
	}
	svc, err := dta.New(ctx, dta.Config{Bundle: bd, Index: 1, Keys: ks, DataDir: benchDataDir(b), RatePerSecond: 1e9, RateBurst: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: svc.Handler()}
	go srv.Serve(l)
	b.Cleanup(func() {
		srv.Close()
		svc.Close(ctx)
	})
	return url, regPriv
}

// BenchmarkDTAIssueHTTP is a client share over HTTP on loopback, from 64 concurrent
// clients per CPU, including ticket checks, the state database and the log (on
// /dev/shm when there is one: benchDataDir). Compare with BenchmarkIssueClientShare
// (the crypto of a share, sealing included) in the same run: on a shared machine
// compare their cpu-ns/op (reportProcessCPU), which the waits for a CPU held by other
// processes do not move as they move ns/op.
func BenchmarkDTAIssueHTTP(b *testing.B) {
	url, registrar := oneDTA(b)
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
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var next atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(64)
	b.ResetTimer()
	defer reportProcessCPU(b)()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			body := bodies[next.Add(1)-1]
			resp, err := client.Post(url+"/v1/shares/client", "application/json", bytes.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

// reportProcessCPU starts counting the process's CPU time; the function it returns
// reports it per operation as cpu-ns/op. Unlike ns/op it leaves out the time spent
// waiting while other processes hold the CPUs, so two benchmarks of one run compare
// on a shared machine; it counts every goroutine of the process, the garbage
// collector's included.
func reportProcessCPU(b *testing.B) func() {
	t0, ok0 := processCPU()
	return func() {
		if t1, ok1 := processCPU(); ok0 && ok1 && b.N > 0 {
			b.ReportMetric(float64(t1-t0)/float64(b.N), "cpu-ns/op")
		}
	}
}
