package server

import "time"

// codePruneInterval is how often expired enrolment codes, and the revocations of
// access tokens that have expired, are deleted.
const codePruneInterval = time.Hour

// startCodePruner deletes the expired enrolment codes, used or not (a used code is
// kept until its answer's tickets expire: store.redeem), at once and then every
// codePruneInterval until stop is called: without it the state database would keep
// a code for every enrolment. It also deletes the token revocations whose tokens have
// all expired (store.pruneRevokedTokens) and the OpenID Provider's expired state
// (store.pruneOIDC).
func (s *Server) startCodePruner() (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(codePruneInterval)
		defer t.Stop()
		for {
			if n, err := s.store.pruneCodes(s.cfg.Now()); err != nil {
				s.cfg.Logger.Error("deleting expired enrolment codes failed; trying again later", "err", err)
			} else if n > 0 {
				s.cfg.Logger.Info("deleted expired enrolment codes", "codes", n)
			}
			if n, err := s.store.pruneRevokedTokens(s.cfg.Now()); err != nil {
				s.cfg.Logger.Error("deleting ended access-token revocations failed; trying again later", "err", err)
			} else if n > 0 {
				s.cfg.Logger.Info("deleted the revocations of expired access tokens", "tokens", n)
			}
			if n, err := s.store.pruneOIDC(s.cfg.Now()); err != nil {
				s.cfg.Logger.Error("deleting expired OpenID Connect state failed; trying again later", "err", err)
			} else if n > 0 {
				s.cfg.Logger.Info("deleted expired OpenID Connect auth requests, codes and tokens", "entries", n)
			}
			select {
			case <-quit:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(quit); <-done }
}
