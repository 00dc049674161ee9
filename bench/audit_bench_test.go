package bench

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"io"
	"math/big"
	"net/http"
	"os"
	"strconv"
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

// auditBenchCheckpoint waits for the DTA at url to publish a checkpoint at size and
// returns its root.
func auditBenchCheckpoint(b *testing.B, url, origin string, pub ed25519.PublicKey, size uint64) [32]byte {
	b.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get(url + "/v1/log/checkpoint")
		if err != nil {
			continue
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if cp, err := translog.ParseCheckpoint(raw, origin, pub); err == nil && cp.Size == size {
			return [32]byte(cp.Hash)
		}
	}
	b.Fatalf("no checkpoint of %s at %d", origin, size)
	return [32]byte{}
}

// BenchmarkAudit is the full consistency audit (ledger.Audit) of a domain of 3 real
// DTAs whose logs hold auditBenchEntries entries each, read through the DTAs' own
// routes over loopback with their default rate limits in front (the log routes'
// limit, dta.DefaultLogRatePerSecond, bounds a large audit: the auditor honours its
// 429s), and anchored four times on a simulated chain. The logs are filled directly
// (testdomain.AppendDirect). ns/op is one whole audit; entries/s counts the entries
// of all three logs, throttled/op the DTAs' 429 answers.
func BenchmarkAudit(b *testing.B) {
	ctx := context.Background()
	n := auditBenchEntries(b)
	d := testdomain.New(b, "audit-bench.example.com", 3, 0)
	for _, x := range d.DTAs {
		x.Configure(func(c *dta.Config) { c.RatePerSecond, c.RateBurst = 0, 0 }) // every default limit
	}

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
	send := func(from *bind.TransactOpts, data []byte) {
		tx, err := bind.Transact(contract, from, data)
		if err != nil {
			b.Fatal(err)
		}
		sim.Commit()
		if rcpt, err := bind.WaitMined(ctx, sim.Client(), tx.Hash()); err != nil || rcpt.Status != types.ReceiptStatusSuccessful {
			b.Fatalf("transaction: %v %+v", err, rcpt)
		}
	}
	for _, rec := range d.Bundle.DTAs {
		send(keys[0], ledger.Binding().PackRegister(ledger.LogID(rec.LogOrigin), keys[1].From))
	}

	// Fill the three logs at once, a quarter at a time: the same synthetic entries in
	// each (with its DTA index), anchored at each quarter.
	setup := time.Now()
	leaf := func(index uint32, j uint64) []byte {
		var buf [8]byte
		binary.BigEndian.PutUint64(buf[:], j)
		h := sha256.Sum256(buf[:])
		e := wire.Entry{Version: wire.EntryVersion, DTA: index, Domain: d.Name, Kind: wire.KindClient,
			Subject: hex.EncodeToString(h[:]), SealedSHA256: hex.EncodeToString(h[:]), TicketSHA256: hex.EncodeToString(h[:]),
			Time: 1_700_000_000 + int64(j)}
		raw, err := e.Marshal()
		if err != nil {
			panic(err)
		}
		return raw
	}
	var size uint64
	for quarter := uint64(1); quarter <= 4; quarter++ {
		next := n * quarter / 4
		d.AppendDirect(next-size, leaf)
		size = next
		for i, rec := range d.Bundle.DTAs {
			pub, err := rec.PublicKey()
			if err != nil {
				b.Fatal(err)
			}
			root := auditBenchCheckpoint(b, d.DTAs[i].URL, rec.LogOrigin, pub, size)
			send(keys[1], ledger.Binding().PackAnchor(ledger.LogID(rec.LogOrigin), size, root))
		}
	}
	b.Logf("setup: 3 logs of %d entries in %s", n, time.Since(setup).Round(time.Second))

	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 16
	cfg := ledger.AuditConfig{Bundle: d.Bundle, Chain: sim.Client(), Contract: addr, HTTP: &http.Client{Transport: tr}}
	var throttled uint64
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
			throttled += dr.Throttled
		}
	}
	b.ReportMetric(float64(3*n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
	b.ReportMetric(float64(throttled)/float64(b.N), "throttled/op")
}
