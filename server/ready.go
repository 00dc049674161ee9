package server

import (
	"context"
	"errors"

	"net/http"

	"github.com/polyroot/polyroot/internal/httpx"
)

// readiness is /readyz: the server is running with its keys, its state database
// answers, and enough DTAs are ready for enrolments and permits (see dtaProbe).
func (s *Server) readiness() http.HandlerFunc {
	return httpx.Readiness(s.cfg.Logger,
		httpx.ReadinessCheck{Name: "keys", Check: func(context.Context) error {
			if !s.ready.Load() {
				return errors.New("not loaded, or the server is stopping")
			}
			return nil
		}},
		httpx.ReadinessCheck{Name: "storage", Check: func(context.Context) error {
			if err := s.store.db.View(func(*boltTx) error { return nil }); err != nil {
				return errors.New("the state database is not usable")
			}
			return nil
		}},
		httpx.ReadinessCheck{Name: "dtas", Check: s.probe.check},
	)
}
