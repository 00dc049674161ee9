package server

import (
	"context"
	"errors"

	"github.com/polyroot/polyroot/internal/httpx"
)

// newReadiness is /readyz. Readiness means "send me traffic": the server is ready
// when it can verify logins, i.e. it runs with its keys and its state database
// answers; a failure of either answers 503. The DTAs only degrade it: logins need
// none, so a DTA outage (DTAs are run by other operators, elsewhere) must not take
// every replica out of rotation. /readyz then stays 200 with status "degraded" naming
// them, polyroot_server_dependency_up{dependency="dtas"} drops to 0, and enrolments,
// permits and renewals answer 503 "dta_unavailable" (see dtaProbe.unavailable).
func (s *Server) newReadiness() *httpx.Readiness {
	return httpx.NewReadiness(s.cfg.Logger, "server",
		httpx.ReadinessCheck{Name: "keys", Check: func(context.Context) error {
			if !s.ready.Load() {
				return errors.New("not loaded, or the server is stopping")
			}
			return nil
		}},
		httpx.ReadinessCheck{Name: "storage", Check: func(ctx context.Context) error {
			if err := s.store.ping(ctx); err != nil {
				return errors.New("the state database is not usable")
			}
			return nil
		}},
		httpx.ReadinessCheck{Name: "dtas", Check: s.probe.check, Degrades: true},
	)
}
