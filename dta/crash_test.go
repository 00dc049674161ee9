//go:build linux

package dta

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	tclient "github.com/transparency-dev/tessera/client"

	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/internal/testbin"
	"github.com/polyroot/polyroot/internal/ticket"
	"github.com/polyroot/polyroot/internal/translog"
	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/pairing"
)

// Sizes of the crash test: tickets in the burst, concurrent clients, and the number
// of successful answers after which the DTA process is killed.
const (
	crashTickets = 1200
	crashClients = 24
	crashKillAt  = 400
)

// TestCrashDurability kills (SIGKILL) a real `polyroot dta serve` process in the middle
// of a burst of concurrent client-share issuances, restarts it on the same data
// directory and checks the exactly-once promise against its log, read over HTTP:
//
//	(a) every response a client received has its entry in the log at the promised index;
//	(b) no entry appears twice;
//	(c) the checkpoint is signed by the DTA's key, the leaves hash to its root, and
//	    inclusion proofs of received entries verify against it;
//	(d) retrying every ticket that failed or got no answer gives the same entry when the
//	    DTA had recorded it and a fresh one otherwise, and the log ends with exactly one
//	    entry per ticket.
func TestCrashDurability(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test builds and runs the polyroot binary; skipped with -short")
	}
	start := time.Now()
	dir := t.TempDir()
	bin := testbin.Polyroot(t, dir)
	t.Logf("built polyroot in %v", time.Since(start).Round(time.Millisecond))

	// A two-DTA domain on disk, made with the CLI; only DTA 1 runs.
	env := testbin.ChildEnv()
	cliRun := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil {
			t.Fatalf("polyroot %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
		}
		return out.String()
	}
	regFile, recFile, bundleFile := filepath.Join(dir, "registrar.pem"), filepath.Join(dir, "dta-1.json"), filepath.Join(dir, "bundle.json")
	keysDir, dataDir := filepath.Join(dir, "keys"), filepath.Join(dir, "data")
	cliRun("registrar", "keygen", "--out", regFile)
	cliRun("dta", "init", "--domain", testDomain, "--index", "1", "--url", "http://127.0.0.1:8441", "--keystore-dir", keysDir, "--out", recFile)
	peerFile := filepath.Join(dir, "dta-2.json")
	cliRun("dta", "init", "--domain", testDomain, "--index", "2", "--url", "http://127.0.0.1:8442", "--keystore-dir", filepath.Join(dir, "peer-keys"), "--out", peerFile)
	cliRun("bundle", "assemble", "--domain", testDomain, "--registrar-key", regFile, "--record", recFile, "--record", peerFile, "--out", bundleFile)
	registrar := readPEMKey(t, regFile)
	raw, err := os.ReadFile(bundleFile)
	if err != nil {
		t.Fatal(err)
	}
	b, err := bundle.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := b.Find(1)
	pub, _ := rec.PublicKey()
	commitment, _ := rec.CommitmentPoint()

	serveArgs := []string{"dta", "serve", "--bundle", bundleFile, "--index", "1", "--data-dir", dataDir, "--keystore-dir", keysDir,
		"--listen", "127.0.0.1:0", "--metrics-listen", "off", "--rate-limit", "1000000", "--rate-burst", "1000000", "--checkpoint-interval", "100ms",
		"--log-format", "text", "--log-level", "warn"}
	logPath := filepath.Join(dir, "serve.log")
	first := testbin.StartChild(t, bin, env, logPath, serveArgs)

	// The burst: fresh tickets from concurrent clients; kill -9 after crashKillAt successes.
	tickets := make([]string, crashTickets)
	ids := make([]pairing.IDHash, crashTickets)
	for i := range tickets {
		rand.Read(ids[i][:])
		tk, err := ticket.Sign(ticket.Ticket{Domain: testDomain, Kind: ticket.KindClient, IDHash: hex.EncodeToString(ids[i][:]),
			SealKey: hex.EncodeToString(testSealPub), NotAfter: time.Now().Add(time.Hour)}, registrar)
		if err != nil {
			t.Fatal(err)
		}
		tickets[i] = tk
	}
	client := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: crashClients}}
	defer client.CloseIdleConnections()
	results := make([]issueResult, crashTickets)
	var ok atomic.Int64
	var killOnce sync.Once
	burst := time.Now()
	testbin.RunAll(crashClients, crashTickets, func(i int) {
		results[i] = issueOnce(client, first.URL, tickets[i])
		if results[i].resp != nil && ok.Add(1) == crashKillAt {
			killOnce.Do(first.Kill)
		}
	})
	killOnce.Do(first.Kill) // in case fewer succeeded (the checks below then fail)
	first.Wait(t)
	var received, failed []int
	for i, r := range results {
		if r.resp != nil {
			received = append(received, i)
		} else {
			failed = append(failed, i)
		}
	}
	t.Logf("burst: %d answered, %d failed or unanswered at the kill, in %v", len(received), len(failed), time.Since(burst).Round(time.Millisecond))
	if len(received) < crashKillAt || len(failed) == 0 {
		t.Fatalf("the kill did not land in the burst: %d answered, %d failed", len(received), len(failed))
	}

	// Restart on the same data directory.
	second := testbin.StartChild(t, bin, env, logPath, serveArgs)
	lg := &logReader{t: t, url: second.URL, client: client, origin: rec.LogOrigin, pub: pub}

	maxPromised := uint64(0)
	for _, i := range received {
		maxPromised = max(maxPromised, results[i].resp.Shares[0].Promise.Index)
	}
	leaves, cp := lg.read(maxPromised + 1)
	sizeAtRestart := uint64(len(leaves))

	// (a) every received response: a valid promise for its entry, the entry at the
	// promised index, and an entry that describes this ticket and this share.
	for _, i := range received {
		checkShare(t, results[i].resp.Shares[0], tickets[i], pub, rec.LogOrigin, leaves)
	}
	for _, j := range mrand.Perm(len(received))[:16] { // DLEQ proofs of a sample
		k := received[j]
		s := results[k].resp.Shares[0]
		S, proof := openClientShare(t, &s)
		if err := pairing.VerifyShares(pairing.IdentityPoint(ids[k]), []pairing.IssuedShare{{Index: 1, Commitment: commitment, Share: S, Proof: proof}},
			func(i uint32) []byte { return pairing.ShareContext(testDomain, i, "client", 0) }); err != nil {
			t.Fatalf("ticket %d: DLEQ proof: %v", k, err)
		}
	}
	// (b) no entry twice; (c) the log verifies.
	checkNoDuplicates(t, leaves)
	lg.verify(leaves, cp, received, results)

	// (d) retry every ticket that failed or got no answer, and a sample of answered ones.
	byTicket := map[string]uint64{}
	for i, leaf := range leaves {
		e, err := wire.ParseEntry(leaf)
		if err != nil {
			t.Fatalf("leaf %d: %v", i, err)
		}
		byTicket[e.TicketSHA256] = uint64(i)
	}
	retry := append([]int{}, failed...)
	retry = append(retry, received[:min(50, len(received))]...)
	retried := make([]issueResult, len(retry))
	testbin.RunAll(crashClients, len(retry), func(j int) { retried[j] = issueOnce(client, second.URL, tickets[retry[j]]) })
	var recorded, recordedUnanswered, fresh int
	for j, i := range retry {
		r := retried[j]
		if r.resp == nil {
			t.Fatalf("retry of ticket %d after the restart: %v (status %d: %s)", i, r.err, r.status, r.body)
		}
		sh := r.resp.Shares[0]
		idx := sh.Promise.Index
		if prev, ok := byTicket[sha256Hex([]byte(tickets[i]))]; ok {
			if idx != prev {
				t.Fatalf("ticket %d was recorded at %d before the retry; the retry promises %d", i, prev, idx)
			}
			recorded++
			if results[i].resp == nil {
				recordedUnanswered++
			}
		} else {
			if idx < sizeAtRestart {
				t.Fatalf("ticket %d: a fresh entry promised at %d, inside the log as it was at restart (%d)", i, idx, sizeAtRestart)
			}
			fresh++
		}
		if results[i].resp != nil && !bytes.Equal(results[i].resp.Shares[0].Entry, sh.Entry) {
			t.Fatalf("ticket %d: the retry gave another entry than the first answer", i)
		}
	}
	t.Logf("retries: %d found their entry recorded before the kill (%d of them unanswered at the kill), %d got a fresh entry",
		recorded, recordedUnanswered, fresh)

	// The log now has exactly one entry per ticket, and still verifies.
	leaves, cp = lg.read(crashTickets)
	if uint64(len(leaves)) != crashTickets {
		t.Fatalf("the log has %d entries for %d tickets", len(leaves), crashTickets)
	}
	checkNoDuplicates(t, leaves)
	seen := map[string]bool{}
	for _, tk := range tickets {
		seen[sha256Hex([]byte(tk))] = true
	}
	for i, leaf := range leaves {
		e, _ := wire.ParseEntry(leaf)
		if !seen[e.TicketSHA256] {
			t.Fatalf("leaf %d is for a ticket nobody sent", i)
		}
	}
	for j, i := range retry {
		checkShare(t, retried[j].resp.Shares[0], tickets[i], pub, rec.LogOrigin, leaves)
	}
	lg.verify(leaves, cp, received, results)

	// A graceful stop of the real process.
	second.Stop(t)
	t.Logf("crash test done in %v", time.Since(start).Round(time.Millisecond))
}

func readPEMKey(t *testing.T, path string) ed25519.PrivateKey {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		t.Fatal("registrar key: no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k.(ed25519.PrivateKey)
}

type issueResult struct {
	resp   *wire.DTAResponse // set only when a complete 200 answer was received
	status int
	body   string
	err    error
}

func issueOnce(c *http.Client, url, tk string) issueResult {
	resp, err := c.Post(url+"/v1/shares/client", "application/json", bytes.NewReader(ticketBody(tk)))
	if err != nil {
		return issueResult{err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return issueResult{status: resp.StatusCode, err: err}
	}
	if resp.StatusCode != http.StatusOK {
		return issueResult{status: resp.StatusCode, body: string(body)}
	}
	var r wire.DTAResponse
	if err := json.Unmarshal(body, &r); err != nil || len(r.Shares) != 1 || r.Shares[0].Promise == nil {
		return issueResult{status: resp.StatusCode, body: string(body), err: fmt.Errorf("malformed answer: %v", err)}
	}
	return issueResult{resp: &r, status: resp.StatusCode}
}

// checkShare checks one received share against the log's leaves.
func checkShare(t *testing.T, sh wire.DTAShare, tk string, pub ed25519.PublicKey, origin string, leaves [][]byte) {
	t.Helper()
	p := sh.Promise
	if err := p.Verify(pub, sh.Entry); err != nil || p.Origin != origin {
		t.Fatalf("promise for index %d: %v (origin %q)", p.Index, err, p.Origin)
	}
	if p.Index >= uint64(len(leaves)) || !bytes.Equal(leaves[p.Index], sh.Entry) {
		t.Fatalf("the entry promised at index %d is not in the log of %d entries", p.Index, len(leaves))
	}
	e, err := wire.ParseEntry(sh.Entry)
	if err != nil {
		t.Fatal(err)
	}
	if e.TicketSHA256 != sha256Hex([]byte(tk)) || e.SealedSHA256 != sha256Hex(sh.Sealed) || e.Kind != wire.KindClient {
		t.Fatalf("entry %d does not describe its ticket and share: %+v", p.Index, e)
	}
}

func checkNoDuplicates(t *testing.T, leaves [][]byte) {
	t.Helper()
	at := map[string]int{}
	tickets := map[string]int{}
	for i, leaf := range leaves {
		if j, dup := at[string(leaf)]; dup {
			t.Fatalf("entries %d and %d are the same leaf", j, i)
		}
		at[string(leaf)] = i
		e, err := wire.ParseEntry(leaf)
		if err != nil {
			t.Fatalf("leaf %d: %v", i, err)
		}
		if j, dup := tickets[e.TicketSHA256]; dup {
			t.Fatalf("entries %d and %d record the same ticket", j, i)
		}
		tickets[e.TicketSHA256] = i
	}
}

// logReader reads a DTA's log over its HTTP API (C2SP tlog-tiles under /v1/log/).
type logReader struct {
	t      *testing.T
	url    string
	client *http.Client
	origin string
	pub    ed25519.PublicKey
}

func (l *logReader) fetcher() *tclient.HTTPFetcher {
	u, _ := url.Parse(l.url + "/v1/log/")
	f, err := tclient.NewHTTPFetcher(u, l.client)
	if err != nil {
		l.t.Fatal(err)
	}
	return f
}

// read waits for a signed checkpoint of at least minSize entries that stays put for a
// few checkpoint intervals, and returns every leaf under it with the checkpoint.
func (l *logReader) read(minSize uint64) ([][]byte, *checkpoint) {
	t := l.t
	t.Helper()
	ctx := context.Background()
	f := l.fetcher()
	var cp *checkpoint
	var stable int
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		raw, err := f.ReadCheckpoint(ctx)
		if err != nil {
			t.Fatalf("checkpoint: %v", err)
		}
		c, err := translog.ParseCheckpoint(raw, l.origin, l.pub)
		if err != nil {
			t.Fatalf("checkpoint does not verify with the DTA's key: %v", err)
		}
		if cp != nil && c.Size == cp.size {
			stable++
		} else {
			stable = 0
		}
		cp = &checkpoint{size: c.Size, root: c.Hash}
		if c.Size >= minSize && stable >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no stable checkpoint of %d entries or more (last: %d)", minSize, c.Size)
		}
	}
	var leaves [][]byte
	for n := uint64(0); uint64(len(leaves)) < cp.size; n++ {
		eb, err := tclient.GetEntryBundle(ctx, f.ReadEntryBundle, n, cp.size)
		if err != nil {
			t.Fatalf("entry bundle %d: %v", n, err)
		}
		leaves = append(leaves, eb.Entries...)
	}
	if uint64(len(leaves)) != cp.size {
		t.Fatalf("entry bundles hold %d leaves, the checkpoint %d", len(leaves), cp.size)
	}
	return leaves, cp
}

type checkpoint struct {
	size uint64
	root []byte
}

// verify checks that the leaves hash to the checkpoint's root, and inclusion proofs
// (built from the served tiles) of a sample of received entries.
func (l *logReader) verify(leaves [][]byte, cp *checkpoint, received []int, results []issueResult) {
	t := l.t
	t.Helper()
	rng := (&compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}).NewEmptyRange(0)
	for _, leaf := range leaves {
		if err := rng.Append(wire.LeafHash(leaf), nil); err != nil {
			t.Fatal(err)
		}
	}
	root, err := rng.GetRootHash(nil)
	if err != nil || !bytes.Equal(root, cp.root) {
		t.Fatalf("the %d leaves do not hash to the checkpoint's root (%v)", len(leaves), err)
	}
	ctx := context.Background()
	pb, err := tclient.NewProofBuilder(ctx, cp.size, l.fetcher().ReadTile)
	if err != nil {
		t.Fatal(err)
	}
	order := mrand.Perm(len(received))
	for _, j := range order[:min(64, len(order))] {
		sh := results[received[j]].resp.Shares[0]
		proof, err := pb.InclusionProof(ctx, sh.Promise.Index)
		if err != nil {
			t.Fatalf("inclusion proof of %d: %v", sh.Promise.Index, err)
		}
		if err := translog.VerifyInclusion(sh.Entry, sh.Promise.Index, cp.size, proof, cp.root); err != nil {
			t.Fatalf("inclusion of entry %d in the checkpoint of size %d: %v", sh.Promise.Index, cp.size, err)
		}
	}
}
