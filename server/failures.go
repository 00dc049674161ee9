package server

import (
	"context"
	"sync"
	"time"

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
// it. Counts of enrolled identities are written through to the store before the
// answer leaves; counts of unknown idhashes live in memory, bounded, and each of their
// failures writes a record of the same size under the store's decoy key, so that
// both cost one synced write. It also bounds how many logins of one identity are
// verified at once: a verification is admitted only while the tries left exceed
// those in flight, so parallel guesses cannot test more PINs than either limit
// allows.
type failures struct {
	max, perDay int
	store       *store

	mu      sync.Mutex
	known   map[pairing.IDHash]*failState // enrolled identities (mirrors the store)
	unknown map[pairing.IDHash]*failState
	order   []pairing.IDHash // insertion order of unknown, for eviction
}

type failState struct {
	failRecord
	inflight int
	wake     chan struct{} // closed and replaced when an in-flight login ends
}

func newFailures(max, perDay int, st *store) (*failures, error) {
	f := &failures{max: max, perDay: perDay, store: st, known: map[pairing.IDHash]*failState{}, unknown: map[pairing.IDHash]*failState{}}
	recs, err := st.loadFailures()
	if err != nil {
		return nil, err
	}
	for id, rec := range recs {
		f.known[id] = &failState{failRecord: rec, wake: make(chan struct{})}
	}
	return f, nil
}

// stateLocked returns the state of id, creating it.
func (f *failures) stateLocked(id pairing.IDHash, known bool) *failState {
	if st, ok := f.known[id]; ok {
		return st
	}
	if known {
		if st, ok := f.unknown[id]; ok { // enrolled since: adopt its count
			delete(f.unknown, id)
			f.known[id] = st
			return st
		}
		st := &failState{wake: make(chan struct{})}
		f.known[id] = st
		return st
	}
	if st, ok := f.unknown[id]; ok {
		return st
	}
	for len(f.unknown) >= maxUnknownCounts && len(f.order) > 0 {
		delete(f.unknown, f.order[0])
		f.order = f.order[1:]
	}
	if len(f.order) > 2*maxUnknownCounts { // drop keys already adopted or evicted
		f.order = append([]pairing.IDHash(nil), f.order[len(f.order)-maxUnknownCounts:]...)
	}
	st := &failState{wake: make(chan struct{})}
	f.unknown[id] = st
	f.order = append(f.order, id)
	return st
}

// dayCount returns the failures of st's window that is current at now.
func (st *failState) dayCount(now time.Time) int {
	if st.DayStart.IsZero() || !now.Before(st.DayStart.Add(failureWindow)) {
		return 0
	}
	return st.Day
}

// triesLeft is how many failures st may still have before it is blocked.
func (f *failures) triesLeft(st *failState, now time.Time) int {
	if st.Held {
		return 0
	}
	return max(0, min(f.max-st.Count, f.perDay-st.dayCount(now)))
}

// persist writes id's current record: under id if id is enrolled, else under the
// decoy key, so that every failure costs one synced write of the same size.
func (f *failures) persist(id pairing.IDHash, known bool) error {
	key := id[:]
	if !known {
		key = decoyKey
	}
	return f.store.putFailures(key, func() failRecord {
		f.mu.Lock()
		defer f.mu.Unlock()
		m := f.unknown
		if known {
			m = f.known
		}
		if st, ok := m[id]; ok {
			return st.failRecord
		}
		return failRecord{}
	})
}

// admit waits until a verification of id may run. It returns false if the identity is
// blocked (then nothing is in flight for the caller, who must still call done). Every
// idhash is admitted the same way, enrolled or not, so that waiting tells nothing.
func (f *failures) admit(ctx context.Context, id pairing.IDHash, known bool, now time.Time) (bool, error) {
	for {
		f.mu.Lock()
		st := f.stateLocked(id, known)
		left := f.triesLeft(st, now)
		if left == 0 {
			f.mu.Unlock()
			return false, nil
		}
		if st.inflight < left {
			st.inflight++
			f.mu.Unlock()
			return true, nil
		}
		wake := st.wake
		f.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
}

// Outcomes of a verification.
const (
	outcomeFailure = iota // counted
	outcomeNeutral        // not counted (channel binding mismatch)
	outcomeSuccess        // resets the consecutive count
)

// A verdict is what done decides.
type verdict struct {
	ok    bool // a success stands (the identity was not blocked meanwhile)
	tries int  // tries left
	// exceeded: this failure used up the daily budget and held the identity.
	exceeded bool
}

// done ends a verification of id: admitted says whether admit let it run (a blocked
// identity's is not, and is a failure). A failure is counted in both counts; when it
// brings the window's count to perDay, the identity is held until the registrar
// unblocks it. A success resets the consecutive count only; it does not stand if the
// identity was blocked meanwhile (by failures counted while it was in flight), and is
// then counted as a failure. A changed record is written before done returns.
func (f *failures) done(id pairing.IDHash, known, admitted bool, outcome int, now time.Time) (verdict, error) {
	var v verdict
	f.mu.Lock()
	st := f.stateLocked(id, known)
	if admitted {
		st.inflight--
		close(st.wake)
		st.wake = make(chan struct{})
	}
	changed := false
	if outcome == outcomeSuccess && (!admitted || f.triesLeft(st, now) == 0) {
		outcome = outcomeFailure
	}
	switch outcome {
	case outcomeFailure:
		st.Count++
		if st.dayCount(now) == 0 {
			st.DayStart, st.Day = now, 0
		}
		st.Day++
		if st.Day >= f.perDay && !st.Held {
			st.Held, v.exceeded = true, true
		}
		changed = true
	case outcomeSuccess:
		v.ok = true
		changed = st.Count != 0
		st.Count = 0
		if st.Day != 0 && st.dayCount(now) == 0 { // a window that has ended
			st.Day, st.DayStart, changed = 0, time.Time{}, true
		}
	}
	v.tries = f.triesLeft(st, now)
	f.mu.Unlock()
	var err error
	if changed {
		err = f.persist(id, known)
	}
	return v, err
}

// reset clears id's counts and hold (the registrar's unblock): a fresh daily budget.
func (f *failures) reset(id pairing.IDHash) error {
	f.mu.Lock()
	st := f.stateLocked(id, true)
	st.failRecord = failRecord{}
	close(st.wake)
	st.wake = make(chan struct{})
	f.mu.Unlock()
	return f.persist(id, true)
}

// status returns id's consecutive and daily failure counts, and whether it is blocked.
func (f *failures) status(id pairing.IDHash, now time.Time) (count, day int, blocked bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.known[id]
	if !ok {
		return 0, 0, false
	}
	return st.Count, st.dayCount(now), f.triesLeft(st, now) == 0
}

// count returns id's consecutive failure count.
func (f *failures) count(id pairing.IDHash) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if st, ok := f.known[id]; ok {
		return st.Count
	}
	if st, ok := f.unknown[id]; ok {
		return st.Count
	}
	return 0
}
