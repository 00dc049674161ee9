package dta

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/polyroot/polyroot/internal/ticket"
	"github.com/polyroot/polyroot/internal/translog"
	"github.com/polyroot/polyroot/internal/wire"
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
