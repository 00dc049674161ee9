package server

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/pairing"
)

// work is what one login cost the server: pairings run with sQ, and bbolt's write
// statistics (committed write transactions' page writes).
type work struct {
	pairings uint64
	pages    int64
	records  int // keys in the failures bucket
}

func (h *harness) work(t *testing.T) work {
	t.Helper()
	st := h.srv.store.(*boltStore).db.Stats()
	w := work{pairings: h.srv.verifier.Key.Pairings(), pages: st.TxStats.GetWrite()}
	if err := h.srv.store.(*boltStore).db.View(func(tx *bolt.Tx) error {
		w.records = tx.Bucket(bucketFailures).Stats().KeyN
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return w
}

// TestFailurePathsAlike: a wrong PIN, an unknown idhash, a revoked and an expired
// identity, and a blocked identity with the right or a wrong PIN all get the same
// answer and cost the same work: two pairings (the right PIN of a blocked identity
// too) and one synced write of a failure record, also for an idhash that is not
// enrolled.
func TestFailurePathsAlike(t *testing.T) {
	e := newEnv(t, 0)
	frozen := time.Now()
	var clk clock
	h := e.start(t, t.TempDir(), false, func(c *Config) {
		c.Now = func() time.Time { return frozen.Add(time.Duration(clk.off.Load())) }
	})
	wrong := h.enrol(t, wire.EnrolmentRequest{ID: "wrong"}, "1111")
	revoked := h.enrol(t, wire.EnrolmentRequest{ID: "revoked"}, "2222")
	expired := h.enrol(t, wire.EnrolmentRequest{ID: "expired", TTL: 1}, "3333")
	blocked := h.enrol(t, wire.EnrolmentRequest{ID: "blocked"}, "4444")
	unknown := *wrong
	unknown.id = pairing.IDHash{0xde, 0xad}
	if st, body := do(t, h.http, "POST", h.url+"/v1/admin/revoke", testAdmin, wire.IdentityRequest{ID: "revoked"}, nil); st != 200 {
		t.Fatalf("revoke: %d %s", st, body)
	}
	for range 3 {
		h.login(t, blocked, "0000", loginOpts{})
	}
	clk.advance(2 * time.Second) // past the temporary identity's end

	kinds := []struct {
		name string
		c    *tclient
		pin  string
	}{
		{"wrong-pin", wrong, "0000"},
		{"unknown", &unknown, "1111"},
		{"revoked", revoked, "2222"},
		{"expired", expired, "3333"},
		{"blocked-right-pin", blocked, "4444"},
		{"blocked-wrong-pin", blocked, "0000"},
	}
	bodies := map[string][]byte{}
	var pages []int64
	for _, k := range kinds {
		before := h.work(t)
		res := h.login(t, k.c, k.pin, loginOpts{})
		after := h.work(t)
		if res.status != 401 || res.failure.Code != "login_failed" {
			t.Fatalf("%s: %d %s", k.name, res.status, res.body)
		}
		bodies[k.name] = res.body
		if n := after.pairings - before.pairings; n != 2 {
			t.Errorf("%s: %d pairings, want 2", k.name, n)
		}
		if n := after.records - before.records; n > 1 {
			t.Errorf("%s: %d failure records added", k.name, n)
		}
		pages = append(pages, after.pages-before.pages)
	}
	for i, n := range pages {
		if n == 0 || n != pages[0] {
			t.Errorf("%s: %d pages written, %s %d: every failure must cost one synced write alike", kinds[i].name, n, kinds[0].name, pages[0])
		}
	}
	for _, name := range []string{"unknown", "revoked", "expired"} {
		if !bytes.Equal(bodies[name], bodies["wrong-pin"]) {
			t.Errorf("%s answers %s, a first wrong PIN %s", name, bodies[name], bodies["wrong-pin"])
		}
	}
	if !bytes.Equal(bodies["blocked-right-pin"], bodies["blocked-wrong-pin"]) || !strings.Contains(string(bodies["blocked-wrong-pin"]), `"tries_left":0`) {
		t.Errorf("blocked: right PIN %s, wrong PIN %s", bodies["blocked-right-pin"], bodies["blocked-wrong-pin"])
	}
}

// TestDailyFailureBudget: failures within 24 h block the identity at the daily budget
// whatever the successes in between, with a metric and a log line; the block survives
// a restart and the end of the window, and lasts until the registrar unblocks it.
// Failures of an ended window do not count.
func TestDailyFailureBudget(t *testing.T) {
	e := newEnv(t, 0)
	frozen := time.Now()
	var clk clock
	h := e.start(t, t.TempDir(), false, func(c *Config) {
		c.Now = func() time.Time { return frozen.Add(time.Duration(clk.off.Load())) }
		c.MaxFailuresPerDay = 4
	})
	c := h.enrol(t, wire.EnrolmentRequest{ID: "dora"}, "1234")
	step := func(pin string, status, tries int) {
		t.Helper()
		res := h.login(t, c, pin, loginOpts{})
		if res.status != status || (status == 401 && res.failure.TriesLeft != tries) {
			t.Fatalf("PIN %s: %d %s, want %d with tries_left %d", pin, res.status, res.body, status, tries)
		}
	}
	// MaxFailures is 3: two failures in a row never block, but the fourth of the day does.
	step("0000", 401, 2)
	step("0000", 401, 1)
	step("1234", 200, 0)
	step("0000", 401, 1) // 3 of 4 today: one try left, whatever the consecutive count
	step("1234", 200, 0)
	if strings.Contains(h.metrics(t), "polyroot_server_failure_budget_exceeded_total 1") {
		t.Fatal("budget reported exceeded too early")
	}
	step("0000", 401, 0) // the fourth: blocked
	step("1234", 401, 0)
	if m := h.metrics(t); !strings.Contains(m, "polyroot_server_failure_budget_exceeded_total 1") {
		t.Errorf("metric not incremented:\n%s", m)
	}
	if l := logBuf.String(); !strings.Contains(l, "daily login failure budget used up") || !strings.Contains(l, hex.EncodeToString(c.id[:])) {
		t.Error("no WARN line naming the idhash")
	}
	h.restart(t)
	step("1234", 401, 0)
	clk.advance(25 * time.Hour)
	step("1234", 401, 0) // still held: only the registrar lifts it
	h.unblockBy(t, "dora")
	step("1234", 200, 0)

	// A fresh budget after the unblock; failures of an ended window are forgotten.
	step("0000", 401, 2)
	step("1234", 200, 0)
	step("0000", 401, 2)
	step("1234", 200, 0)
	step("0000", 401, 1) // 3 of 4
	clk.advance(24 * time.Hour)
	step("0000", 401, 1) // a new window: 1 of 4, 2 in a row
	step("1234", 200, 0)
	h.restart(t)
	step("0000", 401, 2) // the window survives the restart: 2 of 4
}

// TestUnknownIDHashesBounded: failures of idhashes that are not enrolled write one of
// the 256 decoy records, so garbage idhashes do not grow the database past them;
// loading skips them.
func TestUnknownIDHashesBounded(t *testing.T) {
	e := newEnv(t, 0)
	h := e.start(t, t.TempDir(), false)
	c := h.enrol(t, wire.EnrolmentRequest{ID: "una"}, "1234")
	h.login(t, c, "0000", loginOpts{})
	before := h.work(t)
	ghost := *c
	for i := range 40 {
		binary.BigEndian.PutUint32(ghost.id[:], uint32(i)+1)
		if res := h.login(t, &ghost, "1234", loginOpts{}); res.status != 401 || res.failure.TriesLeft != 2 {
			t.Fatalf("unknown %d: %d %s", i, res.status, res.body)
		}
	}
	if after := h.work(t); after.records <= before.records || after.records > before.records+40 {
		t.Fatalf("failure records: %d before, %d after 40 unknown idhashes; want at most one decoy record each", before.records, after.records)
	}
	h.restart(t)
	if n := h.srv.fails.count(ghost.id); n != 0 {
		t.Fatalf("the decoy record was loaded as a count: %d", n)
	}
	if n := h.srv.fails.count(c.id); n != 1 {
		t.Fatalf("the enrolled identity's count after restart: %d", n)
	}
}

// TestDecoyKeys: the decoy record of an unknown idhash is one of 256 decoy keys, the
// same for the same idhash, spread over them by a keyed hash that differs between
// processes (so no outsider can aim floods at the record a given idhash uses).
func TestDecoyKeys(t *testing.T) {
	f, g := newFailures(3, 10, nil), newFailures(3, 10, nil)
	used := map[string]bool{}
	same := 0
	for i := range 4096 {
		var id pairing.IDHash
		binary.BigEndian.PutUint32(id[:], uint32(i))
		k := f.key(id, false)
		if !isDecoyKey(k) || string(k) != string(f.key(id, false)) {
			t.Fatalf("idhash %d: decoy key %x", i, k)
		}
		if string(k) == string(g.key(id, false)) {
			same++
		}
		used[string(k)] = true
		if string(f.key(id, true)) != string(id[:]) {
			t.Fatalf("an enrolled idhash's key is not the idhash")
		}
	}
	if len(used) < 250 || same > 64 {
		t.Fatalf("4096 idhashes use %d decoy keys; %d the same in two processes", len(used), same)
	}
	var id pairing.IDHash
	id[0] = 1
	if isDecoyKey(id[:]) || isDecoyKey(decoyKeyAt(7)[:31]) || !isDecoyKey(decoyKeyAt(255)) {
		t.Fatal("isDecoyKey")
	}
}

// TestFailureVerdicts: a success or a neutral outcome (the right PIN on another
// channel) stands only while the identity is not blocked; on a blocked identity both
// are counted failures, so that neither answer tells the PIN was right.
func TestFailureVerdicts(t *testing.T) {
	f := newFailures(3, 10, nil)
	now := time.Now()
	open := failRecord{Count: 1, Day: 1, DayStart: now}
	blocked := failRecord{Count: 3, Day: 3, DayStart: now}
	held := failRecord{Day: 10, DayStart: now, Held: true}
	for _, tc := range []struct {
		name     string
		r        failRecord
		outcome  int
		admitted bool
		ok, neut bool
		count    int
	}{
		{"ok/success", open, outcomeSuccess, true, true, false, 0},
		{"ok/neutral-not-counted", open, outcomeNeutral, true, false, true, 1},
		{"fail/failure-counted", open, outcomeFailure, true, false, false, 2},
		{"fail/success-blocked-meanwhile", blocked, outcomeSuccess, true, false, false, 4},
		{"fail/neutral-blocked-meanwhile", blocked, outcomeNeutral, true, false, false, 4},
		{"fail/neutral-held", held, outcomeNeutral, true, false, false, 1},
		{"fail/neutral-not-admitted", open, outcomeNeutral, false, false, false, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next, v := f.apply(tc.r, tc.outcome, tc.admitted, now)
			if v.ok != tc.ok || v.neutral != tc.neut || next.Count != tc.count {
				t.Fatalf("apply: ok=%v neutral=%v count=%d, want ok=%v neutral=%v count=%d", v.ok, v.neutral, next.Count, tc.ok, tc.neut, tc.count)
			}
		})
	}
}

// TestAdmitWaitsForOtherReplicas: a replica whose tries left are all being checked on
// another replica waits for one of those checks to end (it polls the store), and a
// blocked identity is refused without a slot.
func TestAdmitWaitsForOtherReplicas(t *testing.T) {
	a, b := openBoltReplicas(t)
	now := suiteTime()
	id := suiteEnrol(t, a, "grace", "CODE", now)
	const max = 2
	fa, fb := newFailures(max, 10, a), newFailures(max, 10, b)
	for range max {
		if ok, err := fa.admit(t.Context(), id, true, now); !ok || err != nil {
			t.Fatalf("admit on A: %v %v", ok, err)
		}
	}
	admitted := make(chan error, 1)
	go func() {
		ok, err := fb.admit(t.Context(), id, true, now)
		if err == nil && !ok {
			err = errors.New("not admitted")
		}
		admitted <- err
	}()
	select {
	case err := <-admitted:
		t.Fatalf("B admitted a check while A held every try left: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	if _, err := fa.done(id, true, true, outcomeSuccess, now); err != nil { // a try is free again
		t.Fatal(err)
	}
	select {
	case err := <-admitted:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("B still waits after A's check ended")
	}
	// The two checks in flight fail: blocked. Nothing is admitted, on either replica.
	fa.done(id, true, true, outcomeFailure, now)
	fb.done(id, true, true, outcomeFailure, now)
	for _, f := range []*failures{fa, fb} {
		if ok, err := f.admit(t.Context(), id, true, now); ok || err != nil {
			t.Fatalf("a blocked identity admitted: %v %v", ok, err)
		}
	}
}

// failingWrites is a store whose failure records can be read but, while failing is
// set, not written: a full disk, an I/O error, a database lost during the write.
type failingWrites struct {
	stateStore
	failing *atomic.Bool
}

func (s failingWrites) updateFailures(key []byte, next func(failRecord) failRecord) (failRecord, error) {
	if s.failing.Load() {
		return failRecord{}, errors.New("injected: the write failed")
	}
	return s.stateStore.updateFailures(key, next)
}

// TestFailureWriteFailed: while failure records cannot be written, a wrong PIN
// answers an error (nothing the caller could take for a verdict) and so does every
// later try of that identity here, the right PIN included, without a check; once
// writes work again, the failures that could not be written count.
func TestFailureWriteFailed(t *testing.T) {
	e := newEnv(t, 0)
	h := e.start(t, t.TempDir(), false)
	c := h.enrol(t, wire.EnrolmentRequest{ID: "erin"}, "1234")
	other := h.enrol(t, wire.EnrolmentRequest{ID: "fred"}, "1234")
	var failing atomic.Bool
	h.srv.fails.store = failingWrites{h.srv.fails.store, &failing}
	failing.Store(true)
	for i, pin := range []string{"0000", "1111", "1234", "2222", "1234"} {
		if res := h.login(t, c, pin, loginOpts{}); res.status != http.StatusInternalServerError {
			t.Fatalf("try %d (PIN %s) while writes fail: %d %s, want 500", i, pin, res.status, res.body)
		}
	}
	// Nor do right PINs sent at once: none starts a check while the failure is unwritten.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if res := h.login(t, c, "1234", loginOpts{}); res.status != http.StatusInternalServerError {
				t.Errorf("a concurrent right PIN while writes fail: %d %s, want 500", res.status, res.body)
			}
		})
	}
	wg.Wait()
	// Another identity with a clean record needs no write to log in.
	if res := h.login(t, other, "1234", loginOpts{}); res.status != http.StatusOK {
		t.Fatalf("another identity: %d %s", res.status, res.body)
	}
	failing.Store(false)
	// The first wrong PIN was counted; the rest were refused before any check.
	if res := h.login(t, c, "1234", loginOpts{}); res.status != http.StatusOK {
		t.Fatalf("right PIN once writes work: %d %s", res.status, res.body)
	}
	if r, err := h.srv.store.failures(c.id[:]); err != nil || r.Day != 1 || r.Count != 0 {
		t.Fatalf("record %+v, %v: want the unwritten failure in the day's count", r, err)
	}
}

// TestFailureWriteFailedConcurrent: while failure records cannot be written, checks of
// one identity admitted at once give no verdict: the wrong PINs' failures cannot be
// written (errors), and the right PIN, whenever it ends, writes its record too while
// other checks are in flight or failures unstored, so it fails as well (else, on a
// clean record, it would need no write and stand: one verdict per check). Once writes
// work, the unwritten failures count.
func TestFailureWriteFailedConcurrent(t *testing.T) {
	for _, tc := range []struct {
		name  string
		order []int // outcomes of the three checks admitted at once, in the order they end
	}{
		{"fail/success-first-others-in-flight", []int{outcomeSuccess, outcomeFailure, outcomeFailure}},
		{"fail/success-between", []int{outcomeFailure, outcomeSuccess, outcomeFailure}},
		{"fail/success-last-others-unstored", []int{outcomeFailure, outcomeFailure, outcomeSuccess}},
		{"fail/neutral-last-others-unstored", []int{outcomeFailure, outcomeFailure, outcomeNeutral}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, _ := openBoltReplicas(t)
			now := suiteTime()
			id := suiteEnrol(t, st, "erin", "CODE", now)
			var failing atomic.Bool
			f := newFailures(3, 10, failingWrites{st, &failing})
			failing.Store(true)
			for i := range tc.order {
				if ok, err := f.admit(t.Context(), id, true, now); !ok || err != nil {
					t.Fatalf("admit %d: %v %v", i, ok, err)
				}
			}
			for i, outcome := range tc.order {
				if v, err := f.done(id, true, true, outcome, now); err == nil {
					t.Fatalf("check %d (outcome %d) while writes fail: verdict %+v, want an error", i, outcome, v)
				}
			}
			failing.Store(false)
			if ok, err := f.admit(t.Context(), id, true, now); !ok || err != nil { // writes the unstored
				t.Fatalf("admit once writes work: %v %v", ok, err)
			}
			if v, err := f.done(id, true, true, outcomeSuccess, now); !v.ok || err != nil {
				t.Fatalf("success once writes work: %+v %v", v, err)
			}
			if r, err := st.failures(id[:]); err != nil || r.Day != 2 || r.Count != 0 {
				t.Fatalf("record %+v, %v: want the two unwritten failures in the day's count", r, err)
			}
		})
	}
}
