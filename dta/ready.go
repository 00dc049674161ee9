package dta

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/polyroot/polyroot/internal/httpx"
)

// appendFailureWindow is how long /readyz reports a failed log append. After it, the
// writability probe alone decides: a full disk that was cleaned up turns the DTA
// ready again without a restart.
const appendFailureWindow = 30 * time.Second

// A ReadyReporter is an Anchor that can tell whether its chain is usable; /readyz
// reports the reason while it is not. The reason is shown publicly: keep RPC URLs,
// which may carry credentials, and raw errors out of it.
type ReadyReporter interface {
	Ready() error
}

// readiness is /readyz: the keys are loaded and the service not stopping, the log is
// writable and did not just fail, and the chain (when the log is anchored) is reachable.
func (s *Service) readiness() http.HandlerFunc {
	writable := &writableCheck{}
	checks := []httpx.ReadinessCheck{
		{Name: "keys", Check: func(context.Context) error {
			if !s.ready.Load() {
				return errors.New("not loaded, or the DTA is stopping")
			}
			return nil
		}},
		{Name: "storage", Check: func(context.Context) error {
			if t := s.appendFailed.Load(); t != 0 && time.Since(time.Unix(0, t)) < appendFailureWindow {
				return fmt.Errorf("a log append failed at %s (see the DTA's log)", time.Unix(0, t).UTC().Format(time.RFC3339))
			}
			return writable.check(filepath.Join(s.cfg.DataDir, "log"))
		}},
	}
	if r, ok := s.cfg.Anchor.(ReadyReporter); ok {
		checks = append(checks, httpx.ReadinessCheck{Name: "chain", Check: func(context.Context) error { return r.Ready() }})
	}
	return httpx.Readiness(s.cfg.Logger, checks...)
}

// writableProbeEvery bounds how often /readyz writes a file: it is unauthenticated and
// not rate limited, so each request must not cost a disk write.
const writableProbeEvery = time.Second

// writableCheck remembers the last probe of a directory's writability.
type writableCheck struct {
	mu   sync.Mutex
	at   time.Time
	last error
}

func (w *writableCheck) check(dir string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if time.Since(w.at) < writableProbeEvery {
		return w.last
	}
	w.at, w.last = time.Now(), nil
	f, err := os.CreateTemp(dir, ".ready-*")
	if err != nil {
		w.last = errors.New("the log directory is not writable")
		return w.last
	}
	f.Close()
	os.Remove(f.Name())
	return nil
}
