package ledger

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/polyroot/polyroot/dta"
	"github.com/polyroot/polyroot/internal/testdomain"
	"github.com/polyroot/polyroot/internal/ticket"
	"github.com/polyroot/polyroot/internal/wire"
)

// auditSyntheticLeaf returns the entries of a synthetic history of domain: the i-th of
// DTA index is a well-formed client share.
func auditSyntheticLeaf(domain string) func(index uint32, i uint64) []byte {
	return func(index uint32, i uint64) []byte {
		var buf [8]byte
		binary.BigEndian.PutUint64(buf[:], i)
		h := hex.EncodeToString(func() []byte { s := sha256.Sum256(buf[:]); return s[:] }())
		e := wire.Entry{Version: wire.EntryVersion, DTA: index, Domain: domain, Kind: wire.KindClient,
			Subject: h, SealedSHA256: h, TicketSHA256: h, Time: 1_700_000_000 + int64(i)}
		leaf, err := e.Marshal()
		if err != nil {
			panic(err)
		}
		return leaf
	}
}

// auditFill appends n synthetic entries to each DTA's log, then anchors every log at
// its new size, which it returns.
func auditFill(t *testing.T, d *testdomain.Domain, chain *auditChainEnv, from, n uint64) uint64 {
	t.Helper()
	d.AppendDirect(n, auditSyntheticLeaf(d.Name))
	for i, x := range d.DTAs {
		rec := d.Bundle.DTAs[i]
		chain.anchor(rec.LogOrigin, from+n, auditCheckpoint(t, x.URL+"/v1/log", rec.LogOrigin, auditPub(t, &rec), from+n))
	}
	return from + n
}

// TestAuditLargeLogsThroughDTARoutes audits 3 DTAs whose logs hold more than 50,000
// entries each, read through the DTAs' own HTTP routes with their default rate limits
// in front (the issuance routes' and the log routes'), as an auditor of real DTAs
// does. Before the log routes had their own limit, such an audit failed at about
// 13,000 entries with 429s. The logs are filled directly (testdomain.AppendDirect);
// the last entry of each is a real issuance.
func TestAuditLargeLogsThroughDTARoutes(t *testing.T) {
	const half = 25_061 // two anchors; the logs end in partial tiles
	ctx := context.Background()
	d := testdomain.New(t, "audit-large.example.com", 3, 0)
	chain := newAuditChain(t, d.Bundle)
	for _, x := range d.DTAs {
		x.Configure(func(c *dta.Config) { c.RatePerSecond, c.RateBurst = 0, 0 }) // every default limit
	}
	fill := time.Now()
	size := auditFill(t, d, chain, 0, half)
	size = auditFill(t, d, chain, size, half)
	target := auditRandomIDHash()
	auditIssue(t, d, ticket.KindClient, target, 0, 0)
	size++
	for i, rec := range d.Bundle.DTAs {
		auditCheckpoint(t, d.DTAs[i].URL+"/v1/log", rec.LogOrigin, auditPub(t, &rec), size)
	}
	t.Logf("3 logs of %d entries filled and anchored in %v", size, time.Since(fill).Round(time.Millisecond))

	cfg := chain.config(d.Bundle)
	var (
		mu       sync.Mutex
		retrying []string
		last     uint64
	)
	cfg.Retrying = func(index uint32, status int, reason string, wait time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		retrying = append(retrying, reason)
	}
	cfg.Progress = func(done, _ uint64) { last = done }
	start := time.Now()
	r, entries, err := AuditWithIdentity(ctx, cfg, target)
	elapsed := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() {
		t.Fatalf("problems: %q", r.Problems())
	}
	t.Logf("audited 3 × %d entries through the DTAs' routes in %v (%.0f entries/s)", size, elapsed.Round(time.Millisecond),
		float64(3*size)/elapsed.Seconds())
	for _, dr := range r.DTAs {
		if dr.Status != AuditOK || dr.Scanned != size || len(dr.Anchors) != 2 || dr.Lag != 1 {
			t.Fatalf("DTA %d: %s, scanned %d of %d, %d anchors, lag %d", dr.Index, dr.Status, dr.Scanned, size, len(dr.Anchors), dr.Lag)
		}
		// The default log route limit is sized for an auditor: not one refusal.
		if dr.Throttled != 0 || dr.Retries != 0 {
			t.Fatalf("DTA %d throttled %d times, %d retries: %q", dr.Index, dr.Throttled, dr.Retries, retrying)
		}
	}
	if last != 3*size {
		t.Fatalf("progress ended at %d, want %d", last, 3*size)
	}
	if len(entries) != 3 {
		t.Fatalf("%d entries of the identity, want one per DTA", len(entries))
	}
	for _, e := range entries {
		if e.Index != size-1 || e.Kind != wire.KindClient {
			t.Fatalf("entry %+v, want the client share at %d", e, size-1)
		}
	}
}

// TestAuditHonoursRetryAfter audits a DTA whose log routes allow few requests: the
// auditor gets 429s, waits as Retry-After says, and audits the whole log; the other
// DTA is not slowed. A DTA asking to wait longer than MaxRetryAfter fails its audit
// at once, naming the DTA.
func TestAuditHonoursRetryAfter(t *testing.T) {
	ctx := context.Background()
	d := testdomain.New(t, "audit-throttled.example.com", 2, 0)
	chain := newAuditChain(t, d.Bundle)
	size := auditFill(t, d, chain, 0, 3_000)
	d.DTAs[1].Configure(func(c *dta.Config) { c.LogRatePerSecond, c.LogRateBurst = 10, 5 })

	cfg := chain.config(d.Bundle)
	var (
		mu    sync.Mutex
		waits = map[uint32][]time.Duration{}
	)
	cfg.Retrying = func(index uint32, status int, reason string, wait time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		if status != 429 || !strings.Contains(reason, "429 Too Many Requests") {
			t.Errorf("DTA %d: retry after %d %s", index, status, reason)
		}
		waits[index] = append(waits[index], wait)
	}
	start := time.Now()
	r, err := Audit(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() {
		t.Fatalf("problems: %q", r.Problems())
	}
	d1, d2 := r.DTAs[0], r.DTAs[1]
	t.Logf("audited 2 × %d entries in %v; DTA 2 throttled %d times, %d retries, %v waited",
		size, time.Since(start).Round(time.Millisecond), d2.Throttled, d2.Retries, d2.Waited.Round(time.Millisecond))
	if d1.Scanned != size || d2.Scanned != size || d1.Throttled != 0 || len(waits[1]) != 0 {
		t.Fatalf("DTA 1 scanned %d, throttled %d; DTA 2 scanned %d; want %d each, DTA 1 never throttled", d1.Scanned, d1.Throttled, d2.Scanned, size)
	}
	if d2.Throttled == 0 || d2.Retries != d2.Throttled || d2.Waited < time.Second || len(waits[2]) != int(d2.Retries) {
		t.Fatalf("DTA 2: throttled %d, retries %d, waited %v, %d calls of Retrying", d2.Throttled, d2.Retries, d2.Waited, len(waits[2]))
	}
	for _, w := range waits[2] {
		if w < time.Second {
			t.Fatalf("waited %v after a 429 whose Retry-After is at least 1 s", w)
		}
	}

	// A DTA whose limit asks for more than MaxRetryAfter: its audit fails, at once.
	reconf := time.Now()
	d.DTAs[1].Configure(func(c *dta.Config) { c.LogRatePerSecond, c.LogRateBurst = 0.001, 1 })
	cfg.Retrying, cfg.MaxRetryAfter = nil, time.Minute
	t.Logf("restarted DTA 2 in %v", time.Since(reconf).Round(time.Millisecond))
	start = time.Now()
	r, err = Audit(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := r.Problems()
	if len(p) != 1 || !strings.HasPrefix(p[0], "DTA 2 log polyroot/audit-throttled.example.com/dta-2: ") ||
		!strings.Contains(p[0], "the DTA answered 429 Too Many Requests, asking to wait") ||
		!strings.Contains(p[0], "longer than the auditor waits (1m0s); audit again later") || r.DTAs[0].Status != AuditOK {
		t.Fatalf("problems %q", p)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatalf("gave up after %v", time.Since(start))
	}
	t.Logf("a DTA asking to wait too long: the audit gave up on it in %v: %s", time.Since(start).Round(time.Millisecond), p[0])
}
