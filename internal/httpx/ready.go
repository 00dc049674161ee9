package httpx

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// A ReadinessCheck is one thing a service needs in order to serve: Check returns nil
// when it is available, else the reason it is not. Reasons are shown to anyone who
// asks /readyz, so they name the component (a DTA's public URL, "the chain") and never
// carry a secret or a raw internal error; the details go to the service's log.
type ReadinessCheck struct {
	Name  string
	Check func(context.Context) error
}

// readinessTimeout bounds one /readyz answer: checks read state kept up to date in the
// background, or touch local storage, so a slow check is itself a sign of trouble.
const readinessTimeout = 2 * time.Second

// Readiness answers /readyz: 200 "ready\n" when every check passes, else 503 with the
// code "not_ready" and every failing check's reason, as "name: reason; name: reason".
// It keeps no state: a component that comes back makes the next answer 200.
func Readiness(log *slog.Logger, checks ...ReadinessCheck) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), readinessTimeout)
		defer cancel()
		var reasons []string
		for _, c := range checks {
			if err := c.Check(ctx); err != nil {
				reasons = append(reasons, c.Name+": "+err.Error())
			}
		}
		if len(reasons) > 0 {
			WriteError(w, r, log, Errorf(http.StatusServiceUnavailable, "not_ready", "%s", strings.Join(reasons, "; ")))
			return
		}
		w.Write([]byte("ready\n"))
	}
}
