package ledger

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	ethereum "github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"

	"github.com/polyroot/polyroot/dta"
	"github.com/polyroot/polyroot/internal/testdomain"
	"github.com/polyroot/polyroot/internal/ticket"
	"github.com/polyroot/polyroot/internal/translog"
	"github.com/polyroot/polyroot/internal/wire"
)

// auditFakeLog serves, for DTA index of d, a checkpoint of size and root signed with
// the DTA's key, and for every entry bundle the same 256 entries entry(0..255) with
// their level-0 tile; it has no tiles above level 0. It is a hostile DTA: its log is
// as large as it says, and never ends.
func auditFakeLog(t *testing.T, d *testdomain.Domain, index int, size uint64, root []byte, entry func(i int) wire.Entry) string {
	t.Helper()
	rec := d.Bundle.DTAs[index]
	seed, err := d.DTAs[index].Keys.Get(context.Background(), dta.SecretSigningKey)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := translog.NoteSigner(rec.LogOrigin, ed25519.NewKeyFromSeed(seed))
	if err != nil {
		t.Fatal(err)
	}
	cp, err := note.Sign(&note.Note{Text: string(log.Checkpoint{Origin: rec.LogOrigin, Size: size, Hash: root}.Marshal())}, signer)
	if err != nil {
		t.Fatal(err)
	}
	var bundleRaw, tileRaw []byte
	for i := range 256 {
		e := entry(i)
		e.Version, e.DTA, e.Domain = wire.EntryVersion, rec.Index, d.Name
		leaf, err := e.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		bundleRaw = binary.BigEndian.AppendUint16(bundleRaw, uint16(len(leaf)))
		bundleRaw = append(bundleRaw, leaf...)
		tileRaw = append(tileRaw, wire.LeafHash(leaf)...)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch p := r.URL.Path; {
		case p == "/v1/log/checkpoint":
			w.Write(cp)
		case strings.HasPrefix(p, "/v1/log/tile/entries/"):
			w.Write(bundleRaw)
		case strings.HasPrefix(p, "/v1/log/tile/0/"):
			w.Write(tileRaw)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// auditHash is the SHA-256 of the words given, in hex.
func auditHash(words ...any) string {
	h := sha256.Sum256(fmt.Append(nil, words...))
	return hex.EncodeToString(h[:])
}

// auditServerEntry is a server-key entry, each i its own.
func auditServerEntry(i int) wire.Entry {
	return wire.Entry{Kind: wire.KindServer, SealedSHA256: auditHash("sealed", i), TicketSHA256: auditHash("ticket", i), Time: 1}
}

// TestAuditHugeAnchor: a DTA that anchors, with its own anchoring key, and signs a
// checkpoint of a huge size, and serves entries for it, has a lag of 0, so MaxLag
// does not stop it; past MaxEntries its log is refused unread, at once, and the honest
// DTA is still audited and reported.
func TestAuditHugeAnchor(t *testing.T) {
	d := testdomain.New(t, "huge-anchor.example.com", 2, 0)
	const huge = uint64(1) << 40
	root := sha256.Sum256([]byte("any root"))
	for _, tc := range []struct {
		name       string
		anchor     uint64 // 0: none
		checkpoint uint64
		maxEntries uint64 // 0: the default
		want       string
	}{
		{"fail/huge-anchor", huge, huge, 0, fmt.Sprintf("the checkpoint is at %d and the last anchor at %d: more than the %d entries an audit reads of a log", huge, huge, DefaultAuditMaxEntries)},
		{"fail/huge-checkpoint", 0, huge, 0, fmt.Sprintf("the checkpoint is at %d and the last anchor at 0: more than the %d entries", huge, DefaultAuditMaxEntries)},
		{"fail/past-max-entries", 1000, 1000, 999, "the checkpoint is at 1000 and the last anchor at 1000: more than the 999 entries"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newAuditChain(t, d.Bundle)
			rec := d.Bundle.DTAs[1]
			if tc.anchor > 0 {
				env.anchor(rec.LogOrigin, tc.anchor, root[:]) // the DTA's own anchoring key
			}
			cfg := env.config(auditWithURL(d.Bundle, 1, auditFakeLog(t, d, 1, tc.checkpoint, root[:], auditServerEntry)))
			cfg.MaxLag, cfg.MaxEntries = 1, tc.maxEntries
			// Without the bound the audit reads for ever: give it a few seconds to fail.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			start := time.Now()
			r, err := Audit(ctx, cfg)
			if err != nil {
				t.Fatalf("after %v: %v", time.Since(start), err)
			}
			got := r.DTAs[1]
			if len(got.Problems) != 1 || !strings.Contains(got.Problems[0], "DTA 2 log "+rec.LogOrigin+": "+tc.want) ||
				got.Scanned != 0 || len(got.ServerShares) != 0 || got.Status != AuditFailed {
				t.Fatalf("DTA 2: %s, scanned %d, %d server shares, problems %q; want one with %q", got.Status, got.Scanned, len(got.ServerShares), got.Problems, tc.want)
			}
			if got.CheckpointSize != tc.checkpoint {
				t.Fatalf("DTA 2: checkpoint size %d not reported", got.CheckpointSize)
			}
			if honest := r.DTAs[0]; len(honest.Problems) != 0 || honest.Status != AuditUnanchored {
				t.Fatalf("the honest DTA 1: %s %q", honest.Status, honest.Problems)
			}
		})
	}
}

// TestAuditBoundsWhatOneLogHolds: what the scan collects from one log is bounded, and
// the scan stops at the first anchored root the entries do not make: a hostile DTA
// cannot grow the report, or keep the auditor reading, with a log of valid entries.
func TestAuditBoundsWhatOneLogHolds(t *testing.T) {
	d := testdomain.New(t, "bounds.example.com", 2, 0)
	const size = 1 << 17
	root := sha256.Sum256([]byte("any root"))
	subject := wire.Subject([32]byte{7})
	for _, tc := range []struct {
		name     string
		anchor   uint64 // 0: none, else anchored with a root the entries do not make
		entry    func(int) wire.Entry
		identity bool // audit with the identity whose subject the entries name
		want     string
		scanned  func(uint64) bool
	}{
		{"fail/server-shares", 0, auditServerEntry, false,
			fmt.Sprintf("more than %d server-key entries", auditMaxServerShares), func(n uint64) bool { return n <= auditMaxServerShares+256 }},
		{"fail/key-entries", 0, func(i int) wire.Entry {
			return wire.Entry{Kind: wire.KindKey, Serial: uint64(i), TranscriptSHA256: auditHash("transcript"), Commitment: strings.Repeat("ab", 48), Time: 1}
		}, false, fmt.Sprintf("more than %d key entries", auditMaxKeyEntries), func(n uint64) bool { return n <= auditMaxKeyEntries+256 }},
		{"fail/identity-entries", 0, func(i int) wire.Entry {
			return wire.Entry{Kind: wire.KindPermit, Subject: subject, Slot: uint64(i), SealedSHA256: auditHash("sealed", i), TicketSHA256: auditHash("ticket", i), Time: 1}
		}, true, fmt.Sprintf("more than %d entries of the identity", auditMaxIdentityEntries), func(n uint64) bool { return n <= auditMaxIdentityEntries+256 }},
		{"fail/anchor-mismatch-stops-the-scan", 512, auditServerEntry, false,
			"the log's entries up to size 512 do not hash to the root anchored at that size", func(n uint64) bool { return n == 512 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newAuditChain(t, d.Bundle)
			rec := d.Bundle.DTAs[1]
			if tc.anchor > 0 {
				env.anchor(rec.LogOrigin, tc.anchor, root[:])
			}
			cfg := env.config(auditWithURL(d.Bundle, 1, auditFakeLog(t, d, 1, size, root[:], tc.entry)))
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var (
				r       *Report
				entries []IdentityEntry
				err     error
			)
			if tc.identity {
				// The entries' subject stands for an idhash the test need not know.
				r, entries, err = audit(ctx, cfg, subject)
			} else {
				r, err = Audit(ctx, cfg)
			}
			if err != nil {
				t.Fatal(err)
			}
			got := r.DTAs[1]
			var found bool
			for _, p := range got.Problems {
				found = found || strings.Contains(p, tc.want)
			}
			if !found || !tc.scanned(got.Scanned) || got.Status != AuditFailed {
				t.Fatalf("DTA 2: %s, scanned %d of %d, problems %q; want one with %q", got.Status, got.Scanned, uint64(size), got.Problems, tc.want)
			}
			if len(got.ServerShares) > auditMaxServerShares || len(got.Keys) > auditMaxKeyEntries || len(entries) > auditMaxIdentityEntries {
				t.Fatalf("DTA 2: %d server shares, %d key entries, %d identity entries kept", len(got.ServerShares), len(got.Keys), len(entries))
			}
			if len(r.DTAs[0].Problems) != 0 {
				t.Fatalf("the honest DTA 1: %q", r.DTAs[0].Problems)
			}
		})
	}
}

// TestAuditSlowDTADeadline: DTATimeout covers a DTA's checkpoint and the tiles of the
// consistency proofs too, and the DTAs are read at once: one that answers slowly
// fails its audit within DTATimeout without holding up the other's.
func TestAuditSlowDTADeadline(t *testing.T) {
	d := testdomain.New(t, "slowprep.example.com", 2, 0)
	env := newAuditChain(t, d.Bundle)
	auditIssue(t, d, ticket.KindClient, auditRandomIDHash(), 0, 0)
	for i, rec := range d.Bundle.DTAs {
		root := auditCheckpoint(t, d.DTAs[i].URL+"/v1/log", rec.LogOrigin, auditPub(t, &rec), 1)
		env.anchor(rec.LogOrigin, 1, root)
	}
	auditIssue(t, d, ticket.KindClient, auditRandomIDHash(), 0, 0) // after the checkpoint of size 1 was read
	for i, rec := range d.Bundle.DTAs {
		auditCheckpoint(t, d.DTAs[i].URL+"/v1/log", rec.LogOrigin, auditPub(t, &rec), 2)
	}
	target, err := url.Parse(d.DTAs[0].URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/checkpoint") || strings.Contains(r.URL.Path, "/tile/") && !strings.Contains(r.URL.Path, "/entries/") {
			select {
			case <-time.After(time.Minute):
			case <-r.Context().Done():
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	defer slow.Close()
	cfg := env.config(auditWithURL(d.Bundle, 0, slow.URL))
	cfg.DTATimeout = 300 * time.Millisecond
	start := time.Now()
	r, err := Audit(context.Background(), cfg)
	elapsed := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if elapsed > 30*time.Second {
		t.Fatalf("the audit took %v: the slow DTA held it up", elapsed)
	}
	if p := r.DTAs[0].Problems; len(p) != 1 || !strings.Contains(p[0], "DTA 1 log polyroot/slowprep.example.com/dta-1: reading the log did not finish within 300ms (cut off before its entries") {
		t.Fatalf("slow DTA 1: problems %q", p)
	}
	if d2 := r.DTAs[1]; d2.Status != AuditOK || d2.Scanned != 2 {
		t.Fatalf("DTA 2: %s, scanned %d, problems %q", d2.Status, d2.Scanned, d2.Problems)
	}
}

// anchorsChain is an RPC endpoint that claims a head of head blocks and serves, for
// the log logID, the anchors next(call) in every eth_getLogs answer (call counts
// from 0); other logs have none, and the contract is read at its latest block.
type anchorsChain struct {
	AuditChain
	head  uint64
	logID [32]byte
	next  func(call int) []uint64
	calls atomic.Int64
}

func (c *anchorsChain) BlockNumber(context.Context) (uint64, error) { return c.head, nil }

func (c *anchorsChain) CallContract(ctx context.Context, call ethereum.CallMsg, _ *big.Int) ([]byte, error) {
	return c.AuditChain.CallContract(ctx, call, nil)
}

func (c *anchorsChain) CodeAt(ctx context.Context, contract common.Address, _ *big.Int) ([]byte, error) {
	return c.AuditChain.CodeAt(ctx, contract, nil)
}

func (c *anchorsChain) FilterLogs(_ context.Context, q ethereum.FilterQuery) ([]types.Log, error) {
	if len(q.Topics) < 2 || len(q.Topics[1]) != 1 || q.Topics[1][0] != c.logID {
		return nil, nil
	}
	call := int(c.calls.Add(1) - 1)
	var logs []types.Log
	for i, size := range c.next(call) {
		data := make([]byte, 96)
		binary.BigEndian.PutUint64(data[24:32], size)
		data[32] = 1 // the root
		binary.BigEndian.PutUint64(data[88:96], 1_700_000_000)
		logs = append(logs, types.Log{Address: q.Addresses[0], Data: data, BlockNumber: q.FromBlock.Uint64(), Index: uint(i),
			Topics: []common.Hash{Binding().GetABI().Events[IssuanceLogAnchoredEventName].ID, c.logID}})
	}
	return logs, nil
}

// TestAuditHostileAnchors: an RPC endpoint that serves anchors whose sizes do not
// grow (the contract refuses those), or more anchors than auditMaxAnchors, makes the
// audit of that log fail as soon as it sees them, without reading further.
func TestAuditHostileAnchors(t *testing.T) {
	d := testdomain.New(t, "hostile-anchors.example.com", 2, 0)
	env := newAuditChain(t, d.Bundle)
	const perCall = 1000
	for _, tc := range []struct {
		name     string
		next     func(call int) []uint64
		want     string
		maxCalls int64
	}{
		{"fail/sizes-do-not-grow", func(call int) []uint64 {
			if call == 3 {
				return []uint64{5}
			}
			return []uint64{uint64(10 + call)}
		}, "anchored sizes do not grow: 5 after 12", 4},
		{"fail/too-many-anchors", func(call int) []uint64 {
			sizes := make([]uint64, perCall)
			for i := range sizes {
				sizes[i] = uint64(call*perCall + i + 1)
			}
			return sizes
		}, fmt.Sprintf("more than %d anchors", auditMaxAnchors), auditMaxAnchors/perCall + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			origin := d.Bundle.DTAs[1].LogOrigin
			chain := &anchorsChain{AuditChain: env.sim.Client(), head: 400, logID: LogID(origin), next: tc.next}
			cfg := env.config(d.Bundle)
			cfg.Chain, cfg.BlockRange = chain, 1
			r, err := Audit(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			got := r.DTAs[1]
			if n := chain.calls.Load(); n > tc.maxCalls {
				t.Fatalf("%d eth_getLogs calls for the log, want at most %d: the audit read on", n, tc.maxCalls)
			}
			if len(got.Anchors) > auditMaxAnchors || len(got.Problems) == 0 || !strings.Contains(got.Problems[0], "DTA 2 log "+origin+": "+tc.want) {
				t.Fatalf("DTA 2: %d anchors, problems %q; want %q first", len(got.Anchors), got.Problems, tc.want)
			}
			if len(r.DTAs[0].Problems) != 0 {
				t.Fatalf("DTA 1: %q", r.DTAs[0].Problems)
			}
		})
	}
}
