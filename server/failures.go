package server

import (
	"context"
	"sync"

	"github.com/polyroot/polyroot/pairing"
)

// maxUnknownCounts bounds the failure counts kept (in memory only) for idhashes that
// are not enrolled here.
const maxUnknownCounts = 100_000

// failures counts login failures per idhash. Counts of enrolled identities are written
// through to the store before the answer leaves; counts of unknown idhashes live in
// memory, bounded. It also bounds how many logins of one identity are verified at
// once: a verification is admitted only while failures + in flight < max, so parallel
// guesses cannot test more PINs than the lockout allows.
type failures struct {
	max   int
	store *store

	mu      sync.Mutex
	known   map[pairing.IDHash]*failState // enrolled identities (mirrors the store)
	unknown map[pairing.IDHash]*failState
	order   []pairing.IDHash // insertion order of unknown, for eviction
}

type failState struct {
	count    int
	inflight int
	wake     chan struct{} // closed and replaced when an in-flight login ends
}

func newFailures(max int, st *store) (*failures, error) {
	f := &failures{max: max, store: st, known: map[pairing.IDHash]*failState{}, unknown: map[pairing.IDHash]*failState{}}
	counts, err := st.loadFailures()
	if err != nil {
		return nil, err
	}
	for id, n := range counts {
		f.known[id] = &failState{count: n, wake: make(chan struct{})}
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

func (f *failures) triesLeft(n int) int { return max(0, f.max-n) }

// persist writes id's current count if id is enrolled.
func (f *failures) persist(id pairing.IDHash, known bool) error {
	if !known {
		return nil
	}
	return f.store.putFailures(id, func() int {
		f.mu.Lock()
		defer f.mu.Unlock()
		if st, ok := f.known[id]; ok {
			return st.count
		}
		return 0
	})
}

// fail counts a failure that was not admitted (unknown, revoked, blocked, expired) and
// returns the tries left.
func (f *failures) fail(id pairing.IDHash, known bool) (int, error) {
	f.mu.Lock()
	st := f.stateLocked(id, known)
	st.count++
	n := st.count
	f.mu.Unlock()
	return f.triesLeft(n), f.persist(id, known)
}

// admit waits until a verification of enrolled identity id may run. It returns false
// if the identity is blocked (then nothing is in flight for the caller).
func (f *failures) admit(ctx context.Context, id pairing.IDHash) (bool, error) {
	for {
		f.mu.Lock()
		st := f.stateLocked(id, true)
		if st.count >= f.max {
			f.mu.Unlock()
			return false, nil
		}
		if st.count+st.inflight < f.max {
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

// Outcomes of an admitted verification.
const (
	outcomeFailure = iota // counted
	outcomeNeutral        // not counted (channel binding mismatch)
	outcomeSuccess        // resets the count
)

// done ends an admitted verification. For a success it reports false if the identity
// was blocked meanwhile (by failures counted while this one was in flight); the caller
// then answers as for a failure, which is counted. It returns the tries left.
func (f *failures) done(id pairing.IDHash, outcome int) (ok bool, tries int, err error) {
	f.mu.Lock()
	st := f.stateLocked(id, true)
	st.inflight--
	close(st.wake)
	st.wake = make(chan struct{})
	changed := false
	switch outcome {
	case outcomeFailure:
		st.count++
		changed = true
	case outcomeSuccess:
		if st.count >= f.max {
			st.count++
			changed = true
		} else {
			ok = true
			changed = st.count != 0
			st.count = 0
		}
	}
	n := st.count
	f.mu.Unlock()
	if changed {
		err = f.persist(id, true)
	}
	return ok, f.triesLeft(n), err
}

// reset sets id's count to zero (the registrar's unblock).
func (f *failures) reset(id pairing.IDHash) error {
	f.mu.Lock()
	st := f.stateLocked(id, true)
	st.count = 0
	close(st.wake)
	st.wake = make(chan struct{})
	f.mu.Unlock()
	return f.persist(id, true)
}

// count returns id's failure count.
func (f *failures) count(id pairing.IDHash) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if st, ok := f.known[id]; ok {
		return st.count
	}
	if st, ok := f.unknown[id]; ok {
		return st.count
	}
	return 0
}
