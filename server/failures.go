package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	mathrand "math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/polyroot/polyroot/internal/httpx"
	"github.com/polyroot/polyroot/pairing"
)

// maxUnknownCounts bounds the failure counts kept (in memory only) for idhashes that
// are not enrolled here.
const maxUnknownCounts = 100_000

// failureWindow is the window of the daily failure budget (Config.MaxFailuresPerDay).
const failureWindow = 24 * time.Hour

// failures counts login failures per idhash, twice: the consecutive failures, which
// a success resets and which block the identity at max; and the failures of the
// current 24 h window, which nothing but the registrar's unblock resets and which
// block the identity ("held") when they reach perDay, until the registrar unblocks
// it. Counts of enrolled identities live in the store, and every change is one atomic
// update there (stateStore.updateFailures) before the answer leaves, so replicas that
// share a store count exactly. Counts of unknown idhashes live in memory, bounded, and
// each of their failures updates a record of the same size under one of the store's
// decoy keys, so that both cost one synced write. It also bounds how many logins of
// one identity are verified at once: a verification is admitted only while the tries
// left exceed those in flight, here (flights, which wake the waiters) and on every
// replica sharing the store (a slot held in the store, stateStore.reserveTry), so
// parallel guesses cannot test more PINs than either limit allows.
type failures struct {
	max, perDay int
	store       stateStore
	decoySalt   [32]byte // keys the choice of decoy record (key)

	mu      sync.Mutex
	flights map[pairing.IDHash]*flight     // verifications in flight, by idhash
	unknown map[pairing.IDHash]*failRecord // idhashes not enrolled here
	order   []pairing.IDHash               // insertion order of unknown, for eviction
	// unstored counts the failures of enrolled identities whose write failed (a full
	// disk, a lost database). They are written before any further check of the
	// identity here, which is refused while that write fails: else, with a store
	// that reads but does not write, a wrong PIN would answer an error and count
	// nothing, and the right one (on a clean record, which needs no write) a token:
	// unlimited guesses, each told right or wrong.
	unstored map[pairing.IDHash]int
	flushing sync.Mutex // held while unstored failures are written
}

// A flight is the verifications of one idhash in flight in this process.
type flight struct {
	n     int
	wake  chan struct{} // closed when one ends
	slots [][16]byte    // the store's slots they hold (stateStore.reserveTry)
}

// trySlotTTL bounds the store slot of a check whose replica died before freeing it:
// a check takes a batch window and two pairings, far less.
const trySlotTTL = 30 * time.Second

// tryPoll and maxTryPoll are how long admit waits, first and at most (doubling, with
// jitter), before asking the store again for a slot that other replicas hold (their
// ends do not wake this process).
const (
	tryPoll    = 5 * time.Millisecond
	maxTryPoll = 100 * time.Millisecond
)

func newFailures(max, perDay int, st stateStore) *failures {
	f := &failures{max: max, perDay: perDay, store: st, flights: map[pairing.IDHash]*flight{},
		unknown: map[pairing.IDHash]*failRecord{}, unstored: map[pairing.IDHash]int{}}
	rand.Read(f.decoySalt[:])
	return f
}

// unknownLocked returns the in-memory record of an idhash that is not enrolled,
// creating it.
func (f *failures) unknownLocked(id pairing.IDHash) *failRecord {
	if r, ok := f.unknown[id]; ok {
		return r
	}
	for len(f.unknown) >= maxUnknownCounts && len(f.order) > 0 {
		delete(f.unknown, f.order[0])
		f.order = f.order[1:]
	}
	if len(f.order) > 2*maxUnknownCounts { // drop keys already evicted
		f.order = append([]pairing.IDHash(nil), f.order[len(f.order)-maxUnknownCounts:]...)
	}
	r := new(failRecord)
	f.unknown[id] = r
	f.order = append(f.order, id)
	return r
}

// dayCount returns the failures of r's window that is current at now.
func (r failRecord) dayCount(now time.Time) int {
	if r.DayStart.IsZero() || !now.Before(r.DayStart.Add(failureWindow)) {
		return 0
	}
	return r.Day
}

// triesLeft is how many failures r may still have before it is blocked.
func (f *failures) triesLeft(r failRecord, now time.Time) int {
	if r.Held {
		return 0
	}
	return max(0, min(f.max-r.Count, f.perDay-r.dayCount(now)))
}

// key is where id's record is stored: under id if it is enrolled, else under one of
// the decoy keys, chosen by a keyed hash of id, so that every idhash costs the same
// reads and writes and nobody can aim failures of garbage idhashes at the decoy
// record that a given unknown idhash uses.
func (f *failures) key(id pairing.IDHash, known bool) []byte {
	// SHA-256(salt ‖ id), a fixed-length keyed hash (no length extension to fear),
	// computed for enrolled idhashes too: the same work. It runs at every admission,
	// without allocating.
	var in [len(f.decoySalt) + len(id)]byte
	copy(in[copy(in[:], f.decoySalt[:]):], id[:])
	decoy := sha256.Sum256(in[:])[0]
	if known {
		return id[:]
	}
	return decoyKeyAt(decoy)
}

// record returns id's current record: from the store if it is enrolled, else from
// memory; the store is read either way, so that both cost one read.
func (f *failures) record(id pairing.IDHash, known bool) (failRecord, error) {
	r, err := f.store.failures(f.key(id, known))
	if err != nil || known {
		return r, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return *f.unknownLocked(id), nil
}

// admit waits until a verification of id may run: fewer are in flight, here and on the
// other replicas, than its tries left. It returns false if the identity is blocked
// (then nothing is in flight for the caller, who must still call done). Every idhash
// is admitted the same way, enrolled or not, so that waiting tells nothing; a blocked
// one still asks the store for a slot (of none), so that it costs the same round
// trips.
func (f *failures) admit(ctx context.Context, id pairing.IDHash, known bool, now time.Time) (bool, error) {
	if err := f.storeUnstored(id, now); err != nil { // none for an idhash not enrolled
		return false, err
	}
	left, err := f.place(ctx, id, known, now)
	if err != nil || left == 0 {
		if err == nil {
			err = f.touchSlot(id, known)
		}
		return false, err
	}
	// A place here: now a slot in the store, which other replicas' checks may hold.
	// The store counts the slots and then reads the tries left afresh (reserveTry):
	// left, read before, may be stale by failures stored since, whose checks then freed
	// their places and slots.
	wait, deadline := tryPoll, time.Now().Add(trySlotTTL)
	for {
		var slot [16]byte
		rand.Read(slot[:])
		ok, err := f.store.reserveTry(id, f.key(id, known), slot, f.leftOf(id, known, now), trySlotTTL)
		switch {
		case err != nil:
			f.land(id)
			return false, err
		case ok:
			f.mu.Lock()
			f.flights[id].slots = append(f.flights[id].slots, slot) // in flights while n > 0
			f.mu.Unlock()
			return true, nil
		case time.Now().After(deadline): // live checks elsewhere held them all along
			f.land(id)
			return false, errTriesBusy
		}
		select {
		case <-time.After(wait/2 + mathrand.N(wait/2)):
		case <-ctx.Done():
			f.land(id)
			return false, ctx.Err()
		}
		wait = min(2*wait, maxTryPoll)
		r, err := f.record(id, known)
		if err == nil {
			left = f.triesLeft(r, now)
		}
		if err != nil || left == 0 {
			f.land(id)
			if err == nil {
				err = f.touchSlot(id, known)
			}
			return false, err
		}
	}
}

// leftOf is the tries left of id given its stored record r (reserveTry): for an
// idhash not enrolled, r is its decoy record, read for the same work, and the count
// is the one in memory, read after r.
func (f *failures) leftOf(id pairing.IDHash, known bool, now time.Time) func(failRecord) int {
	return func(r failRecord) int {
		if !known {
			f.mu.Lock()
			r = *f.unknownLocked(id)
			f.mu.Unlock()
		}
		return f.triesLeft(r, now)
	}
}

// storeUnstored writes the failures of id whose write failed (unstored), if any. They
// stay counted in unstored until written, and one write goes at a time, so no check of
// id starts here while some are neither written nor refused.
func (f *failures) storeUnstored(id pairing.IDHash, now time.Time) error {
	f.mu.Lock()
	n := f.unstored[id]
	f.mu.Unlock()
	if n == 0 {
		return nil
	}
	f.flushing.Lock()
	defer f.flushing.Unlock()
	f.mu.Lock()
	n = f.unstored[id] // what a write that held the lock before left
	f.mu.Unlock()
	if n == 0 {
		return nil
	}
	_, err := f.store.updateFailures(id[:], func(r failRecord) failRecord {
		for range n {
			r, _ = f.apply(r, outcomeFailure, true, now)
		}
		return r
	})
	if err == nil {
		f.addUnstored(id, -n)
	}
	return err
}

// addUnstored notes n failures of id whose write failed (n < 0: written since).
func (f *failures) addUnstored(id pairing.IDHash, n int) {
	f.mu.Lock()
	if f.unstored[id] += n; f.unstored[id] <= 0 {
		delete(f.unstored, id)
	}
	f.mu.Unlock()
}

// place waits for a place among this process's verifications of id in flight, fewer
// than its tries left, and takes it; it returns the tries left (0: blocked, no place
// taken).
func (f *failures) place(ctx context.Context, id pairing.IDHash, known bool, now time.Time) (int, error) {
	for {
		r, err := f.record(id, known)
		if err != nil {
			return 0, err
		}
		left := f.triesLeft(r, now)
		if left == 0 {
			return 0, nil
		}
		f.mu.Lock()
		fl := f.flights[id]
		if fl == nil {
			fl = &flight{wake: make(chan struct{})}
			f.flights[id] = fl
		}
		if fl.n < left {
			fl.n++
			f.mu.Unlock()
			return left, nil
		}
		wake := fl.wake
		f.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// touchSlot asks the store for a slot of id with a limit of none, and frees it: the
// round trips (and the record read) of an admitted verification's slot, for one that
// is not admitted.
func (f *failures) touchSlot(id pairing.IDHash, known bool) error {
	var slot [16]byte
	rand.Read(slot[:])
	_, err := f.store.reserveTry(id, f.key(id, known), slot, func(failRecord) int { return 0 }, trySlotTTL)
	return errors.Join(err, f.store.releaseTry(id, slot))
}

// errTriesBusy: the tries left of an identity were held by checks on other replicas
// for trySlotTTL, the whole time a login may wait for one.
var errTriesBusy = httpx.Errorf(http.StatusServiceUnavailable, "busy",
	"too many logins of this identity are being checked at once; try again")

// Outcomes of a verification.
const (
	outcomeFailure = iota // counted
	outcomeNeutral        // not counted (channel binding mismatch)
	outcomeSuccess        // resets the consecutive count
)

// A verdict is what done decides.
type verdict struct {
	ok bool // a success stands (the identity was not blocked meanwhile)
	// neutral: a neutral outcome stands (not counted: the identity was not blocked).
	neutral bool
	tries   int // tries left
	// exceeded: this failure used up the daily budget and held the identity.
	exceeded bool
}

// apply is the record after a verification of outcome on r at now, and its verdict. A
// failure is counted in both counts; when it brings the window's count to perDay, the
// identity is held until the registrar unblocks it. A success resets the consecutive
// count only; it does not stand if the identity is blocked (by failures counted while
// it was in flight, here or on another replica), and is then counted as a failure. So
// is a neutral outcome (the right PIN, another channel) on a blocked identity: its
// channel_binding_mismatch would tell whoever holds a stolen token that the PIN
// just tried is right although the identity is blocked.
func (f *failures) apply(r failRecord, outcome int, admitted bool, now time.Time) (failRecord, verdict) {
	var v verdict
	if outcome != outcomeFailure && (!admitted || f.triesLeft(r, now) == 0) {
		outcome = outcomeFailure
	}
	switch outcome {
	case outcomeFailure:
		r.Count++
		if r.dayCount(now) == 0 {
			r.DayStart, r.Day = now, 0
		}
		r.Day++
		if r.Day >= f.perDay && !r.Held {
			r.Held, v.exceeded = true, true
		}
	case outcomeNeutral:
		v.neutral = true
	case outcomeSuccess:
		v.ok = true
		r.Count = 0
		if r.Day != 0 && r.dayCount(now) == 0 { // a window that has ended
			r.Day, r.DayStart = 0, time.Time{}
		}
	}
	v.tries = f.triesLeft(r, now)
	return r, v
}

// done ends a verification of id: admitted says whether admit let it run (a blocked
// identity's is not, and is a failure). The outcome is applied to the stored record
// in one atomic update (apply), written before done returns and before the
// verification stops counting as in flight; a success that changes nothing (no
// failures counted, not blocked) writes nothing.
func (f *failures) done(id pairing.IDHash, known, admitted bool, outcome int, now time.Time) (verdict, error) {
	v, err := f.settle(id, known, admitted, outcome, now)
	if admitted {
		// Only once the outcome is stored: a waiting login admitted before would
		// read the count without it.
		err = errors.Join(err, f.finish(id))
	}
	return v, err
}

// settle stores the outcome of a verification of id (done).
func (f *failures) settle(id pairing.IDHash, known, admitted bool, outcome int, now time.Time) (verdict, error) {
	if !known {
		f.mu.Lock()
		r := f.unknownLocked(id)
		next, v := f.apply(*r, outcome, admitted, now)
		changed := next != *r
		*r = next
		f.mu.Unlock()
		if changed {
			return v, f.store.writeDecoy(f.key(id, false), next)
		}
		return v, nil
	}
	if outcome != outcomeFailure && !f.othersPending(id) {
		r, err := f.store.failures(id[:])
		if err != nil {
			return verdict{}, err
		}
		next, v := f.apply(r, outcome, admitted, now)
		if next == r { // nothing to write
			return v, nil
		}
	}
	var v verdict
	_, err := f.store.updateFailures(id[:], func(r failRecord) failRecord {
		var next failRecord
		next, v = f.apply(r, outcome, admitted, now)
		return next
	})
	if err != nil && outcome == outcomeFailure {
		f.addUnstored(id, 1)
	}
	return v, err
}

// othersPending reports whether other checks of id are in flight here, or failures of
// id unstored (their writes failed). A success or neutral outcome then writes its
// record even if nothing changed, so that it fails with a store that does not write:
// else, of the checks admitted at once while writes fail, the wrong PINs would answer
// errors and the right one (on a clean record, no write) a token, one verdict per
// check instead of one in all.
func (f *failures) othersPending(id pairing.IDHash) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	fl := f.flights[id]
	return f.unstored[id] > 0 || (fl != nil && fl.n > 1)
}

// finish ends an admitted verification of id: it frees one of the store slots this
// process holds for id, then lands it.
func (f *failures) finish(id pairing.IDHash) error {
	f.mu.Lock()
	var slot [16]byte
	held := false
	if fl := f.flights[id]; fl != nil && len(fl.slots) > 0 {
		slot, fl.slots, held = fl.slots[len(fl.slots)-1], fl.slots[:len(fl.slots)-1], true
	}
	f.mu.Unlock()
	var err error
	if held {
		err = f.store.releaseTry(id, slot)
	}
	f.land(id)
	return err
}

// land ends one verification of id in flight and wakes the logins waiting for it.
func (f *failures) land(id pairing.IDHash) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fl := f.flights[id]; fl != nil {
		fl.n--
		close(fl.wake)
		fl.wake = make(chan struct{})
		if fl.n == 0 {
			delete(f.flights, id)
		}
	}
}

// reset clears id's counts and hold (the registrar's unblock): a fresh daily budget.
// It returns whether id was blocked (no tries left) at now.
func (f *failures) reset(id pairing.IDHash, now time.Time) (wasBlocked bool, err error) {
	f.mu.Lock()
	if fl := f.flights[id]; fl != nil {
		close(fl.wake)
		fl.wake = make(chan struct{})
	}
	f.mu.Unlock()
	var was failRecord
	_, err = f.store.updateFailures(id[:], func(r failRecord) failRecord {
		was = r // of the last call: the update that took
		return failRecord{}
	})
	return err == nil && f.triesLeft(was, now) == 0, err
}

// status returns the consecutive and daily failure counts of record r, and whether it
// blocks its identity.
func (f *failures) status(r failRecord, now time.Time) (count, day int, blocked bool) {
	return r.Count, r.dayCount(now), f.triesLeft(r, now) == 0
}

// count returns id's consecutive failure count: the stored one, or for an idhash
// with no stored record, the one in memory.
func (f *failures) count(id pairing.IDHash) int {
	r, err := f.store.failures(id[:])
	if err == nil && r != (failRecord{}) {
		return r.Count
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if r, ok := f.unknown[id]; ok {
		return r.Count
	}
	return 0
}
