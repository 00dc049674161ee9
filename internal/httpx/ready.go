package httpx

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// A ReadinessCheck is one thing a service needs in order to serve: Check returns nil
// when it is available, else the reason it is not. Reasons are shown to anyone who
// asks /readyz, so they name the component (a DTA by its index, "the chain") and never
// carry a secret, a URL (which may hold credentials) or a raw internal error; the
// details go to the service's log.
type ReadinessCheck struct {
	Name  string
	Check func(context.Context) error
	// Degrades marks a dependency that only some requests need (the auth server's
	// DTAs, a DTA's chain). While it fails the service is degraded, not out of
	// service: /readyz still answers 200, because /readyz is what load balancers and
	// orchestrators act on, and taking every replica out of rotation for a dependency
	// most requests do not need turns one outage into a total one. The requests that
	// need it fail fast by themselves. A check without Degrades (keys, storage) is
	// fatal: /readyz answers 503 and the instance leaves rotation.
	Degrades bool
}

// Readiness states: the "status" of the /readyz body.
const (
	StatusReady    = "ready"
	StatusDegraded = "degraded"
	StatusNotReady = "not_ready"
)

// A ReadinessReport is the /readyz body. Checks holds every check by name: "ok",
// "degraded: <reason>" for a failing check that Degrades, "failing: <reason>" for a
// failing fatal one.
type ReadinessReport struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

// notReadyBody is the 503 answer: the API's error object (code "not_ready", the
// failing checks' reasons as the message) with the report beside it, so that clients
// that only know the error format still read it.
type notReadyBody struct {
	*Error
	ReadinessReport
}

// readinessTimeout bounds one evaluation of the checks: they read state kept up to
// date in the background, or touch local storage, so a slow check is itself a sign of
// trouble.
const readinessTimeout = 2 * time.Second

// Readiness answers /readyz from its checks, logs each check's transitions and serves
// them as a Prometheus gauge (it is a prometheus.Collector). /readyz is polled by
// every load balancer, often several times a second, so a transition is logged once,
// by whichever evaluation sees it first (a /readyz request, a metrics scrape or
// Watch), not once per request: WARN when a check starts failing, INFO when it
// passes again. Nothing else is remembered: a component that comes back makes the
// next answer ready.
type Readiness struct {
	log    *slog.Logger
	checks []ReadinessCheck
	up     *prometheus.Desc

	mu      sync.Mutex
	failing map[string]bool // by check name, as of the last evaluation
}

// NewReadiness returns the readiness of a service whose metrics are named
// polyroot_<service>_…: its gauge is polyroot_<service>_dependency_up{dependency},
// one series per check, 1 while it passes. Operators alert on it rather than on
// /readyz, which stays 200 while a dependency that Degrades is down.
func NewReadiness(log *slog.Logger, service string, checks ...ReadinessCheck) *Readiness {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Readiness{log: log, checks: checks, failing: map[string]bool{},
		up: prometheus.NewDesc("polyroot_"+service+"_dependency_up",
			"1 while the readiness check of a dependency passes, else 0. A fatal one failing (keys, storage) takes the instance out of rotation (/readyz 503); one that only degrades it (dtas, chain) leaves /readyz 200 with status degraded: alert on this gauge.",
			[]string{"dependency"}, nil)}
}

// checkResult is one check's outcome in one evaluation.
type checkResult struct {
	check ReadinessCheck
	err   error
}

// evaluate runs every check, logs the transitions and returns the outcomes.
func (r *Readiness) evaluate(ctx context.Context) []checkResult {
	ctx, cancel := context.WithTimeout(ctx, readinessTimeout)
	defer cancel()
	out := make([]checkResult, len(r.checks))
	for i, c := range r.checks {
		out[i] = checkResult{c, c.Check(ctx)}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, res := range out {
		name, failing := res.check.Name, res.err != nil
		if r.failing[name] == failing {
			continue
		}
		r.failing[name] = failing
		switch {
		case failing && res.check.Degrades:
			r.log.Warn("degraded: a dependency is unavailable; still serving the requests that do not need it",
				"dependency", name, "reason", res.err.Error())
		case failing:
			r.log.Warn("not ready: a fatal readiness check fails; /readyz answers 503", "check", name, "reason", res.err.Error())
		case res.check.Degrades:
			r.log.Info("dependency available again: no longer degraded", "dependency", name)
		default:
			r.log.Info("readiness check passes again", "check", name)
		}
	}
	return out
}

// Report evaluates every check now and returns what /readyz answers.
func (r *Readiness) Report(ctx context.Context) ReadinessReport {
	rep, _ := r.report(ctx)
	return rep
}

// report is Report with the reasons of the fatal failures, for the 503 message.
func (r *Readiness) report(ctx context.Context) (ReadinessReport, []string) {
	rep := ReadinessReport{Status: StatusReady, Checks: map[string]string{}}
	var fatal []string
	for _, res := range r.evaluate(ctx) {
		name := res.check.Name
		switch {
		case res.err == nil:
			rep.Checks[name] = "ok"
		case res.check.Degrades:
			rep.Checks[name] = "degraded: " + res.err.Error()
			if rep.Status == StatusReady {
				rep.Status = StatusDegraded
			}
		default:
			rep.Checks[name] = "failing: " + res.err.Error()
			rep.Status = StatusNotReady
			fatal = append(fatal, name+": "+res.err.Error())
		}
	}
	return rep, fatal
}

// ServeHTTP answers /readyz: 200 with the report while no fatal check fails (status
// "ready" or "degraded"), else 503 with the code "not_ready", the fatal checks'
// reasons as the message ("name: reason; name: reason") and the report.
func (r *Readiness) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	rep, fatal := r.report(req.Context())
	w.Header().Set("Cache-Control", "no-store")
	if len(fatal) > 0 {
		WriteJSON(w, http.StatusServiceUnavailable, notReadyBody{
			Error:           Errorf(http.StatusServiceUnavailable, StatusNotReady, "%s", strings.Join(fatal, "; ")),
			ReadinessReport: rep,
		})
		return
	}
	WriteJSON(w, http.StatusOK, rep)
}

// Watch evaluates the checks every interval until ctx is done, so that transitions
// are logged, and the gauge follows, even while nobody asks /readyz.
func (r *Readiness) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		r.evaluate(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Describe implements prometheus.Collector.
func (r *Readiness) Describe(ch chan<- *prometheus.Desc) { ch <- r.up }

// Collect implements prometheus.Collector: it evaluates the checks at every scrape.
func (r *Readiness) Collect(ch chan<- prometheus.Metric) {
	for _, res := range r.evaluate(context.Background()) {
		v := 1.0
		if res.err != nil {
			v = 0
		}
		ch <- prometheus.MustNewConstMetric(r.up, prometheus.GaugeValue, v, res.check.Name)
	}
}
