package dta

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/polyroot/polyroot/internal/ticket"
)

// TestStorePrune: prune forgets exactly the completed records of tickets expired before
// the cutoff, in batches, and keeps pending records, live tickets, records without an
// expiry and revocations.
func TestStorePrune(t *testing.T) {
	st, err := openStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	now := time.Now()
	past, future := now.Add(-time.Hour).Unix(), now.Add(time.Hour).Unix()
	done := func(notAfter int64) *record {
		return &record{Kind: ticket.KindClient, Entries: [][]byte{{1}}, Indices: []uint64{7}, NotAfter: notAfter}
	}
	puts := []storePut{
		{nonce: "expired-1", rec: done(past)},
		{nonce: "expired-2", rec: done(past - 10)},
		{nonce: "expired-3", rec: done(past - 20), revoke: "idhash-r"},
		{nonce: "expired-pending", rec: &record{Kind: ticket.KindClient, Entries: [][]byte{{1}}, NotAfter: past - 30}},
		{nonce: "live", rec: done(future)},
		{nonce: "no-expiry", rec: done(0)},
	}
	if err := st.commit(puts, nil); err != nil {
		t.Fatal(err)
	}
	n1, err := st.prune(now, 2)
	if err != nil || n1 != 2 {
		t.Fatalf("first batch: %d, %v; want 2", n1, err)
	}
	n2, err := st.prune(now, 2)
	if err != nil || n2 != 1 {
		t.Fatalf("second batch: %d, %v; want 1", n2, err)
	}
	if n, err := st.prune(now, 2); err != nil || n != 0 {
		t.Fatalf("third batch: %d, %v; want 0", n, err)
	}
	for _, tc := range []struct {
		nonce string
		kept  bool
	}{{"expired-1", false}, {"expired-2", false}, {"expired-3", false}, {"expired-pending", true}, {"live", true}, {"no-expiry", true}} {
		_, err := st.get(tc.nonce)
		if kept := err == nil; kept != tc.kept || err != nil && !errors.Is(err, errNoRecord) {
			t.Errorf("%s: kept %v (%v), want %v", tc.nonce, kept, err, tc.kept)
		}
	}
	if r, err := st.revoked("idhash-r"); err != nil || !r {
		t.Fatalf("the revocation went with its record: %v %v", r, err)
	}
	// The pending record goes once completed.
	completed := puts[3]
	completed.rec.Indices = []uint64{8}
	if err := st.commit(nil, []storePut{completed}); err != nil {
		t.Fatal(err)
	}
	if n, err := st.prune(now, 10); err != nil || n != 1 {
		t.Fatalf("after completion: %d, %v; want 1", n, err)
	}
}

// TestPruneExpiredTickets: a running DTA forgets a used nonce once its ticket has been
// expired for NonceRetention, and the ticket stays refused.
func TestPruneExpiredTickets(t *testing.T) {
	d := newDomain(t, 1, 3600)
	nd := d.dtas[0]
	d.stop(nd)
	var offset atomic.Int64
	d.start(nd, func(c *Config) {
		c.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
		c.NonceRetention, c.PruneInterval = time.Minute, 20*time.Millisecond
	})
	svc := nd.svc

	tk := d.ticket(ticket.KindClient, newID(t, "prune@example.com")) // expires in an hour
	d.issue(nd, "/v1/shares/client", tk)
	nonce := ticketNonce(t, d, tk)
	time.Sleep(100 * time.Millisecond) // several pruning rounds: a live ticket's nonce stays
	if _, err := svc.store.get(nonce); err != nil {
		t.Fatalf("the nonce of a live ticket was forgotten: %v", err)
	}
	if got := prunedMetric(t, nd); got != "0" {
		t.Fatalf("polyroot_dta_records_pruned_total = %s with only a live ticket", got)
	}

	offset.Store(int64(time.Hour + 2*time.Minute)) // expired for longer than the retention
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := svc.store.get(nonce); errors.Is(err, errNoRecord) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the record of an expired ticket was not pruned")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := prunedMetric(t, nd); got != "1" {
		t.Fatalf("polyroot_dta_records_pruned_total = %s, want 1", got)
	}
	code, _, e := post(t, nd.url, "/v1/shares/client", "application/json", ticketBody(tk))
	if code != http.StatusUnauthorized || e["code"] != "expired_ticket" {
		t.Fatalf("the pruned ticket again: %d %v", code, e)
	}
}

func ticketNonce(t *testing.T, d *domain, tk string) string {
	t.Helper()
	parsed, err := ticket.Verify(tk, d.bundle.RegistrarPublicKey(), d.bundle.Domain, ticket.KindClient, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return parsed.Nonce
}

// prunedMetric is the value of polyroot_dta_records_pruned_total in nd's metrics.
func prunedMetric(t *testing.T, nd *node) string {
	t.Helper()
	for _, line := range strings.Split(nd.metrics(t), "\n") {
		if v, ok := strings.CutPrefix(line, "polyroot_dta_records_pruned_total "); ok {
			return v
		}
	}
	return "absent"
}

// TestPruneRoundsAfterKeyRound: a round with a record that never expires (a key entry,
// logged at start-up, so among the first rounds) keeps its completion, and does not
// keep those of the later rounds whose records all expired and were pruned.
func TestPruneRoundsAfterKeyRound(t *testing.T) {
	st, err := openStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	now := time.Now()
	past, future := now.Add(-time.Hour).Unix(), now.Add(time.Hour).Unix()
	// round writes a round of one record and its completion, as the committer does.
	round := func(nonce string, notAfter int64) uint64 {
		t.Helper()
		r := st.newRound()
		s := &submission{storePut: storePut{nonce: nonce, rec: &record{Kind: ticket.KindClient, Entries: [][]byte{{1}}, Round: r, NotAfter: notAfter}}}
		if err := st.commitRound(r, []storePut{s.storePut}, nil, nil); err != nil {
			t.Fatal(err)
		}
		done, _ := completeRound(r, []*submission{s}, []uint64{r})
		if err := st.commitRound(0, nil, nil, []roundDone{done.round}); err != nil {
			t.Fatal(err)
		}
		return r
	}
	key := round("key/entry", 0)
	const expired = 50
	for i := range expired {
		round(fmt.Sprint("expired-", i), past)
	}
	live := round("live", future)
	round("expired-after-live", past)
	if n, err := st.prune(now, 1000); err != nil || n != expired+1 {
		t.Fatalf("prune: %d, %v; want %d records", n, err, expired+1)
	}
	var left []uint64
	st.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRounds).ForEach(func(k, _ []byte) error {
			left = append(left, binary.BigEndian.Uint64(k))
			return nil
		})
	})
	// The round after the live one waits for a later prune, as before.
	if fmt.Sprint(left) != fmt.Sprint([]uint64{key, live, live + 1}) {
		t.Fatalf("round completions left %v, want the key entry's %d, the live one's %d and the one after it", left, key, live)
	}
	for _, nonce := range []string{"key/entry", "live"} {
		if r, err := st.get(nonce); err != nil || r.pending() {
			t.Fatalf("%s after prune: %+v, %v", nonce, r, err)
		}
	}
}
