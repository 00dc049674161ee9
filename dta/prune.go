package dta

import (
	"time"
)

// pruneBatch bounds one pruning transaction, so that issuances never wait long for the
// database's single writer.
const pruneBatch = 10_000

// startPruner forgets, now and then every PruneInterval until Close, the records of
// tickets that expired more than NonceRetention ago: without it the state database
// (and the scan of pending records at start-up) would grow with every issuance.
func (s *Service) startPruner() {
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(s.cfg.PruneInterval)
		defer t.Stop()
		for {
			s.pruneExpired(stop)
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	s.stopPruner = func() { close(stop); <-done }
}

// pruneExpired prunes in batches until nothing is left to prune or stop is closed.
func (s *Service) pruneExpired(stop <-chan struct{}) {
	cutoff := s.cfg.Now().Add(-s.cfg.NonceRetention)
	total := 0
	for {
		n, err := s.store.prune(cutoff, pruneBatch)
		total += n
		s.metrics.pruned.Add(float64(n))
		if err != nil {
			s.cfg.Logger.Error("pruning expired ticket records failed; trying again later", "err", err)
			return
		}
		select {
		case <-stop:
			return
		default:
		}
		if n < pruneBatch {
			break
		}
	}
	if total > 0 {
		s.cfg.Logger.Info("forgot the records of expired tickets", "records", total, "expired_before", cutoff.UTC().Format(time.RFC3339))
	}
}
