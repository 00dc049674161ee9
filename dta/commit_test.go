package dta

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/polyroot/polyroot/internal/ticket"
	"github.com/polyroot/polyroot/internal/translog"
	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/pairing"
)

// TestGroupCommitCrashBeforeCompletion covers the crash window the group commit adds:
// a record whose entries are in the log and whose answer has left, but whose
// completion only the next round would have written. A copy of the data directory
// taken then is what a crash leaves; a DTA started on it must find the entries in the
// log and answer retries with them, without a new entry. The window is an hour, so
// rounds start only because the DTA is otherwise idle, and no completion is written
// by itself.
func TestGroupCommitCrashBeforeCompletion(t *testing.T) {
	d := newDomain(t, 1, 3600)
	nd := d.dtas[0]
	d.stop(nd)
	slow := translog.Options{CheckpointInterval: logOptions.CheckpointInterval, BatchMaxAge: time.Hour}
	svc, err := New(context.Background(), Config{Bundle: d.bundle, Index: nd.index, Keys: nd.keys, DataDir: nd.dir, Log: slow})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc.Handler())

	// One issuance alone, then a group of concurrent ones: the last round's records are
	// complete only in memory.
	var tickets []string
	first := d.ticket(ticket.KindClient, newID(t, "first@example.com"))
	start := time.Now()
	answers := map[string]*wire.DTAResponse{first: d.issue(&node{url: srv.URL}, "/v1/shares/client", first)}
	if time.Since(start) > 10*time.Second {
		t.Fatalf("a lone issuance waited %v for its group", time.Since(start))
	}
	tickets = append(tickets, first)
	group := make([]string, 8)
	results := make([]*wire.DTAResponse, len(group))
	var wg sync.WaitGroup
	for i := range group {
		group[i] = d.ticket(ticket.KindClient, newID(t, fmt.Sprintf("group%d@example.com", i)))
		wg.Go(func() {
			resp, err := http.Post(srv.URL+"/v1/shares/client", "application/json", bytes.NewReader(ticketBody(group[i])))
			if err != nil {
				return
			}
			defer resp.Body.Close()
			var r wire.DTAResponse
			if resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&r) == nil {
				results[i] = &r
			}
		})
	}
	wg.Wait()
	for i, tk := range group {
		if results[i] == nil {
			t.Fatalf("issuance %d of the group failed", i)
		}
		tickets, answers[tk] = append(tickets, tk), results[i]
	}
	// A record of the last round: complete in memory only.
	var last string
	var parsed *ticket.Ticket
	for _, tk := range group {
		if parsed, err = ticket.Verify(tk, d.bundle.RegistrarPublicKey(), testDomain, ticket.KindClient, d.now); err != nil {
			t.Fatal(err)
		}
		if svc.commits.lookup(parsed.Nonce) != nil {
			last = tk
			break
		}
	}
	if last == "" {
		t.Fatal("no record is waiting for its completion: the test does not cover the crash window")
	}
	if rec, err := svc.store.get(parsed.Nonce); err != nil || !rec.pending() {
		t.Fatalf("on disk, the record of the last round is not pending (%v)", err)
	}
	// A retry now is answered from memory, with the same entry.
	if again := d.issue(&node{url: srv.URL}, "/v1/shares/client", last); again.Shares[0].Promise.Index != answers[last].Shares[0].Promise.Index {
		t.Fatal("a retry before the completion was written got another entry")
	}

	crashed := filepath.Join(t.TempDir(), "crashed")
	copyDir(t, nd.dir, crashed)
	srv.Close()
	svc.Close(context.Background())

	// The DTA restarted on the state the crash left.
	svc, err = New(context.Background(), Config{Bundle: d.bundle, Index: nd.index, Keys: nd.keys, DataDir: crashed, Log: logOptions})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close(context.Background())
	srv = httptest.NewServer(svc.Handler())
	defer srv.Close()
	size, err := svc.log.Size(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if size != uint64(len(tickets)) {
		t.Fatalf("the log has %d entries for %d issuances", size, len(tickets))
	}
	if rec, err := svc.store.get(parsed.Nonce); err != nil || rec.pending() {
		t.Fatalf("after recovery the record of the last round is still pending (%v)", err)
	}
	for _, tk := range tickets {
		r := d.issue(&node{url: srv.URL}, "/v1/shares/client", tk)
		if r.Shares[0].Promise.Index != answers[tk].Shares[0].Promise.Index || string(r.Shares[0].Entry) != string(answers[tk].Shares[0].Entry) {
			t.Fatal("after the crash a retry got another entry than the first answer")
		}
	}
	if got, _ := svc.log.Size(t.Context()); got != size {
		t.Fatalf("retries grew the log from %d to %d", size, got)
	}
}

// TestGroupCommitCloseWritesCompletions: a graceful stop writes the completions still
// held in memory, so that the next start has nothing to recover.
func TestGroupCommitCloseWritesCompletions(t *testing.T) {
	d := newDomain(t, 1, 3600)
	nd := d.dtas[0]
	d.stop(nd)
	slow := translog.Options{CheckpointInterval: logOptions.CheckpointInterval, BatchMaxAge: time.Hour}
	svc, err := New(context.Background(), Config{Bundle: d.bundle, Index: nd.index, Keys: nd.keys, DataDir: nd.dir, Log: slow})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc.Handler())
	tk := d.ticket(ticket.KindRevoke, newID(t, "erin@example.com"))
	d.issue(&node{url: srv.URL}, "/v1/revocations", tk)
	srv.Close()
	svc.Close(context.Background())
	st, err := openStore(nd.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	pending, err := st.pendingRecords()
	if err != nil || len(pending) != 0 {
		t.Fatalf("after a graceful stop: %d pending records, %v", len(pending), err)
	}
}

// TestGroupCommitCloseStoreFails: when the state database fails the writes of a stop
// (a disk gone read-only or full), Close returns after one try, logging one error,
// rather than retrying at once until the process is killed; the next start completes
// the record, and a retry of the ticket gets the same answer.
func TestGroupCommitCloseStoreFails(t *testing.T) {
	d := newDomain(t, 1, 3600)
	nd := d.dtas[0]
	d.stop(nd)
	var errorLines atomic.Int64
	d.logger = slog.New(levelCounter{min: slog.LevelError, n: &errorLines})
	d.start(nd, func(c *Config) { c.Log.BatchMaxAge = time.Hour }) // completions wait for a later round
	tk := d.ticket(ticket.KindClient, newID(t, "frank@example.com"))
	first := d.issue(nd, "/v1/shares/client", tk)
	nd.svc.store.db.Close() // every write fails from now on; the file stays as it was
	closed := make(chan struct{})
	go func() {
		d.stop(nd)
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatalf("Close has not returned after 10 s (%d error lines logged)", errorLines.Load())
	}
	if n := errorLines.Load(); n != 1 {
		t.Errorf("%d error lines at the stop, want 1", n)
	}
	d.logger = nil
	d.start(nd)
	if again := d.issue(nd, "/v1/shares/client", tk); !reflect.DeepEqual(again, first) {
		t.Fatalf("after recovery the ticket got another answer:\n%+v\n%+v", again, first)
	}
}

// levelCounter is a slog handler that counts the records at min and above.
type levelCounter struct {
	min slog.Level
	n   *atomic.Int64
}

func (h levelCounter) Enabled(_ context.Context, l slog.Level) bool { return l >= h.min }
func (h levelCounter) Handle(context.Context, slog.Record) error {
	h.n.Add(1)
	return nil
}
func (h levelCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h levelCounter) WithGroup(string) slog.Handler      { return h }

// copyDir copies a DTA's data directory as it is on disk now.
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if e.IsDir() {
			return os.MkdirAll(dst, 0o700)
		}
		b, err := os.ReadFile(p)
		if os.IsNotExist(err) {
			return nil // a temporary file of the log, renamed meanwhile
		}
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestStoreRoundCompletion: the records of a round are pending until the round's
// completion is written, then complete with consecutive indices from the round's first
// one; the round numbers survive a restart; prune forgets a round's completion only
// with the last of its records, and keeps the records of a round never completed.
func TestStoreRoundCompletion(t *testing.T) {
	dir := t.TempDir()
	st, err := openStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	past, future := now.Add(-time.Hour).Unix(), now.Add(time.Hour).Unix()
	rec := func(entries, offset int, round uint64, notAfter int64) *record {
		r := &record{Kind: ticket.KindPermit, Round: round, Offset: uint64(offset), NotAfter: notAfter}
		for range entries {
			r.Entries = append(r.Entries, []byte{1})
		}
		return r
	}
	r1, r2 := st.newRound(), st.newRound()
	if r1 == 0 || r2 <= r1 {
		t.Fatalf("round numbers %d, %d", r1, r2)
	}
	puts := []storePut{{nonce: "a", rec: rec(1, 0, r1, past)}, {nonce: "b", rec: rec(3, 1, r1, past-5)}}
	if err := st.commitRound(r1, puts, nil, nil); err != nil {
		t.Fatal(err)
	}
	// Round r2 is written pending and never completed (its append failed).
	if err := st.commitRound(r2, []storePut{{nonce: "c", rec: rec(1, 0, r2, past)}}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if p, err := st.pendingRecords(); err != nil || len(p) != 3 {
		t.Fatalf("before the completion: %d pending, %v; want 3", len(p), err)
	}
	if err := st.commitRound(0, nil, nil, []roundDone{{round: r1, first: 100, notAfter: past}}); err != nil {
		t.Fatal(err)
	}
	for nonce, want := range map[string][]uint64{"a": {100}, "b": {101, 102, 103}} {
		r, err := st.get(nonce)
		if err != nil || r.pending() || fmt.Sprint(r.Indices) != fmt.Sprint(want) {
			t.Fatalf("%s after its round's completion: %v %v, want %v", nonce, r, err, want)
		}
	}
	if r, _, err := st.getChecked("b", ""); err != nil || fmt.Sprint(r.Indices) != "[101 102 103]" {
		t.Fatalf("getChecked: %v %v", r, err)
	}
	if p, err := st.pendingRecords(); err != nil || len(p) != 1 || p["c"] == nil {
		t.Fatalf("after the completion: pending %v, %v; want c", p, err)
	}
	st.close()

	st, err = openStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	if r := st.newRound(); r <= r2 {
		t.Fatalf("after a restart, round %d again (last used %d)", r, r2)
	}
	roundKept := func(r uint64) bool {
		var kept bool
		st.db.View(func(tx *bolt.Tx) error {
			kept = tx.Bucket(bucketRounds).Get(roundKey(r)) != nil
			return nil
		})
		return kept
	}
	// One batch of one record: b goes, a and the completion of round r1 stay.
	if n, err := st.prune(now, 1); err != nil || n != 1 || !roundKept(r1) {
		t.Fatalf("first batch: %d, %v, completion kept %v", n, err, roundKept(r1))
	}
	if r, err := st.get("a"); err != nil || r.pending() {
		t.Fatalf("a after the first batch: %v %v", r, err)
	}
	if n, err := st.prune(now, 10); err != nil || n != 1 || roundKept(r1) {
		t.Fatalf("second batch: %d, %v, completion kept %v", n, err, roundKept(r1))
	}
	if _, err := st.get("c"); err != nil {
		t.Fatalf("the record of a round never completed was pruned: %v", err)
	}

	// A round with a record without expiry is never forgotten.
	r3 := st.newRound()
	if err := st.commitRound(r3, []storePut{{nonce: "d", rec: rec(1, 0, r3, 0)}, {nonce: "e", rec: rec(1, 1, r3, past)}}, nil, nil); err != nil {
		t.Fatal(err)
	}
	done, _ := completeRound(r3, []*submission{{storePut: storePut{nonce: "d", rec: rec(1, 0, r3, 0)}}, {storePut: storePut{nonce: "e", rec: rec(1, 1, r3, future)}}}, []uint64{7, 8})
	if done.records != nil || done.round.first != 7 {
		t.Fatalf("completion of a consecutive round: %+v", done)
	}
	if err := st.commitRound(0, nil, nil, []roundDone{done.round}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.prune(now.Add(48*time.Hour), 10); err != nil || !roundKept(r3) {
		t.Fatalf("the completion of a round with a record without expiry went (%v)", err)
	}
}

// TestCompleteRoundNotConsecutive: should the log not give a round consecutive
// indices, its records are completed one by one, each with its own.
func TestCompleteRoundNotConsecutive(t *testing.T) {
	group := []*submission{
		{storePut: storePut{nonce: "a", rec: &record{Entries: [][]byte{{1}}, Round: 4}}},
		{storePut: storePut{nonce: "b", rec: &record{Entries: [][]byte{{1}, {2}}, Round: 4, Offset: 1}}},
	}
	done, top := completeRound(4, group, []uint64{10, 12, 13})
	if top != 14 || len(done.records) != 2 || done.round.round != 0 {
		t.Fatalf("completion %+v, top %d", done, top)
	}
	if fmt.Sprint(group[0].rec.Indices, group[1].rec.Indices) != "[10] [12 13]" {
		t.Fatalf("indices %v %v", group[0].rec.Indices, group[1].rec.Indices)
	}
	st, err := openStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	if err := st.commitRound(4, []storePut{group[0].storePut, group[1].storePut}, done.records, nil); err != nil {
		t.Fatal(err)
	}
	if r, err := st.get("b"); err != nil || fmt.Sprint(r.Indices) != "[12 13]" {
		t.Fatalf("b: %v %v", r, err)
	}
}

// TestRevocationInRound: a share whose identity was revoked after issue checked it (a
// revocation acknowledged while the share was computed) is refused by its round and
// leaves nothing behind, and a revocation in the same round as a share of its identity
// wins over the share.
func TestRevocationInRound(t *testing.T) {
	d := newDomain(t, 1, 3600)
	nd := d.dtas[0]
	revoked, other := newID(t, "frank@example.com"), newID(t, "grace@example.com")
	d.issue(nd, "/v1/revocations", d.ticket(ticket.KindRevoke, revoked))
	hexID := hex.EncodeToString(revoked[:])

	// What issue hands the committer once the share is computed (its own check passed
	// before the revocation above).
	rec := &record{TicketSHA256: "aa", Kind: ticket.KindClient, Entries: [][]byte{[]byte("entry")}, Slots: []uint64{0}}
	if err := nd.svc.commits.submit("late-nonce", rec, "", hexID); !errors.Is(err, errRevoked) {
		t.Fatalf("a share of a revoked identity: %v, want errRevoked", err)
	}
	if r, err := nd.svc.store.get("late-nonce"); !errors.Is(err, errNoRecord) {
		t.Fatalf("the refused share left a record: %+v, %v", r, err)
	}

	otherHex := hex.EncodeToString(other[:])
	group := []*submission{
		{storePut: storePut{nonce: "share-before", rec: &record{}}, subject: otherHex, ready: make(chan struct{})},
		{storePut: storePut{nonce: "revoke", rec: &record{}, revoke: otherHex}, ready: make(chan struct{})},
		{storePut: storePut{nonce: "server-share", rec: &record{}}, ready: make(chan struct{})},
		{storePut: storePut{nonce: "unrelated", rec: &record{}}, subject: "00" + otherHex[2:], ready: make(chan struct{})},
	}
	kept := nd.svc.commits.refuseRevoked(group)
	var names []string
	for _, s := range kept {
		names = append(names, s.nonce)
	}
	if got := strings.Join(names, " "); got != "revoke server-share unrelated" {
		t.Fatalf("kept %q, want the revocation, the server share and the unrelated share", got)
	}
	select {
	case <-group[0].ready:
		if !errors.Is(group[0].err, errRevoked) {
			t.Fatalf("the share revoked in its own round: %v", group[0].err)
		}
	default:
		t.Fatal("the share revoked in its own round got no answer")
	}
}

// TestRecoveryDropsRevokedPending: a pending share that is not all logged (its round's
// append failed, wholly or for a later batch of its entries, and its answer was an
// error) is dropped at recovery, its missing entries not logged, if its identity was
// revoked since: logging them then would log shares after the revocation. A pending
// share of an identity still in good standing is logged as before.
func TestRecoveryDropsRevokedPending(t *testing.T) {
	d := newDomain(t, 1, 3600)
	nd := d.dtas[0]
	revokedID, goodID := newID(t, "heidi@example.com"), newID(t, "ivan@example.com")
	ctx := context.Background()
	before, err := nd.svc.log.Size(ctx)
	if err != nil {
		t.Fatal(err)
	}
	size := before // the log's size when the records below are written pending
	pendingShare := func(id pairing.IDHash, nonce string, slots ...uint64) storePut {
		t.Helper()
		r := &record{TicketSHA256: strings.Repeat("cd", 32), Kind: ticket.KindPermit, SizeHint: size}
		for _, slot := range slots {
			e := wire.Entry{Version: wire.EntryVersion, DTA: nd.index, Domain: d.bundle.Domain, Kind: ticket.KindPermit, Slot: slot,
				Subject: wire.Subject(id), SealedSHA256: strings.Repeat("ab", 32), TicketSHA256: r.TicketSHA256, Time: time.Now().Unix()}
			leaf, err := e.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			r.Entries, r.Slots, r.Sealed = append(r.Entries, leaf), append(r.Slots, slot), append(r.Sealed, []byte("sealed"))
		}
		return storePut{nonce: nonce, rec: r}
	}
	// The first batch of a permit record's entries reached the log, the second did not;
	// then the identity was revoked.
	partly := pendingShare(revokedID, "revoked-partly-logged", 1, 2)
	if _, err := nd.svc.log.AppendAll(ctx, partly.rec.Entries[:1]); err != nil {
		t.Fatal(err)
	}
	d.issue(nd, "/v1/revocations", d.ticket(ticket.KindRevoke, revokedID))
	if size, err = nd.svc.log.Size(ctx); err != nil {
		t.Fatal(err)
	}
	d.stop(nd)

	st, err := openStore(nd.dir)
	if err != nil {
		t.Fatal(err)
	}
	puts := []storePut{pendingShare(revokedID, "revoked-pending", 0), partly, pendingShare(goodID, "good-pending", 0)}
	if err := st.commit(puts, nil); err != nil {
		t.Fatal(err)
	}
	st.close()

	d.start(nd)
	for _, nonce := range []string{"revoked-pending", "revoked-partly-logged"} {
		if r, err := nd.svc.store.get(nonce); !errors.Is(err, errNoRecord) {
			t.Fatalf("%s: %+v, %v; want it dropped", nonce, r, err)
		}
	}
	r, err := nd.svc.store.get("good-pending")
	if err != nil || r.pending() || len(r.Indices) != 1 || r.Indices[0] != size {
		t.Fatalf("the other pending share: %+v, %v; want it logged at %d", r, err, size)
	}
	if got, err := nd.svc.log.Size(ctx); err != nil || got != size+1 {
		t.Fatalf("log size %d, %v; want %d (one entry recovered, none for the revoked identity)", got, err, size+1)
	}
}

// TestAppendFailureRecovers breaks the log's storage under a running DTA (its tile
// directory replaced by a file: every append fails, root or not), so that a round's
// append fails with its records pending, then mends it. The DTA must answer the
// failed ticket "retry later" while it cannot append, recover by itself once the log
// takes entries again (no restart), answer the retry with entries logged exactly
// once, and turn ready again.
func TestAppendFailureRecovers(t *testing.T) {
	d := newDomain(t, 1, 3600)
	nd := d.dtas[0]
	d.issue(nd, "/v1/shares/client", d.ticket(ticket.KindClient, newID(t, "before@example.com")))

	tiles := filepath.Join(nd.dir, "log", "tile")
	if err := os.Rename(tiles, tiles+".away"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tiles, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tk := d.ticket(ticket.KindClient, newID(t, "during@example.com"))
	if code, _, e := post(t, nd.url, "/v1/shares/client", "application/json", ticketBody(tk)); code != http.StatusServiceUnavailable || e["code"] != "log_unavailable" {
		t.Fatalf("with the log broken: %d %v, want 503 log_unavailable", code, e)
	}
	if code, body := readyz(t, nd); code != http.StatusServiceUnavailable {
		t.Fatalf("readyz after a failed append: %d %s", code, body)
	}
	failedAt := nd.svc.storageFailed.Load()
	// Past the first recovery attempt, which fails too: still pending.
	time.Sleep(recoveryBackoff + 200*time.Millisecond)
	if code, _, e := post(t, nd.url, "/v1/shares/client", "application/json", ticketBody(tk)); code != http.StatusServiceUnavailable || e["code"] != "retry_later" {
		t.Fatalf("retry with the log still broken: %d %v, want 503 retry_later", code, e)
	}
	if nd.svc.storageFailed.Load() <= failedAt {
		t.Fatal("a failed recovery did not renew the storage failure /readyz reports")
	}
	// As if the failure window had passed: not ready while the records wait.
	nd.svc.storageFailed.Store(time.Now().Add(-storageFailureWindow).UnixNano())
	if code, body := readyz(t, nd); code != http.StatusServiceUnavailable || !strings.Contains(body, "wait for their recovery") {
		t.Fatalf("readyz while the recovery keeps failing: %d %s", code, body)
	}

	if err := os.Remove(tiles); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tiles+".away", tiles); err != nil {
		t.Fatal(err)
	}
	var r *wire.DTAResponse
	for deadline := time.Now().Add(10 * time.Second); r == nil; {
		code, resp, e := post(t, nd.url, "/v1/shares/client", "application/json", ticketBody(tk))
		switch {
		case code == http.StatusOK:
			r = resp
		case code != http.StatusServiceUnavailable || e["code"] != "retry_later":
			t.Fatalf("retry after the log was mended: %d %v", code, e)
		case time.Now().After(deadline):
			t.Fatal("the ticket is still pending 10 s after the log was mended")
		default:
			time.Sleep(100 * time.Millisecond)
		}
	}
	// The recovery completes the records before it is done (the log's size read,
	// the state cleared): the DTA turns ready just after the ticket is answered.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		code, body := readyz(t, nd)
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz 5 s after the recovery: %d %s", code, body)
		}
	}
	d.issue(nd, "/v1/shares/client", d.ticket(ticket.KindClient, newID(t, "after@example.com")))

	entries := logEntries(t, nd.svc)
	var at []int
	for i, e := range entries {
		if e.TicketSHA256 == sha256Hex([]byte(tk)) {
			at = append(at, i)
		}
	}
	if len(entries) != 3 || len(at) != 1 || uint64(at[0]) != r.Shares[0].Promise.Index {
		t.Fatalf("log of %d entries, the retried ticket's at %v, promised at %d; want 3 entries, one of them the ticket's at its promise",
			len(entries), at, r.Shares[0].Promise.Index)
	}
}

// readyz returns the status and body of nd's /readyz.
func readyz(t *testing.T, nd *node) (int, string) {
	t.Helper()
	resp, err := http.Get(nd.url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestCommitFailureNotReady: a round whose state database transaction fails answers
// its issuances with the error and turns /readyz to 503, as a failed append does:
// every issuance fails while the database does, whatever the writability probe of
// the log directory says.
func TestCommitFailureNotReady(t *testing.T) {
	d := newDomain(t, 1, 3600)
	nd := d.dtas[0]
	if code, body := readyz(t, nd); code != http.StatusOK {
		t.Fatalf("readyz at start: %d %s", code, body)
	}
	// Every write transaction fails from now on (the service's Close tolerates it).
	if err := nd.svc.store.close(); err != nil {
		t.Fatal(err)
	}
	rec := &record{TicketSHA256: "aa", Kind: ticket.KindServer, Entries: [][]byte{[]byte("entry")}, Slots: []uint64{0}}
	if err := nd.svc.commits.submit("commit-fails", rec, "", ""); err == nil {
		t.Fatal("a round with the state database closed succeeded")
	}
	if code, body := readyz(t, nd); code != http.StatusServiceUnavailable || !strings.Contains(body, "storage: writing an issuance failed at") {
		t.Fatalf("readyz after a failed round: %d %s", code, body)
	}
}
