package dta

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/polyroot/polyroot/internal/httpx"
)

// storageFailureWindow is how long /readyz reports a failed write of an issuance (a
// log append, a state database transaction, a recovery; each failure starts it
// again). After it, unless records of a failed append still wait for their recovery,
// the writability probe alone decides: a full disk that was cleaned up turns the DTA
// ready again without a restart. The probe only creates an empty file, which may
// succeed on a full disk: the failures of the issuances themselves are what tell.
const storageFailureWindow = 30 * time.Second

// A ReadyReporter is an Anchor that can tell whether its chain is usable; /readyz
// reports the reason while it is not. The reason is shown publicly: keep RPC URLs,
// which may carry credentials, and raw errors out of it.
type ReadyReporter interface {
	Ready() error
}

// readinessWatchEvery is how often the DTA evaluates its readiness by itself, so that
// a transition (the chain lost or back) is logged even while nobody asks /readyz.
const readinessWatchEvery = 10 * time.Second

// newReadiness is /readyz. Readiness means "send me traffic": the DTA is ready when
// it can issue, i.e. its keys are loaded and it is not stopping, and its storage is
// writable, did not just fail and has no failed append's records waiting for their
// recovery (their tickets are answered "retry later" until then); a failure of
// either answers 503. The chain (when
// the log is anchored) only degrades it: an issuance needs the log, not the chain,
// and anchoring is allowed to lag and catches up by itself, so an RPC provider's
// hiccup must not stop every issuance. /readyz then stays 200 with status "degraded",
// polyroot_dta_dependency_up{dependency="chain"} drops to 0, and the lag grows on
// /metrics (polyroot_dta_anchor_lag_entries).
func (s *Service) newReadiness() *httpx.Readiness {
	writable := &writableCheck{}
	checks := []httpx.ReadinessCheck{
		{Name: "keys", Check: func(context.Context) error {
			if !s.ready.Load() {
				return errors.New("not loaded, or the DTA is stopping")
			}
			return nil
		}},
		{Name: "storage", Check: func(context.Context) error {
			if s.commits != nil && s.commits.recovering() {
				return errors.New("issuances of a failed log append wait for their recovery, retried by the DTA (see its log)")
			}
			if t := s.storageFailed.Load(); t != 0 && time.Since(time.Unix(0, t)) < storageFailureWindow {
				return fmt.Errorf("writing an issuance failed at %s (see the DTA's log)", time.Unix(0, t).UTC().Format(time.RFC3339))
			}
			return writable.check(LogDir(s.cfg.DataDir))
		}},
	}
	if r, ok := s.cfg.Anchor.(ReadyReporter); ok {
		checks = append(checks, httpx.ReadinessCheck{Name: "chain", Degrades: true, Check: func(context.Context) error {
			if err := r.Ready(); err != nil {
				return fmt.Errorf("%w; issuing goes on, anchoring lags and catches up once the chain is back", err)
			}
			return nil
		}})
	}
	return httpx.NewReadiness(s.cfg.Logger, "dta", checks...)
}

// startReadinessWatch evaluates the readiness every readinessWatchEvery until Close.
func (s *Service) startReadinessWatch() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.readyz.Watch(ctx, readinessWatchEvery) }()
	s.stopReadinessWatch = func() { cancel(); <-done }
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
