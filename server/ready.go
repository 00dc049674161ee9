package server

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/polyroot/polyroot/internal/httpx"
)

// newReadiness is /readyz. Readiness means "send me traffic": the server is ready
// when it can verify logins, i.e. it runs with its keys and its state database
// answers; a failure of either answers 503. The DTAs only degrade it: logins need
// none, so a DTA outage (DTAs are run by other operators, elsewhere) must not take
// every replica out of rotation. /readyz then stays 200 with status "degraded" naming
// them, polyroot_server_dependency_up{dependency="dtas"} drops to 0, and enrolments,
// permits and renewals answer 503 "dta_unavailable" (see dtaProbe.unavailable).
//
// /readyz is public and not rate limited (load balancers poll it), so the one check
// that costs more than a memory read, the state database's (with PostgreSQL a round
// trip on the pool the logins use), is a sharedCheck: at most one a storageCheckEvery
// however often /readyz and the metrics are asked. The keys and the DTAs are read
// afresh at every request.
func (s *Server) newReadiness() *httpx.Readiness {
	storage := &sharedCheck{every: storageCheckEvery, timeout: storageCheckTimeout, check: s.store.ping}
	return httpx.NewReadiness(s.cfg.Logger, "server",
		httpx.ReadinessCheck{Name: "keys", Check: func(context.Context) error {
			if !s.ready.Load() {
				return errors.New("not loaded, or the server is stopping")
			}
			return nil
		}},
		httpx.ReadinessCheck{Name: "storage", Check: func(ctx context.Context) error {
			if err := storage.run(ctx); err != nil {
				return errors.New("the state database is not usable")
			}
			return nil
		}},
		httpx.ReadinessCheck{Name: "dtas", Check: s.probe.check, Degrades: true},
	)
}

// storageCheckEvery is how long the result of a check of the state database stands
// for /readyz and the metrics.
const storageCheckEvery = time.Second

// storageCheckTimeout bounds one check of the state database.
const storageCheckTimeout = 2 * time.Second

// A sharedCheck runs check at most once every period, whoever asks: the callers in
// between get its last result, and the callers that come while it runs wait for that
// run rather than start another, so a flood of callers costs one check a period.
type sharedCheck struct {
	check   func(context.Context) error
	every   time.Duration
	timeout time.Duration // of one run

	mu      sync.Mutex
	at      time.Time     // when the last run ended; zero before the first
	err     error         // its result
	running chan struct{} // closed when the run under way ends; nil while none is
}

// run returns the result of the last run of the check if it ended less than c.every
// ago, else runs it, or waits for the run under way. A caller whose ctx ends while it
// waits gets ctx's error; the run goes on for the others, up to c.timeout, whether or
// not the caller that started it is still there.
func (c *sharedCheck) run(ctx context.Context) error {
	// (runCheck ends the run, under the lock, even if check panics: the callers waiting
	// for it are not left hanging.)
	c.mu.Lock()
	for c.at.IsZero() || time.Since(c.at) >= c.every {
		if c.running == nil {
			done := make(chan struct{})
			c.running = done
			c.mu.Unlock()
			return c.runCheck(ctx, done)
		}
		wait := c.running
		c.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return ctx.Err()
		}
		c.mu.Lock()
	}
	err := c.err
	c.mu.Unlock()
	return err
}

// runCheck runs the check for run, records its result and wakes the callers waiting
// for it (done), also if the check panics (then as a failure).
func (c *sharedCheck) runCheck(ctx context.Context, done chan struct{}) (err error) {
	err = errors.New("the check did not finish")
	defer func() {
		c.mu.Lock()
		c.at, c.err, c.running = time.Now(), err, nil
		c.mu.Unlock()
		close(done)
	}()
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
	defer cancel()
	return c.check(rctx)
}
