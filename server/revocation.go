package server

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/pairing"
)

// Revocation in a threshold domain.
//
// With t of n DTAs, any t of them issue permits. A revocation stops that only once
// n−t+1 DTAs have it: the DTAs that do not are then at most t−1, too few to issue a
// permit. (In additive mode n−t+1 is 1: one DTA that refuses is enough, since every
// DTA must answer.) So in threshold mode the registrar reports, with every revocation,
// how many DTAs acknowledged it, how many are needed and whether that is reached
// (wire.RevokeQuorum), and keeps sending the notice to the others in the background,
// with growing pauses, until each has it or the server stops; the number of notices
// still owed is the gauge polyroot_server_revocation_notices_pending, and every outcome
// is logged ("revocation not yet effective at the DTAs", "revocation delivered",
// "revocation effective at the DTAs"). A notice owed when the server stops is not sent
// by a later process: revoking again sends it (a second revocation is harmless).
// Additive mode is as before: the answer lists the DTAs that were not told, and the
// registrar runs the revocation again.

// revocationRetryBase and revocationRetryMax bound the pauses between retries.
const (
	revocationRetryBase = 2 * time.Second
	revocationRetryMax  = 5 * time.Minute
)

// revocationRetrier runs the background retries of revocation notices; its zero value
// is ready.
type revocationRetrier struct {
	base time.Duration // first pause (revocationRetryBase when 0; tests shorten it)

	mu      sync.Mutex
	quit    chan struct{}
	stopped bool
	wg      sync.WaitGroup
}

// stop ends the retries and waits for them.
func (r *revocationRetrier) stop() {
	r.mu.Lock()
	if !r.stopped {
		r.stopped = true
		if r.quit != nil {
			close(r.quit)
		}
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// start runs f in a goroutine with a channel closed at stop; false once stopped.
func (r *revocationRetrier) start(f func(quit <-chan struct{})) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return false
	}
	if r.quit == nil {
		r.quit = make(chan struct{})
	}
	quit := r.quit
	r.wg.Go(func() { f(quit) })
	return true
}

// revocationQuorum completes res in a threshold domain: how many DTAs acknowledged
// every notice (failed lists, by idhash, the DTAs that did not take it), whether that
// makes the revocation effective at the DTAs, and which DTAs are retried in the
// background. In additive mode it does nothing.
func (s *Server) revocationQuorum(ctx context.Context, res *wire.RevokeResult, failed map[string][]uint32) {
	b := s.trustBundle().b
	if b.SharingMode() != pairing.Threshold {
		return
	}
	n, need := len(b.DTAs), len(b.DTAs)-b.Threshold+1
	q := &wire.RevokeQuorum{Acknowledged: n - len(res.Unreachable), Needed: need, Retrying: res.Unreachable}
	q.Effective = q.Acknowledged >= need
	res.DTAQuorum = q
	if !q.Effective {
		s.cfg.Logger.WarnContext(ctx, "revocation not yet effective at the DTAs: fewer than n-t+1 acknowledged, so t DTAs may still issue permits; retrying the others",
			"idhashes", res.IDHashes, "acknowledged", q.Acknowledged, "needed", need, "retrying_dtas", q.Retrying)
	}
	for idHex, pending := range failed {
		if len(pending) == 0 {
			continue
		}
		s.metrics.revokePending.Add(float64(len(pending)))
		acked := n - len(pending)
		if !s.revRetry.start(func(quit <-chan struct{}) { s.retryRevocation(idHex, pending, acked, need, quit) }) {
			s.metrics.revokePending.Sub(float64(len(pending)))
		}
	}
}

// retryRevocation sends the revocation of idHex to the pending DTAs again, with pauses
// that double up to revocationRetryMax, until each has taken it or quit is closed.
// acked DTAs have it already; need is n−t+1.
func (s *Server) retryRevocation(idHex string, pending []uint32, acked, need int, quit <-chan struct{}) {
	ctx := context.Background()
	pause := s.revRetry.base
	if pause <= 0 {
		pause = revocationRetryBase
	}
	defer func() { s.metrics.revokePending.Sub(float64(len(pending))) }()
	for len(pending) > 0 {
		t := time.NewTimer(pause)
		select {
		case <-quit:
			t.Stop()
			s.cfg.Logger.Warn("revocation notices not delivered before the server stopped; revoke again to send them",
				"idhash", idHex, "pending_dtas", pending)
			return
		case <-t.C:
		}
		pause = min(2*pause, revocationRetryMax)
		still, err := s.notifyRevocationTo(ctx, idHex, pending)
		if err != nil {
			s.cfg.Logger.Error("revocation retry failed", "idhash", idHex, "err", err)
			continue
		}
		if n := len(pending) - len(still); n > 0 {
			s.metrics.revokePending.Sub(float64(n))
			wasEffective := acked >= need
			acked += n
			s.cfg.Logger.Info("revocation delivered", "idhash", idHex, "acknowledged", acked, "pending_dtas", still)
			if !wasEffective && acked >= need {
				s.cfg.Logger.Info("revocation effective at the DTAs", "idhash", idHex, "acknowledged", acked, "needed", need)
			}
		}
		pending = still
	}
}

// among reports whether index is in only; every index is in nil.
func among(only []uint32, index uint32) bool {
	return only == nil || slices.Contains(only, index)
}
