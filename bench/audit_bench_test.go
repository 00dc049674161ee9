package bench

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient/simulated"
	"github.com/ethereum/go-ethereum/params"

	"github.com/polyroot/polyroot/dta"
	"github.com/polyroot/polyroot/internal/testdomain"
	"github.com/polyroot/polyroot/internal/translog"
	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/ledger"
)

// auditBenchEntries is the size of each synthetic DTA log: $POLYROOT_AUDIT_BENCH_ENTRIES,
// default 1,000,000 (the target: 1,000,000 entries in 3 DTAs in under 60 s).
func auditBenchEntries(b *testing.B) uint64 {
	if s := os.Getenv("POLYROOT_AUDIT_BENCH_ENTRIES"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n == 0 {
			b.Fatalf("POLYROOT_AUDIT_BENCH_ENTRIES=%q", s)
		}
		return n
	}
	return 1_000_000
}

// auditBenchCheckpoint waits for the log to publish a checkpoint at size and returns
// its root.
func auditBenchCheckpoint(b *testing.B, l *translog.Log, pub ed25519.PublicKey, size uint64) [32]byte {
	b.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		raw, err := l.Checkpoint(context.Background())
		if err != nil {
			continue
		}
		if cp, err := translog.ParseCheckpoint(raw, l.Origin(), pub); err == nil && cp.Size == size {
			return [32]byte(cp.Hash)
		}
	}
	b.Fatalf("no checkpoint of %s at %d", l.Origin(), size)
	return [32]byte{}
}

// BenchmarkAudit is the full consistency audit (ledger.Audit) of a domain of 3 DTAs
// whose logs hold auditBenchEntries entries each, served over HTTP on loopback and
// anchored four times on a simulated chain. ns/op is one whole audit; entries/s counts
// the entries of all three logs.
func BenchmarkAudit(b *testing.B) {
	ctx := context.Background()
	n := auditBenchEntries(b)
	d := testdomain.New(b, "audit-bench.example.com", 3, 0)
	bun := *d.Bundle
	bun.DTAs = slices.Clone(bun.DTAs)

	chainID := big.NewInt(1337)
	var keys [2]*bind.TransactOpts
	alloc := types.GenesisAlloc{}
	for i := range keys {
		k, err := crypto.GenerateKey()
		if err != nil {
			b.Fatal(err)
		}
		keys[i] = bind.NewKeyedTransactor(k, chainID)
		alloc[keys[i].From] = types.Account{Balance: new(big.Int).Mul(big.NewInt(100), big.NewInt(params.Ether))}
	}
	sim := simulated.NewBackend(alloc)
	b.Cleanup(func() { sim.Close() })
	addr, _, err := bind.DeployContract(keys[0], common.FromHex(ledger.IssuanceLogMetaData.Bin), sim.Client(), nil)
	if err != nil {
		b.Fatal(err)
	}
	sim.Commit()
	contract := ledger.Binding().Instance(sim.Client(), addr)
	var chainMu sync.Mutex
	send := func(from *bind.TransactOpts, data []byte) {
		chainMu.Lock()
		defer chainMu.Unlock()
		tx, err := bind.Transact(contract, from, data)
		if err != nil {
			b.Fatal(err)
		}
		sim.Commit()
		if rcpt, err := bind.WaitMined(ctx, sim.Client(), tx.Hash()); err != nil || rcpt.Status != types.ReceiptStatusSuccessful {
			b.Fatalf("transaction: %v %+v", err, rcpt)
		}
	}

	// Build the three logs at once: the same synthetic entries in each (with its DTA
	// index), appended in large batches, anchored at each quarter.
	setup := time.Now()
	var wg sync.WaitGroup
	for i := range bun.DTAs {
		rec := &bun.DTAs[i]
		send(keys[0], ledger.Binding().PackRegister(ledger.LogID(rec.LogOrigin), keys[1].From))
		seed, err := d.DTAs[i].Keys.Get(ctx, dta.SecretSigningKey)
		if err != nil {
			b.Fatal(err)
		}
		key := ed25519.NewKeyFromSeed(seed)
		l, err := translog.Open(ctx, filepath.Join(b.TempDir(), "log"), rec.LogOrigin, key,
			translog.Options{CheckpointInterval: 100 * time.Millisecond, BatchMaxSize: 4096, BatchMaxAge: 100 * time.Millisecond})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { l.Close(context.Background()) })
		mux := http.NewServeMux()
		mux.Handle("/v1/log/", http.StripPrefix("/v1/log", l.Handler()))
		srv := httptest.NewServer(mux)
		b.Cleanup(srv.Close)
		rec.URL = srv.URL
		wg.Go(func() {
			const chunk = 1 << 16
			leaves := make([][]byte, 0, chunk)
			quarter := 1
			for j := range n {
				var buf [8]byte
				binary.BigEndian.PutUint64(buf[:], j)
				h := sha256.Sum256(buf[:])
				e := wire.Entry{Version: wire.EntryVersion, DTA: rec.Index, Domain: bun.Domain, Kind: wire.KindClient,
					Subject: hex.EncodeToString(h[:]), SealedSHA256: hex.EncodeToString(h[:]), TicketSHA256: hex.EncodeToString(h[:]),
					Time: 1_800_000_000 + int64(j)}
				leaf, err := e.Marshal()
				if err != nil {
					b.Error(err)
					return
				}
				leaves = append(leaves, leaf)
				size := j + 1
				anchorHere := size == n*uint64(quarter)/4
				if len(leaves) == chunk || anchorHere || size == n {
					if _, err := l.AppendAll(ctx, leaves); err != nil {
						b.Error(err)
						return
					}
					leaves = leaves[:0]
				}
				if anchorHere {
					root := auditBenchCheckpoint(b, l, key.Public().(ed25519.PublicKey), size)
					send(keys[1], ledger.Binding().PackAnchor(ledger.LogID(rec.LogOrigin), size, root))
					quarter++
				}
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		return
	}
	b.Logf("setup: 3 logs of %d entries in %s", n, time.Since(setup).Round(time.Second))

	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 16
	cfg := ledger.AuditConfig{Bundle: &bun, Chain: sim.Client(), Contract: addr, HTTP: &http.Client{Transport: tr}}
	for b.Loop() {
		r, err := ledger.Audit(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		if !r.OK() {
			b.Fatalf("problems: %q", r.Problems())
		}
		for _, dr := range r.DTAs {
			if dr.Scanned != n || len(dr.Anchors) != 4 || dr.Lag != 0 {
				b.Fatalf("DTA %d: scanned %d, %d anchors, lag %d", dr.Index, dr.Scanned, len(dr.Anchors), dr.Lag)
			}
		}
	}
	b.ReportMetric(float64(3*n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}
