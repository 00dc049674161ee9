package dta

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	rtmetrics "runtime/metrics"
	"sync"
	"sync/atomic"
	"time"

	"github.com/polyroot/polyroot/internal/translog"
)

// Group commit of issuances.
//
// Every issuance goes through three durable steps: its record is written pending to the
// state database, its entries are appended to the log, and the record is completed with
// their indices (exactly once: see recoverPending). Done per request, that is two
// database transactions (each with its syncs) per share. A goroutine in a file system
// call keeps its P until sysmon takes it back, which it rarely does for calls of a
// fraction of a millisecond; with one P, the syncs of one request stall the crypto of
// all the others, and the file system, not the crypto, sets the pace.
//
// The committer does the durable steps for groups of issuances instead. Requests hand it
// their records and wait; one goroutine runs a round when the group is full, when its
// oldest member has waited the group window, or as soon as the Ps are about to run out
// of work (see nearlyIdle): more members can only come from goroutines that are
// running or runnable, and once there are no more of those than twice the Ps, waiting
// for the last of them would leave the Ps idle during the whole round (its syncs, the
// log's batch timer), while starting now lets them run during the round's waits and
// join the next group. Under light load a request therefore gets its round at once; under heavy load
// the groups grow by themselves (up to the window), and with them the number of
// issuances that share each round's syncs. The round:
//
//  1. one database transaction, synced, writes the group's records pending (with its
//     revocations), each naming the round and the place of its entries among the
//     round's (record.Round, Offset), and completes the previous rounds;
//  2. the group's entries go to the log together, sequenced in one batch, and the
//     round waits until they are durable;
//  3. every record of the group gets its indices and the waiting requests answer.
//
// Step 1 of a round comes before step 2 of the same round, so a record is always on
// disk, pending, before its entries can be in the log: recovery relies on that. The
// log gives a round's entries consecutive indices, so a round is completed by one small
// key, the index of its first entry (bucketRounds), not by writing each of its records
// again: every record is written once, and the random-key puts and page writes of the
// state database are halved. (Should the indices not be consecutive, the round's
// records are completed one by one, as recovery does.) The completion is written by
// the next round's transaction (or, when no new group comes, alone after one window).
// Until then the records live in memory (done)
// and a retried ticket is answered from there; a crash before the completion is written
// leaves the record pending on disk, and recovery finds its entries in the log, as it
// does for a crash between steps 1 and 2. Whatever the crash point, a ticket's entries
// are appended at most once in a running process and recovery appends only those it
// does not find.
//
// A failed append (a full disk, an I/O error) leaves its round's records pending, and
// their tickets are answered "retry later". The loop then runs the same recovery by
// itself, before its next round, first after recoveryBackoff and then backing off up
// to maxRecoveryBackoff while it fails: once the log takes entries again, the tickets
// of the failed round are answered without a restart. Recovery runs in the loop, so no
// round appends while it scans and appends. Until it succeeds, /readyz answers 503
// (ready.go), as it does for a while after any failure of a round or a recovery.
type committer struct {
	store   *store
	log     *translog.Log
	logger  *slog.Logger
	window  time.Duration
	maxSize int
	logSize *atomic.Uint64                  // raised past every appended entry
	failed  *atomic.Int64                   // when a round or a recovery last failed (Unix ns), 0 once recovered
	recover func(ctx context.Context) error // finishes the pending records (Service.recoverPending)

	kick    chan struct{} // wakes the loop (buffered, one pending wake-up)
	sched   []rtmetrics.Sample
	stopped chan struct{} // closed when the loop has ended

	mu      sync.Mutex
	queue   []*submission // waiting for the next round
	oldest  time.Time     // when queue[0] arrived
	done    map[string]*record
	unsaved []completion // of records in done, not yet written
	closing bool
	last    time.Time // end of the last round
	// After a failed append: records are pending on disk until recover succeeds; the
	// next attempt is at retryAt, backoff after the previous one.
	needRecovery bool
	retryAt      time.Time
	backoff      time.Duration
}

// The first retry of a failed append's recovery, and the longest wait between two.
const (
	recoveryBackoff    = 500 * time.Millisecond
	maxRecoveryBackoff = 30 * time.Second
)

// A completion is what the next transaction writes for a round whose entries are in
// the log: normally one roundDone for all its records; records written one by one only
// if the log did not give the round consecutive indices.
type completion struct {
	round   roundDone
	records []storePut // nil when round completes them
	puts    []storePut // the round's records, in done until the completion is written
}

// A submission is one issuance waiting for a round. subject, if not empty, is the
// idhash whose revocation refuses it (client and permit shares).
type submission struct {
	storePut
	subject string
	err     error
	ready   chan struct{}
}

// errAppend wraps a failure of the log append: the records of the round stay pending.
type errAppend struct{ err error }

func (e *errAppend) Error() string { return "dta: log append: " + e.err.Error() }
func (e *errAppend) Unwrap() error { return e.err }

var errClosing = errors.New("dta: shutting down")

// newCommitter starts the committer of s's issuances (its store, log, logger, log
// size, storage failures and recovery).
func newCommitter(s *Service, window time.Duration, maxSize int) *committer {
	c := &committer{store: s.store, log: s.log, logger: s.cfg.Logger, window: window, maxSize: maxSize,
		logSize: &s.logSize, failed: &s.storageFailed, recover: s.recoverPending,
		kick: make(chan struct{}, 1), stopped: make(chan struct{}), done: map[string]*record{}, last: time.Now(),
		sched: []rtmetrics.Sample{{Name: "/sched/goroutines/running:goroutines"}, {Name: "/sched/goroutines/runnable:goroutines"}}}
	go c.run()
	return c
}

// submit records rec (pending, then complete) and appends its entries, in the next
// round; revoke, if not empty, is marked revoked in the same transaction. If subject
// (an idhash) is revoked when the round starts, or by a revocation of the same round,
// nothing is recorded and submit returns errRevoked. It returns once the entries are
// durable in the log, with rec.Indices set, or with the error of the round (an
// *errAppend if the record was written but the append failed).
func (c *committer) submit(nonce string, rec *record, revoke, subject string) error {
	s := &submission{storePut: storePut{nonce: nonce, rec: rec, revoke: revoke}, subject: subject, ready: make(chan struct{})}
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return errClosing
	}
	c.queue = append(c.queue, s)
	if len(c.queue) == 1 {
		c.oldest = time.Now()
	}
	c.mu.Unlock()
	c.wake()
	// Once queued, the issuance is carried out whatever happens to the request: the
	// caller waits for the outcome so that a retry finds it.
	<-s.ready
	return s.err
}

// lookup returns the record of nonce if it was completed by a round but is not yet
// completed on disk.
func (c *committer) lookup(nonce string) *record {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.done[nonce]
}

// close finishes the queued issuances, writes the outstanding completions and stops the
// loop. Later submissions fail with errClosing.
func (c *committer) close() {
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	c.wake()
	<-c.stopped
}

// idlePoll is how often a waiting group checks whether the Ps are running out of work.
const idlePoll = 250 * time.Microsecond

// nearlyIdle reports whether the running and runnable goroutines, the caller included,
// are no more than twice the Ps (runtime/metrics; cheap: it counts run queues under the
// scheduler lock): the caller and, for each P, at most one goroutine more, whose work
// fills the P while the round waits. Goroutines waiting on the network or in a syscall
// without a P are not counted: a request still on its way may miss the group and wait
// for the next one.
func (c *committer) nearlyIdle() bool {
	rtmetrics.Read(c.sched)
	var n uint64
	for _, s := range c.sched {
		if s.Value.Kind() == rtmetrics.KindUint64 {
			n += s.Value.Uint64()
		}
	}
	return n <= 2*uint64(runtime.GOMAXPROCS(0))
}

func (c *committer) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *committer) run() {
	defer close(c.stopped)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		act, wait, exit := c.next()
		if exit {
			return
		}
		if act {
			c.round()
			continue
		}
		if wait > 0 {
			timer.Reset(wait)
		}
		select {
		case <-c.kick:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// next decides whether to run a round now, or how long to wait (0: until woken).
func (c *committer) next() (act bool, wait time.Duration, exit bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.needRecovery && !c.closing {
		untilRetry := time.Until(c.retryAt)
		if untilRetry <= 0 {
			return true, 0, false // a round, maybe without a group, runs the recovery
		}
		defer func() {
			if !act && !exit && (wait == 0 || wait > untilRetry) {
				wait = untilRetry
			}
		}()
	}
	switch {
	case len(c.queue) >= c.maxSize || len(c.queue) > 0 && c.closing:
		return true, 0, false
	case len(c.queue) > 0:
		if wait = c.window - time.Since(c.oldest); wait <= 0 || c.nearlyIdle() {
			return true, 0, false
		}
		// Look again soon: no event tells the loop that the others have stopped.
		return false, min(wait, idlePoll), false
	case len(c.unsaved) > 0:
		// Completions alone: after one window without a new group to carry them.
		if wait = c.window - time.Since(c.last); wait <= 0 || c.closing {
			return true, 0, false
		}
		return false, wait, false
	case c.closing:
		return false, 0, true
	}
	return false, 0, false
}

// round runs the three steps for the queued group (see committer).
func (c *committer) round() {
	c.mu.Lock()
	group, completions := c.queue, c.unsaved
	c.queue, c.unsaved = nil, nil
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.last = time.Now()
		c.mu.Unlock()
	}()
	c.recoverIfDue()

	// The group's records, pending, name the round and where their entries will be
	// among the round's: if the log gives the round consecutive indices, one small
	// completion per round (bucketRounds) completes them all, and no record is written
	// twice.
	group = c.refuseRevoked(group)
	var round uint64
	var leaves [][]byte
	pending := make([]storePut, len(group))
	if len(group) > 0 {
		round = c.store.newRound()
	}
	for i, s := range group {
		s.rec.Round, s.rec.Offset = round, uint64(len(leaves))
		leaves = append(leaves, s.rec.Entries...)
		pending[i] = s.storePut
	}
	var records []storePut
	var rounds []roundDone
	for _, d := range completions {
		if d.records != nil {
			records = append(records, d.records...)
		} else {
			rounds = append(rounds, d.round)
		}
	}
	if err := c.store.commitRound(round, pending, records, rounds); err != nil {
		c.failed.Store(time.Now().UnixNano()) // for /readyz: every issuance fails while this does
		c.mu.Lock()
		closing := c.closing
		if !closing {
			c.unsaved = append(completions, c.unsaved...) // kept in memory; written by a later round
		}
		c.mu.Unlock()
		switch {
		case closing && len(completions) > 0:
			// No later round: retrying at once would spin until the process is
			// killed. The records stay pending on disk, and the next start's recovery
			// finds their entries in the log and completes them.
			c.logger.Error("writing completed issuance records failed at shutdown; the next start completes them", "rounds", len(completions), "err", err)
		case len(group) == 0:
			c.logger.Error("writing completed issuance records failed; retrying with the next round", "rounds", len(completions), "err", err)
		}
		finish(group, err)
		return
	}
	if len(completions) > 0 {
		c.mu.Lock()
		for _, d := range completions {
			for _, p := range d.puts {
				if c.done[p.nonce] == p.rec {
					delete(c.done, p.nonce)
				}
			}
		}
		c.mu.Unlock()
	}
	if len(group) == 0 {
		return
	}

	indices, err := c.log.AppendAll(context.Background(), leaves)
	if err == nil && len(indices) != len(leaves) {
		err = fmt.Errorf("%d indices for %d entries", len(indices), len(leaves))
	}
	if err != nil {
		c.failed.Store(time.Now().UnixNano())
		c.mu.Lock()
		if !c.needRecovery {
			c.needRecovery, c.backoff = true, recoveryBackoff
			c.retryAt = time.Now().Add(c.backoff)
		}
		c.mu.Unlock()
		finish(group, &errAppend{err})
		return
	}
	done, top := completeRound(round, group, indices)
	raiseTo(c.logSize, top)
	c.mu.Lock()
	for _, s := range group {
		c.done[s.nonce] = s.rec
	}
	c.unsaved = append(c.unsaved, done)
	c.mu.Unlock()
	finish(group, nil)
}

// recoverIfDue runs the recovery of a failed append's records if one is due, and
// schedules the next attempt if it fails.
func (c *committer) recoverIfDue() {
	c.mu.Lock()
	due := c.needRecovery && !c.closing && !time.Now().Before(c.retryAt)
	c.mu.Unlock()
	if !due {
		return
	}
	ctx := context.Background()
	err := c.recover(ctx)
	var size uint64
	if err == nil {
		size, err = c.log.Size(ctx)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.failed.Store(time.Now().UnixNano())
		c.backoff = min(2*c.backoff, maxRecoveryBackoff)
		c.retryAt = time.Now().Add(c.backoff)
		c.logger.Error("finishing the issuances of a failed log append failed; retrying", "in", c.backoff.String(), "err", err)
		return
	}
	raiseTo(c.logSize, size)
	c.needRecovery = false
	c.failed.Store(0)
}

// recovering reports whether records of a failed append are pending, their recovery
// not yet done: until it is, their tickets are answered "retry later".
func (c *committer) recovering() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.needRecovery
}

// refuseRevoked answers errRevoked to the members of group whose subject is revoked,
// on disk or by a member of group, and returns the others. The caller checked before
// computing the share, but a revocation may have been acknowledged since; this check
// is the one that counts. It is sound because only rounds write revocations, one
// round at a time: every revocation acknowledged before this round began is on disk.
func (c *committer) refuseRevoked(group []*submission) []*submission {
	var subjects []string
	var revokedHere map[string]bool // a nil map reads as false: most rounds revoke nothing
	for _, s := range group {
		if s.subject != "" {
			subjects = append(subjects, s.subject)
		}
		if s.revoke != "" {
			if revokedHere == nil {
				revokedHere = map[string]bool{}
			}
			revokedHere[s.revoke] = true
		}
	}
	if len(subjects) == 0 {
		return group
	}
	onDisk, err := c.store.revokedAmong(subjects)
	kept := group[:0:0]
	for _, s := range group {
		switch {
		case s.subject == "":
			kept = append(kept, s)
		case err != nil:
			finish([]*submission{s}, err)
		case revokedHere[s.subject] || onDisk[s.subject]:
			finish([]*submission{s}, errRevoked)
		default:
			kept = append(kept, s)
		}
	}
	return kept
}

// completeRound gives each record of the group its indices (the log's answer for the
// round's entries, in order) and returns the round's completion and the log size past
// its entries. The completion is the round's first index if the indices are
// consecutive, as the log gives one batch; otherwise the records one by one.
func completeRound(round uint64, group []*submission, indices []uint64) (done completion, top uint64) {
	consecutive := len(indices) > 0
	for j, i := range indices {
		consecutive = consecutive && i == indices[0]+uint64(j)
		top = max(top, i+1)
	}
	if consecutive {
		done.round = roundDone{round: round, first: indices[0]}
	}
	for _, s := range group {
		n := len(s.rec.Entries)
		s.rec.Indices, indices = indices[:n:n], indices[n:]
		if s.rec.NotAfter <= 0 {
			done.round.notAfter = math.MaxInt64 // a record prune never forgets: keep the round
		} else {
			done.round.notAfter = max(done.round.notAfter, s.rec.NotAfter)
		}
		done.puts = append(done.puts, storePut{nonce: s.nonce, rec: s.rec})
	}
	if !consecutive {
		done.records = done.puts
	}
	return done, top
}

func finish(group []*submission, err error) {
	for _, s := range group {
		s.err = err
		close(s.ready)
	}
}
