package ledger

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient/simulated"
	"github.com/ethereum/go-ethereum/params"
	"github.com/transparency-dev/tessera/api"

	"github.com/polyroot/polyroot/dta"
	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/internal/testdomain"
	"github.com/polyroot/polyroot/internal/ticket"
	"github.com/polyroot/polyroot/internal/translog"
	"github.com/polyroot/polyroot/internal/wire"
)

// auditChainEnv is an IssuanceLog on a simulated chain, every log of a domain
// registered to one anchoring key.
type auditChainEnv struct {
	t        testing.TB
	sim      *simulated.Backend
	contract *bind.BoundContract
	addr     common.Address
	owner    *bind.TransactOpts
	anchorer *bind.TransactOpts
}

func newAuditChain(t testing.TB, b *bundle.Bundle) *auditChainEnv {
	t.Helper()
	chainID := big.NewInt(1337)
	var opts [2]*bind.TransactOpts
	alloc := types.GenesisAlloc{}
	for i := range opts {
		k, err := crypto.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		opts[i] = bind.NewKeyedTransactor(k, chainID)
		alloc[opts[i].From] = types.Account{Balance: new(big.Int).Mul(big.NewInt(100), big.NewInt(params.Ether))}
	}
	owner := opts[0]
	env := &auditChainEnv{t: t, sim: simulated.NewBackend(alloc), owner: owner, anchorer: opts[1]}
	t.Cleanup(func() { env.sim.Close() })
	addr, _, err := bind.DeployContract(owner, common.FromHex(IssuanceLogMetaData.Bin), env.sim.Client(), nil)
	if err != nil {
		t.Fatal(err)
	}
	env.sim.Commit()
	env.addr = addr
	env.contract = Binding().Instance(env.sim.Client(), addr)
	for _, rec := range b.DTAs {
		env.send(owner, Binding().PackRegister(LogID(rec.LogOrigin), env.anchorer.From))
	}
	return env
}

func (env *auditChainEnv) send(from *bind.TransactOpts, data []byte) {
	env.t.Helper()
	tx, err := bind.Transact(env.contract, from, data)
	if err != nil {
		env.t.Fatal(err)
	}
	env.sim.Commit()
	rcpt, err := bind.WaitMined(context.Background(), env.sim.Client(), tx.Hash())
	if err != nil || rcpt.Status != types.ReceiptStatusSuccessful {
		env.t.Fatalf("transaction %s: %v, receipt %+v", tx.Hash(), err, rcpt)
	}
}

// anchor puts (size, root) on chain for the log of origin.
func (env *auditChainEnv) anchor(origin string, size uint64, root []byte) {
	env.t.Helper()
	env.send(env.anchorer, Binding().PackAnchor(LogID(origin), size, [32]byte(root)))
}

func (env *auditChainEnv) config(b *bundle.Bundle) AuditConfig {
	return AuditConfig{Bundle: b, Chain: env.sim.Client(), Contract: env.addr}
}

// auditIssue sends one registrar-signed ticket of kind for idhash to every DTA of d.
func auditIssue(t testing.TB, d *testdomain.Domain, kind, idhash string, firstSlot, lastSlot uint64) {
	t.Helper()
	token, err := ticket.Sign(ticket.Ticket{Domain: d.Name, Kind: kind, IDHash: idhash, FirstSlot: firstSlot, LastSlot: lastSlot,
		SealKey: testdomain.SealKeyFor(kind), NotAfter: time.Now().Add(time.Hour)}, d.Registrar)
	if err != nil {
		t.Fatal(err)
	}
	path := map[string]string{ticket.KindClient: "/v1/shares/client", ticket.KindPermit: "/v1/shares/permit",
		ticket.KindRevoke: "/v1/revocations", ticket.KindServer: "/v1/shares/server"}[kind]
	body, _ := json.Marshal(wire.DTARequest{Ticket: token})
	for _, x := range d.DTAs {
		resp, err := http.Post(x.URL+path, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("DTA %d %s: %d %s", x.Index, path, resp.StatusCode, msg)
		}
	}
}

func auditRandomIDHash() string {
	var b [32]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// auditCheckpoint waits until the log at base (…/v1/log) publishes a checkpoint of
// exactly size entries and returns its root.
func auditCheckpoint(t testing.TB, base, origin string, pub ed25519.PublicKey, size uint64) []byte {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(base + "/checkpoint")
		if err == nil {
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if cp, err := translog.ParseCheckpoint(raw, origin, pub); err == nil && cp.Size == size {
				return cp.Hash
			} else if err == nil && cp.Size > size {
				t.Fatalf("log %s at %d, past %d", origin, cp.Size, size)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint of %s at size %d", origin, size)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func auditPub(t testing.TB, rec *bundle.DTA) ed25519.PublicKey {
	t.Helper()
	pub, err := rec.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// auditDomain is a 3-DTA domain with a history: clients enrolled, permits and a
// revocation, anchored on the simulated chain, then more entries (lag).
type auditDomain struct {
	d       *testdomain.Domain
	chain   *auditChainEnv
	sizes   []uint64 // each DTA's log size (the same for all: every ticket went to all)
	anchors []uint64 // anchored sizes (all DTAs)
	target  string   // an identity with a client share, permits 5..7 and a revocation
}

func newAuditDomain(t *testing.T) *auditDomain {
	t.Helper()
	ad := &auditDomain{d: testdomain.New(t, "audit.example.com", 3, 3600), target: auditRandomIDHash()}
	ad.chain = newAuditChain(t, ad.d.Bundle)
	var size uint64
	step := func(kind, id string, first, last uint64) {
		auditIssue(t, ad.d, kind, id, first, last)
		if kind == ticket.KindPermit {
			size += last - first + 1
		} else {
			size++
		}
	}
	anchorAll := func() {
		for i, rec := range ad.d.Bundle.DTAs {
			root := auditCheckpoint(t, ad.d.DTAs[i].URL+"/v1/log", rec.LogOrigin, auditPub(t, &rec), size)
			ad.chain.anchor(rec.LogOrigin, size, root)
		}
		ad.anchors = append(ad.anchors, size)
	}
	for range 5 {
		step(ticket.KindClient, auditRandomIDHash(), 0, 0)
	}
	step(ticket.KindClient, ad.target, 0, 0)
	anchorAll() // 6
	step(ticket.KindPermit, ad.target, 5, 7)
	for range 3 {
		id := auditRandomIDHash()
		step(ticket.KindClient, id, 0, 0)
		step(ticket.KindPermit, id, 1, 2)
	}
	anchorAll() // 18
	step(ticket.KindRevoke, ad.target, 0, 0)
	step(ticket.KindClient, auditRandomIDHash(), 0, 0)
	for i, rec := range ad.d.Bundle.DTAs {
		auditCheckpoint(t, ad.d.DTAs[i].URL+"/v1/log", rec.LogOrigin, auditPub(t, &rec), size)
	}
	ad.sizes = []uint64{size, size, size}
	return ad
}

// withURL returns a copy of b where DTA index is at u.
func auditWithURL(b *bundle.Bundle, index int, u string) *bundle.Bundle {
	c := *b
	c.DTAs = slices.Clone(b.DTAs)
	c.DTAs[index].URL = u
	return &c
}

func TestAuditHonest(t *testing.T) {
	ad := newAuditDomain(t)
	cfg := ad.chain.config(ad.d.Bundle)
	cfg.BlockRange = 2 // anchors read in many eth_getLogs queries
	var calls int
	var last, total uint64
	cfg.Progress = func(done, tot uint64) { calls, last, total = calls+1, done, tot }
	r, err := Audit(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() {
		t.Fatalf("honest domain: problems %q", r.Problems())
	}
	for i, d := range r.DTAs {
		if d.Status != AuditOK || d.CheckpointSize != ad.sizes[i] || d.Scanned != ad.sizes[i] || len(d.Anchors) != len(ad.anchors) {
			t.Fatalf("DTA %d: %+v, want ok, size %d, %d anchors", d.Index, d, ad.sizes[i], len(ad.anchors))
		}
		for j, a := range d.Anchors {
			if a.Size != ad.anchors[j] || a.Time.IsZero() || a.Block == 0 {
				t.Fatalf("DTA %d anchor %d = %+v, want size %d", d.Index, j, a, ad.anchors[j])
			}
		}
		if want := ad.sizes[i] - ad.anchors[len(ad.anchors)-1]; d.Lag != want {
			t.Fatalf("DTA %d lag %d, want %d", d.Index, d.Lag, want)
		}
	}
	var sum uint64
	for _, s := range ad.sizes {
		sum += s
	}
	if calls == 0 || last != sum || total != sum {
		t.Fatalf("progress: %d calls, last %d of %d; want %d of %d", calls, last, total, sum, sum)
	}

	// Anchors not read (searching from too late a block) are noticed with the contract's latest.
	late := cfg
	late.FromBlock = r.DTAs[0].Anchors[1].Block + 1
	r2, err := Audit(context.Background(), late)
	if err != nil {
		t.Fatal(err)
	}
	if p := r2.Problems(); len(p) != 1 || !strings.Contains(p[0], "DTA 1 log polyroot/audit.example.com/dta-1: the contract's latest anchor is at size 18 but the last Anchored event read is at 0") {
		t.Fatalf("anchors missed: problems %q", p)
	}

	// MaxLag turns the lag into a problem.
	cfg.MaxLag = 1
	r, err = Audit(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.OK() || !strings.Contains(r.Problems()[0], "DTA 1 log polyroot/audit.example.com/dta-1: anchors do not keep up: the checkpoint is at 20, 2 entries past") {
		t.Fatalf("MaxLag 1: problems %q", r.Problems())
	}

	// A DTA that does not answer is a problem, not an error: the others are audited.
	ad.d.DTAs[2].Stop()
	cfg.MaxLag = 0
	r, err = Audit(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if p := r.Problems(); len(p) != 1 || !strings.HasPrefix(p[0], "DTA 3 log polyroot/audit.example.com/dta-3: cannot read the checkpoint") ||
		r.DTAs[0].Status != AuditOK || r.DTAs[2].Status != AuditFailed {
		t.Fatalf("DTA 3 down: problems %q", p)
	}

	// A DTA not yet anchored is reported as such; with no anchors at all, still OK.
	fresh := testdomain.New(t, "fresh.example.com", 2, 0)
	env := newAuditChain(t, fresh.Bundle)
	r, err = Audit(context.Background(), env.config(fresh.Bundle))
	if err != nil || !r.OK() || r.DTAs[0].Status != AuditUnanchored || r.DTAs[1].CheckpointSize != 0 {
		t.Fatalf("fresh domain: %+v, %v", r, err)
	}
}

// auditEntryProxy serves the log at target, with entry number entry (of the first
// entry bundle) altered in every entry bundle 0 it serves: a DTA rewriting history
// while its tiles still commit to the original.
func auditEntryProxy(t *testing.T, target string, entry int) string {
	t.Helper()
	u, _ := url.Parse(target)
	p := httputil.NewSingleHostReverseProxy(u)
	p.ModifyResponse = func(resp *http.Response) error {
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Request.URL.Path, "/v1/log/tile/entries/000") {
			return nil
		}
		raw, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		var eb api.EntryBundle
		if err := eb.UnmarshalText(raw); err != nil {
			return err
		}
		if entry < len(eb.Entries) {
			e, err := wire.ParseEntry(eb.Entries[entry])
			if err != nil {
				return err
			}
			h := sha256.Sum256([]byte("a share never asked for"))
			e.SealedSHA256 = hex.EncodeToString(h[:]) // still a well-formed entry
			if eb.Entries[entry], err = e.Marshal(); err != nil {
				return err
			}
		}
		var out []byte
		for _, leaf := range eb.Entries {
			out = binary.BigEndian.AppendUint16(out, uint16(len(leaf)))
			out = append(out, leaf...)
		}
		resp.Body = io.NopCloser(bytes.NewReader(out))
		resp.ContentLength = int64(len(out))
		resp.Header.Set("Content-Length", fmt.Sprint(len(out)))
		return nil
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestAuditCatchesRewrittenEntry(t *testing.T) {
	ad := newAuditDomain(t)
	// DTA 2 rewrites entry 3, under both anchors (sizes 6 and 18).
	b := auditWithURL(ad.d.Bundle, 1, auditEntryProxy(t, ad.d.DTAs[1].URL, 3))
	r, err := Audit(context.Background(), ad.chain.config(b))
	if err != nil {
		t.Fatal(err)
	}
	if r.OK() || r.DTAs[1].Status != AuditFailed || r.DTAs[0].Status != AuditOK || r.DTAs[2].Status != AuditOK {
		t.Fatalf("rewritten entry not caught: %+v", r)
	}
	got := strings.Join(r.Problems(), "\n")
	for _, want := range []string{
		"DTA 2 log polyroot/audit.example.com/dta-2: entry 3 differs from its leaf hash in the log's tiles: the entry or the tile was rewritten",
		"DTA 2 log polyroot/audit.example.com/dta-2: the log's entries up to size 6 do not hash to the root anchored at that size",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems lack %q:\n%s", want, got)
		}
	}
	// The first anchored root the entries do not make ends the reading of the log.
	if n := len(r.Problems()); n != 2 || r.DTAs[1].Scanned != 6 {
		t.Errorf("read on past the first anchor not made: %d entries read, problems:\n%s", r.DTAs[1].Scanned, got)
	}
	for _, p := range r.Problems() {
		if !strings.HasPrefix(p, "DTA 2 ") {
			t.Errorf("problem blames another DTA: %s", p)
		}
	}

	// The same rewrite shows in AuditIdentity: entries are returned with the problems.
	_, err = AuditIdentity(context.Background(), ad.chain.config(b), ad.target)
	if pe, ok := err.(*ProblemsError); !ok || !strings.Contains(pe.Error(), "entry 3 differs") {
		t.Fatalf("AuditIdentity on a rewritten log: %v", err)
	}
}

// auditForkLog serves, for DTA 2 of ad, another log of size entries under the same
// origin and key, none of them the ones anchored.
func auditForkLog(t *testing.T, ad *auditDomain, size uint64) string {
	t.Helper()
	var entries []wire.Entry
	for range size {
		entries = append(entries, wire.Entry{Kind: wire.KindClient, Subject: auditRandomIDHash()})
	}
	return auditRogueLog(t, ad, entries)
}

// auditRogueLog serves, for DTA 2 of ad, a log of the entries given under its origin
// and key; each gets the DTA, the domain, made-up hashes and, unless it has one, the
// time.
func auditRogueLog(t *testing.T, ad *auditDomain, entries []wire.Entry) string {
	t.Helper()
	ctx := context.Background()
	rec := ad.d.Bundle.DTAs[1]
	seed, err := ad.d.DTAs[1].Keys.Get(ctx, dta.SecretSigningKey)
	if err != nil {
		t.Fatal(err)
	}
	rogue, err := translog.Open(ctx, filepath.Join(t.TempDir(), "log"), rec.LogOrigin, ed25519.NewKeyFromSeed(seed),
		translog.Options{CheckpointInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rogue.Close(context.Background()) })
	var leaves [][]byte
	for i, e := range entries {
		h := sha256.Sum256(fmt.Append(nil, "forged ticket ", i))
		e.Version, e.DTA, e.Domain = wire.EntryVersion, rec.Index, ad.d.Name
		if e.Time == 0 {
			e.Time = time.Now().Unix()
		}
		e.TicketSHA256 = hex.EncodeToString(h[:])
		if e.Kind != wire.KindRevoke {
			e.SealedSHA256 = e.TicketSHA256
		}
		leaf, err := e.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		leaves = append(leaves, leaf)
	}
	if _, err := rogue.AppendAll(ctx, leaves); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/log/", http.StripPrefix("/v1/log", rogue.Handler()))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	auditCheckpoint(t, srv.URL+"/v1/log", rec.LogOrigin, auditPub(t, &rec), uint64(len(entries)))
	return srv.URL
}

// TestAuditShareAfterRevocation: a log that issues a share to an identity after its
// revocation entry fails the audit, naming both entries.
func TestAuditShareAfterRevocation(t *testing.T) {
	ad := newAuditDomain(t)
	x, other := auditRandomIDHash(), auditRandomIDHash()
	u := auditRogueLog(t, ad, []wire.Entry{
		{Kind: wire.KindClient, Subject: x},
		{Kind: wire.KindPermit, Subject: x, Slot: 7},
		{Kind: wire.KindRevoke, Subject: x},
		{Kind: wire.KindClient, Subject: other},
		{Kind: wire.KindPermit, Subject: x, Slot: 8},
	})
	r, err := Audit(context.Background(), ad.chain.config(auditWithURL(ad.d.Bundle, 1, u)))
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("entry 4 issues a permit share to identity %s, revoked at entry 2", x)
	var found []string
	for _, p := range r.DTAs[1].Problems {
		if strings.Contains(p, "issues a") {
			found = append(found, p)
		}
	}
	if len(found) != 1 || !strings.Contains(found[0], want) {
		t.Fatalf("problems about revoked identities %q, want one with %q", found, want)
	}
}

func TestAuditCatchesFork(t *testing.T) {
	ad := newAuditDomain(t)
	ctx := context.Background()
	// DTA 2 serves another log under its origin and key, longer than its anchors.
	forkURL := auditForkLog(t, ad, ad.sizes[1]+5)
	r, err := Audit(ctx, ad.chain.config(auditWithURL(ad.d.Bundle, 1, forkURL)))
	if err != nil {
		t.Fatal(err)
	}
	if r.OK() || r.DTAs[1].Status != AuditFailed || r.DTAs[0].Status != AuditOK || r.DTAs[2].Status != AuditOK {
		t.Fatalf("fork not caught: %+v", r)
	}
	got := strings.Join(r.Problems(), "\n")
	for _, want := range []string{
		"DTA 2 log polyroot/audit.example.com/dta-2: anchored root at size 6 is not consistent with the checkpoint at 25: the log was rewritten or forked",
		"DTA 2 log polyroot/audit.example.com/dta-2: anchored root at size 18 is not consistent with the checkpoint at 25: the log was rewritten or forked",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems lack %q:\n%s", want, got)
		}
	}
	// A log that contradicts its anchors is not read: the rest is moot.
	if r.DTAs[1].Scanned != 0 {
		t.Errorf("a forked log read: %d entries", r.DTAs[1].Scanned)
	}

	// A log rolled back below an anchor.
	r, err = Audit(ctx, ad.chain.config(auditWithURL(ad.d.Bundle, 1, auditForkLog(t, ad, 10))))
	if err != nil {
		t.Fatal(err)
	}
	got = strings.Join(r.Problems(), "\n")
	for _, want := range []string{
		"DTA 2 log polyroot/audit.example.com/dta-2: anchored size 18 is beyond the checkpoint at 10: the log was truncated or rolled back",
		"DTA 2 log polyroot/audit.example.com/dta-2: anchored root at size 6 is not consistent with the checkpoint at 10",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems lack %q:\n%s", want, got)
		}
	}

	// A log that DTA 3's key did not sign.
	r, err = Audit(ctx, ad.chain.config(auditWithURL(ad.d.Bundle, 2, forkURL)))
	if err != nil {
		t.Fatal(err)
	}
	if p := r.Problems(); len(p) != 1 || !strings.HasPrefix(p[0], "DTA 3 log polyroot/audit.example.com/dta-3: the checkpoint does not verify with the DTA's key in the bundle") {
		t.Fatalf("a log signed by another key: %q", p)
	}
}

func TestAuditIdentity(t *testing.T) {
	ad := newAuditDomain(t)
	entries, err := AuditIdentity(context.Background(), ad.chain.config(ad.d.Bundle), ad.target)
	if err != nil {
		t.Fatal(err)
	}
	type key struct {
		dta  uint32
		kind string
		slot uint64
	}
	var got []key
	for _, e := range entries {
		if e.Time.IsZero() || e.TicketSHA256 == "" || (e.Kind != wire.KindRevoke && e.SealedSHA256 == "") {
			t.Fatalf("incomplete entry %+v", e)
		}
		got = append(got, key{e.DTA, e.Kind, e.Slot})
	}
	var want []key
	for i := uint32(1); i <= 3; i++ {
		want = append(want, key{i, wire.KindClient, 0}, key{i, wire.KindPermit, 5}, key{i, wire.KindPermit, 6},
			key{i, wire.KindPermit, 7}, key{i, wire.KindRevoke, 0})
	}
	if !slices.Equal(got, want) {
		t.Fatalf("entries of the identity:\n got %v\nwant %v", got, want)
	}
	// Indices: the client share was the 6th entry, the permits 7th to 9th, the revocation 19th.
	if entries[0].Index != 5 || entries[1].Index != 6 || entries[4].Index != 18 {
		t.Fatalf("indices %d %d %d, want 5 6 18", entries[0].Index, entries[1].Index, entries[4].Index)
	}

	if got, err := AuditIdentity(context.Background(), ad.chain.config(ad.d.Bundle), auditRandomIDHash()); err != nil || len(got) != 0 {
		t.Fatalf("an unknown identity: %v, %v", got, err)
	}
	if _, err := AuditIdentity(context.Background(), ad.chain.config(ad.d.Bundle), "ABC"); err == nil {
		t.Fatal("a malformed idhash was accepted")
	}
}

// TestAuditConfirmations: an anchor counts only once its block has the confirmations
// asked for; the newest anchor (DTA 3's, in the head block) needs one more block.
func TestAuditConfirmations(t *testing.T) {
	ad := newAuditDomain(t)
	anchors := func(confirmations uint64) []int {
		t.Helper()
		cfg := ad.chain.config(ad.d.Bundle)
		cfg.Confirmations = confirmations
		r, err := Audit(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if !r.OK() {
			t.Fatalf("%d confirmations: problems %q", confirmations, r.Problems())
		}
		var n []int
		for _, d := range r.DTAs {
			n = append(n, len(d.Anchors))
		}
		return n
	}
	for _, tc := range []struct {
		confirmations uint64
		want          []int
	}{{0, []int{2, 2, 2}}, {1, []int{2, 2, 2}}, {2, []int{2, 2, 1}}, {3, []int{2, 1, 1}}} {
		if got := anchors(tc.confirmations); !slices.Equal(got, tc.want) {
			t.Fatalf("%d confirmations: anchors per DTA %v, want %v", tc.confirmations, got, tc.want)
		}
	}
	ad.chain.sim.Commit()
	if got := anchors(2); !slices.Equal(got, []int{2, 2, 2}) {
		t.Fatalf("2 confirmations, one block later: anchors per DTA %v", got)
	}
}

// anchoredAt returns a copy of b that names the anchoring chainID and contract.
func anchoredAt(b *bundle.Bundle, chainID uint64, contract common.Address) *bundle.Bundle {
	c := *b
	c.Anchoring = &bundle.Anchoring{ChainID: chainID, Contract: strings.ToLower(contract.Hex())}
	return &c
}

// TestAuditAnchoring: when the bundle names its anchoring, the audit reads anchors only
// from that contract on that chain.
func TestAuditAnchoring(t *testing.T) {
	d := testdomain.New(t, "anchoring.example.com", 2, 0)
	env := newAuditChain(t, d.Bundle)
	other := common.HexToAddress("0x00000000000000000000000000000000000000aa")
	for _, tc := range []struct {
		name string
		b    *bundle.Bundle
		ok   bool
	}{
		{"ok/none-named", d.Bundle, true},
		{"ok/named", anchoredAt(d.Bundle, 1337, env.addr), true},
		{"fail/other-contract", anchoredAt(d.Bundle, 1337, other), false},
		{"fail/other-chain", anchoredAt(d.Bundle, 1, env.addr), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Audit(context.Background(), env.config(tc.b))
			if tc.ok != (err == nil) || err != nil && !errors.Is(err, ErrAnchoring) {
				t.Fatalf("got %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// deployRuntime deploys a contract whose code is runtime, whatever it is: init code
// that copies the bytes after it into memory and returns them.
func deployRuntime(t *testing.T, sim *simulated.Backend, from *bind.TransactOpts, runtime []byte) common.Address {
	t.Helper()
	n := len(runtime)
	initCode := append([]byte{
		0x61, byte(n >> 8), byte(n), 0x60, 0x0e, 0x60, 0x00, 0x39, // CODECOPY(0, 14, n)
		0x61, byte(n >> 8), byte(n), 0x60, 0x00, 0xf3, // RETURN(0, n)
	}, runtime...)
	addr, _, err := bind.DeployContract(from, initCode, sim.Client(), nil)
	if err != nil {
		t.Fatal(err)
	}
	sim.Commit()
	if code, err := sim.Client().CodeAt(context.Background(), addr, nil); err != nil || !bytes.Equal(code, runtime) {
		t.Fatalf("deployed code: %v, %d bytes, want %d", err, len(code), len(runtime))
	}
	return addr
}

// TestAuditContractCode: the audit and FetchProofBundle read anchors only from a
// contract whose code is IssuanceLog's, byte for byte. The impostor answers as
// IssuanceLog does (its code is IssuanceLog's with a byte after it), so only the code
// tells them apart: a permissive anchor() would look no different from outside.
func TestAuditContractCode(t *testing.T) {
	d := testdomain.New(t, "code.example.com", 2, 0)
	env := newAuditChain(t, d.Bundle)
	impostor := deployRuntime(t, env.sim, env.anchorer, append(slices.Clone(DeployedCode()), 0))
	for _, tc := range []struct {
		name     string
		contract common.Address
		want     string // in the error; "" for none
	}{
		{"ok/issuance-log", env.addr, ""},
		{"fail/other-code", impostor, "not the IssuanceLog contract: the code at " + impostor.Hex()},
		{"fail/no-code", common.HexToAddress("0x00000000000000000000000000000000000000aa"), "has no code as of block"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := env.config(d.Bundle)
			cfg.Contract = tc.contract
			_, err := Audit(context.Background(), cfg)
			_, perr := FetchProofBundle(context.Background(), ProofConfig{Bundle: d.Bundle, Chain: env.sim.Client(), Contract: tc.contract}, nil)
			for _, err := range []error{err, perr} {
				if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
					t.Fatalf("got %v, want %q", err, tc.want)
				}
			}
			if tc.contract == impostor && !errors.Is(err, ErrNotIssuanceLog) {
				t.Fatalf("got %v, want ErrNotIssuanceLog", err)
			}
		})
	}
}

func TestAuditRefusesHugeResponses(t *testing.T) {
	d := testdomain.New(t, "huge.example.com", 2, 0)
	env := newAuditChain(t, d.Bundle)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(bytes.Repeat([]byte("polyroot/huge.example.com/dta-1\n"), 1<<16)) // 2 MiB
	}))
	t.Cleanup(srv.Close)
	r, err := Audit(context.Background(), env.config(auditWithURL(d.Bundle, 0, srv.URL)))
	if err != nil {
		t.Fatal(err)
	}
	if p := r.Problems(); len(p) != 1 || !strings.Contains(p[0], "DTA 1 log polyroot/huge.example.com/dta-1: cannot read the checkpoint") ||
		!strings.Contains(p[0], "larger than") {
		t.Fatalf("a 2 MiB checkpoint: problems %q", p)
	}
}

// TestAuditSeenCheckpoint: an auditor that keeps the checkpoints it verified catches a
// DTA that rolls back or rewrites the unanchored part of its log between two audits.
func TestAuditSeenCheckpoint(t *testing.T) {
	ad := newAuditDomain(t)
	ad.chain = newAuditChain(t, ad.d.Bundle) // a contract with no anchors
	now := time.Now().Unix()
	entry := func(name string) wire.Entry {
		h := sha256.Sum256([]byte(name))
		return wire.Entry{Kind: wire.KindClient, Subject: hex.EncodeToString(h[:]), Time: now}
	}
	c1, c2, c3, c4, c3b := entry("c1"), entry("c2"), entry("c3"), entry("c4"), entry("c3 rewritten")
	audit := func(entries []wire.Entry, seen map[string]SeenCheckpoint) *DTAReport {
		t.Helper()
		cfg := ad.chain.config(auditWithURL(ad.d.Bundle, 1, auditRogueLog(t, ad, entries)))
		cfg.Seen = seen
		r, err := Audit(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		return &r.DTAs[1]
	}
	first := audit([]wire.Entry{c1, c2, c3}, nil)
	if len(first.Problems) != 0 || first.Status != AuditUnanchored {
		t.Fatalf("first audit: %s %q", first.Status, first.Problems)
	}
	seen := map[string]SeenCheckpoint{first.Origin: {Size: first.CheckpointSize, Root: first.CheckpointRoot}}
	for _, tc := range []struct {
		name    string
		entries []wire.Entry
		want    string
	}{
		{"ok/extended", []wire.Entry{c1, c2, c3, c4}, ""},
		{"ok/same", []wire.Entry{c1, c2, c3}, ""},
		{"fail/rolled-back", []wire.Entry{c1, c2}, "the checkpoint is at 2, below the size 3 this auditor saw before"},
		{"fail/tail-rewritten", []wire.Entry{c1, c2, c3b, c4}, "root seen before at size 3 is not consistent with the checkpoint at 4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := audit(tc.entries, seen)
			switch {
			case tc.want == "" && len(got.Problems) > 0:
				t.Fatalf("problems %q", got.Problems)
			case tc.want != "" && (len(got.Problems) != 1 || !strings.Contains(got.Problems[0], tc.want)):
				t.Fatalf("problems %q, want one with %q", got.Problems, tc.want)
			}
		})
	}
}

// TestAuditMaxAnchorAge: a log whose first entry past its last anchor is older than
// MaxAnchorAge fails the audit (the DTA stopped anchoring); one that anchors does not.
func TestAuditMaxAnchorAge(t *testing.T) {
	ad := newAuditDomain(t)
	cfg := ad.chain.config(ad.d.Bundle)
	cfg.MaxAnchorAge = time.Hour
	if r, err := Audit(context.Background(), cfg); err != nil || !r.OK() {
		t.Fatalf("fresh unanchored entries: %v, problems %q", err, r.Problems())
	}
	// Entries 18 and 19 of every log are past the anchor at 18.
	time.Sleep(1100 * time.Millisecond)
	cfg.MaxAnchorAge = time.Millisecond
	r, err := Audit(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range r.DTAs {
		if len(d.Problems) != 1 || !strings.Contains(d.Problems[0], "entry 18, the first past the last anchor, was logged") {
			t.Fatalf("DTA %d: problems %q", d.Index, d.Problems)
		}
	}

	// Without any anchor, the first entry counts.
	ad.chain = newAuditChain(t, ad.d.Bundle)
	old := time.Now().Add(-48 * time.Hour).Unix()
	u := auditRogueLog(t, ad, []wire.Entry{{Kind: wire.KindClient, Subject: auditRandomIDHash(), Time: old}, {Kind: wire.KindClient, Subject: auditRandomIDHash()}})
	cfg = ad.chain.config(auditWithURL(ad.d.Bundle, 1, u))
	cfg.MaxAnchorAge = 24 * time.Hour
	if r, err = Audit(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if p := r.DTAs[1].Problems; len(p) != 1 || !strings.Contains(p[0], "entry 0, the first past the last anchor, was logged 48h0m0s ago (at most 24h0m0s allowed)") {
		t.Fatalf("an old unanchored log: problems %q", p)
	}
	if len(r.DTAs[0].Problems) > 0 {
		t.Fatalf("DTA 1: %q", r.DTAs[0].Problems)
	}

	// A DTA that dates its first unanchored entry ahead, so that it never looks old,
	// is caught by the date itself.
	ahead := time.Now().Add(100 * 365 * 24 * time.Hour).Unix()
	u = auditRogueLog(t, ad, []wire.Entry{{Kind: wire.KindClient, Subject: auditRandomIDHash(), Time: ahead}, {Kind: wire.KindClient, Subject: auditRandomIDHash(), Time: old}})
	cfg = ad.chain.config(auditWithURL(ad.d.Bundle, 1, u))
	cfg.MaxAnchorAge = 24 * time.Hour
	if r, err = Audit(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if p := r.DTAs[1].Problems; len(p) != 1 || !strings.Contains(p[0], "entry 0 is dated 2") || !strings.Contains(p[0], "in the future") {
		t.Fatalf("an entry dated ahead: problems %q", p)
	}
}

// TestAuditUnanchoredLog: a log whose DTA does not anchor it fails by clocks the DTA
// does not set, however it dates its entries: the chain's, from the log's
// registration, and the auditor's own, from when it first saw entries past the
// anchors (Seen).
func TestAuditUnanchoredLog(t *testing.T) {
	// Never anchored: DTA 1's log registered, DTA 2's not.
	d := testdomain.New(t, "unanchored.example.com", 2, 0)
	auditIssue(t, d, ticket.KindClient, auditRandomIDHash(), 0, 0)
	for i, rec := range d.Bundle.DTAs {
		auditCheckpoint(t, d.DTAs[i].URL+"/v1/log", rec.LogOrigin, auditPub(t, &rec), 1)
	}
	first := *d.Bundle
	first.DTAs = first.DTAs[:1]
	env := newAuditChain(t, &first)
	env.sim.Commit() // block 3, after DTA 1's registration in block 2
	old := newAuditChain(t, &first)
	if err := old.sim.AdjustTime(48 * time.Hour); err != nil {
		t.Fatal(err)
	}
	old.sim.Commit()
	// Registered, frozen, and registered again two days later: the anchorer's time
	// counts from its last registration.
	refrozen := newAuditChain(t, &first)
	refrozen.send(refrozen.owner, Binding().PackRegister(LogID(first.DTAs[0].LogOrigin), common.Address{}))
	if err := refrozen.sim.AdjustTime(48 * time.Hour); err != nil {
		t.Fatal(err)
	}
	refrozen.send(refrozen.owner, Binding().PackRegister(LogID(first.DTAs[0].LogOrigin), refrozen.anchorer.From))

	// Anchored at 18 with a checkpoint at 20: what a stateful auditor saw before.
	ad := newAuditDomain(t)
	origin := ad.d.Bundle.DTAs[0].LogOrigin
	seenAt := func(size uint64, since time.Time) map[string]SeenCheckpoint {
		r0, err := Audit(context.Background(), ad.chain.config(ad.d.Bundle))
		if err != nil {
			t.Fatal(err)
		}
		cp := r0.DTAs[0]
		return map[string]SeenCheckpoint{origin: {Size: cp.CheckpointSize, Root: cp.CheckpointRoot, UnanchoredSize: size, UnanchoredSince: since}}
	}
	const neverAnchored = "the log was never anchored, although it was registered by block"
	for _, tc := range []struct {
		name   string
		chain  *auditChainEnv
		b      *bundle.Bundle
		seen   map[string]SeenCheckpoint
		status [2]string
		want   [2]string // a problem of each DTA ("" none)
		from   uint64    // FromBlock
	}{
		{"ok/registered-recently", env, d.Bundle, nil, [2]string{AuditUnanchored, AuditUnanchored}, [2]string{}, 0},
		{"fail/registered-long-ago", old, d.Bundle, nil, [2]string{AuditFailed, AuditUnanchored}, [2]string{neverAnchored}, 0},
		{"ok/frozen-then-registered-recently", refrozen, d.Bundle, nil, [2]string{AuditUnanchored, AuditUnanchored}, [2]string{}, 0},
		{"fail/not-registered-with-named-anchoring", env, anchoredAt(d.Bundle, 1337, env.addr), nil, [2]string{AuditUnanchored, AuditFailed},
			[2]string{"", "no address may anchor the log on the contract the trust bundle names (never registered, or frozen)"}, 0},
		// DTA 1's Registered event is before the blocks read: the contract's state says
		// it is registered all the same.
		{"ok/registered-before-from-block", env, anchoredAt(d.Bundle, 1337, env.addr), nil, [2]string{AuditUnanchored, AuditFailed},
			[2]string{"", "never registered, or frozen"}, 3},
		{"ok/tail-seen-recently", ad.chain, ad.d.Bundle, seenAt(20, time.Now().Add(-time.Hour)), [2]string{AuditOK, AuditOK}, [2]string{}, 0},
		{"ok/tail-seen-long-ago-anchored-since", ad.chain, ad.d.Bundle, seenAt(18, time.Now().Add(-48*time.Hour)), [2]string{AuditOK, AuditOK}, [2]string{}, 0},
		{"fail/tail-seen-long-ago", ad.chain, ad.d.Bundle, seenAt(19, time.Now().Add(-48*time.Hour)), [2]string{AuditFailed, AuditOK},
			[2]string{"this auditor saw the log at size 19 48h0m0s ago, and its anchors still stop at 18 (at most 24h0m0s allowed): the DTA has stopped anchoring"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.chain.config(tc.b)
			cfg.MaxAnchorAge, cfg.Seen, cfg.FromBlock = 24*time.Hour, tc.seen, tc.from
			r, err := Audit(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			for i, dr := range r.DTAs[:2] {
				if dr.Status != tc.status[i] || (tc.want[i] == "") != (len(dr.Problems) == 0) ||
					tc.want[i] != "" && !strings.Contains(dr.Problems[0], tc.want[i]) {
					t.Fatalf("DTA %d: %s, problems %q; want %s, %q", dr.Index, dr.Status, dr.Problems, tc.status[i], tc.want[i])
				}
			}
		})
	}

	// What a stateful auditor keeps: when it first saw the tail, until it is anchored.
	r, err := Audit(context.Background(), ad.chain.config(ad.d.Bundle))
	if err != nil {
		t.Fatal(err)
	}
	if s := r.DTAs[0].Seen; s.Size != 20 || s.UnanchoredSize != 20 || time.Since(s.UnanchoredSince) > time.Minute {
		t.Fatalf("Seen after a first audit: %+v", s)
	}
	since := time.Now().Add(-time.Hour)
	cfg := ad.chain.config(ad.d.Bundle)
	cfg.Seen = seenAt(19, since)
	if r, err = Audit(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if s := r.DTAs[0].Seen; s.Size != 20 || s.UnanchoredSize != 19 || !s.UnanchoredSince.Equal(since) {
		t.Fatalf("Seen of a tail still unanchored: %+v, want size 19 since %s kept", s, since)
	}
}

// hostileChain is an RPC endpoint that never answers, or claims a head no chain has.
type hostileChain struct {
	AuditChain
	hang bool
	head uint64
}

func (c hostileChain) BlockNumber(ctx context.Context) (uint64, error) {
	if c.hang {
		<-ctx.Done()
		return 0, ctx.Err()
	}
	return c.head, nil
}

// TestAuditHostileChain: an RPC endpoint that never answers, or claims an absurd
// chain head, makes the audit and the proof fetch fail, not hang.
func TestAuditHostileChain(t *testing.T) {
	d := testdomain.New(t, "hostile-chain.example.com", 2, 0)
	env := newAuditChain(t, d.Bundle)
	for _, tc := range []struct {
		name  string
		chain hostileChain
		want  string
	}{
		{"fail/never-answers", hostileChain{AuditChain: env.sim.Client(), hang: true}, "context deadline exceeded"},
		{"fail/absurd-head", hostileChain{AuditChain: env.sim.Client(), head: 1 << 62}, "which no chain has reached"},
		{"fail/head-at-the-limit", hostileChain{AuditChain: env.sim.Client(), head: math.MaxUint64}, "which no chain has reached"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := env.config(d.Bundle)
			cfg.Chain, cfg.ChainTimeout = tc.chain, 200*time.Millisecond
			if _, err := Audit(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("audit: %v, want %q", err, tc.want)
			}
			_, err := FetchProofBundle(context.Background(), ProofConfig{Bundle: d.Bundle, Chain: tc.chain, Contract: env.addr, ChainTimeout: 200 * time.Millisecond}, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("proofs: %v, want %q", err, tc.want)
			}
		})
	}
}

// TestAuditBoundsOneDTA: a DTA whose entries take too long fails its audit past
// DTATimeout without holding up the others, and past MaxLag only the anchored part of
// a log is read (a checkpoint of any size cannot keep the audit running).
func TestAuditBoundsOneDTA(t *testing.T) {
	ad := newAuditDomain(t)
	cfg := ad.chain.config(ad.d.Bundle)
	cfg.MaxLag = 1
	r, err := Audit(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range r.DTAs {
		if d.Scanned != ad.anchors[len(ad.anchors)-1] || len(d.Problems) != 1 || !strings.Contains(d.Problems[0], "anchors do not keep up") {
			t.Fatalf("DTA %d past MaxLag: scanned %d (last anchor %d), problems %q", d.Index, d.Scanned, ad.anchors[len(ad.anchors)-1], d.Problems)
		}
	}

	target, err := url.Parse(ad.d.DTAs[1].URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/tile/entries/") {
			select {
			case <-time.After(5 * time.Second):
			case <-r.Context().Done():
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	defer slow.Close()
	cfg = ad.chain.config(auditWithURL(ad.d.Bundle, 1, slow.URL))
	cfg.DTATimeout = 300 * time.Millisecond
	start := time.Now()
	if r, err = Audit(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if p := r.DTAs[1].Problems; len(p) != 1 || !strings.Contains(p[0], "reading the log did not finish within 300ms (0 of 20 entries read)") {
		t.Fatalf("slow DTA 2: problems %q", p)
	}
	if len(r.DTAs[0].Problems) != 0 || len(r.DTAs[2].Problems) != 0 || time.Since(start) > 4*time.Second {
		t.Fatalf("the others: %q, %q after %v", r.DTAs[0].Problems, r.DTAs[2].Problems, time.Since(start))
	}
}
