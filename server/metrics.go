package server

import (
	"net/http"
	"time"

	"github.com/polyroot/polyroot/internal/httpx"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the server's Prometheus metrics. Labels carry steps, results, routes and
// status codes only: never an identity, a token or a key.
type metrics struct {
	registry *prometheus.Registry
	logins   *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	requests *prometheus.CounterVec
	admin    *prometheus.CounterVec
	dtaUp    *prometheus.GaugeVec
	limited  prometheus.Counter // requests refused 429 by the rate limiter
	refused  prometheus.Counter // connections closed for the per-client bound (httpx.ServeOptions)
	budget   prometheus.Counter
	// revokePending counts the revocation notices owed to DTAs that the registrar
	// retries in the background (threshold mode: revocationQuorum).
	revokePending prometheus.Gauge
	// batchSize and batchWait are the batched verification's (batcher): the size of
	// each batch, and each login's time from its pass 2 entering the queue to its
	// batch's result (the latency batching adds, and the check itself).
	batchSize, batchWait prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "polyroot_server_logins_total", Help: "Login steps by step (start, finish, renew_start, renew_finish) and result code.",
		}, []string{"step", "result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "polyroot_server_login_seconds", Help: "Time to answer a login step.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"step"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "polyroot_server_http_requests_total", Help: "HTTP requests by route and status.",
		}, []string{"route", "status"}),
		admin: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "polyroot_server_registrar_total", Help: "Registrar actions by action and result code.",
		}, []string{"action", "result"}),
		dtaUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "polyroot_server_dta_up", Help: "1 if the DTA answered its last readiness probe with 200, else 0 (by DTA index).",
		}, []string{"dta"}),
		limited: httpx.NewThrottledCounter("server"),
		refused: httpx.NewRefusedConnectionsCounter("server"),
		budget: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "polyroot_server_failure_budget_exceeded_total",
			Help: "Identities blocked because their failed logins within 24 h reached the daily budget (max_failures_per_day); each is logged with its idhash.",
		}),
		revokePending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "polyroot_server_revocation_notices_pending",
			Help: "Revocation notices (identity and DTA) not yet acknowledged by their DTA, retried in the background (threshold domains).",
		}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "polyroot_server_login_batch_size", Help: "Pass-2 messages checked together, per batch (1: checked alone).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 8),
		}),
		batchWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "polyroot_server_login_batch_wait_seconds", Help: "Time from a pass 2 entering the batch queue to its batch's result: the wait batching adds, and the check.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 14),
		}),
	}
	own := []prometheus.Collector{m.logins, m.latency, m.requests, m.admin, m.dtaUp, m.limited, m.refused, m.budget, m.revokePending, m.batchSize, m.batchWait}
	m.registry = httpx.NewRegistry(own...)
	if reg != nil {
		reg.MustRegister(own...)
	}
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

func (m *metrics) login(step, result string, d time.Duration) {
	m.logins.WithLabelValues(step, result).Inc()
	m.latency.WithLabelValues(step).Observe(d.Seconds())
}
