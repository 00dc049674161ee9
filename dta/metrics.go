package dta

import (
	"errors"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/polyroot/polyroot/internal/httpx"
)

// metrics are the DTA's Prometheus metrics. Labels carry kinds, codes and routes only:
// never an identity, a ticket or a share.
type metrics struct {
	registry *prometheus.Registry
	issuance *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	requests *prometheus.CounterVec
	pruned   prometheus.Counter
	limited  prometheus.Counter // requests refused 429 by the rate limiter
	refused  prometheus.Counter // connections closed for the per-client bound (httpx.ServeOptions)
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		issuance: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "polyroot_dta_issuance_total", Help: "wire.DTAShare, permit and revocation requests by kind and result code.",
		}, []string{"kind", "result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "polyroot_dta_issuance_seconds", Help: "Time to answer an issuance request, logging included.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"kind"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "polyroot_dta_http_requests_total", Help: "HTTP requests by route and status.",
		}, []string{"route", "status"}),
		pruned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "polyroot_dta_records_pruned_total", Help: "Records of used ticket nonces forgotten after their ticket expired.",
		}),
		limited: httpx.NewThrottledCounter("dta"),
		refused: httpx.NewRefusedConnectionsCounter("dta"),
	}
	own := []prometheus.Collector{m.issuance, m.latency, m.requests, m.pruned, m.limited, m.refused}
	m.registry = httpx.NewRegistry(own...)
	if reg != nil {
		reg.MustRegister(own...)
	}
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

func (m *metrics) issued(kind string, err error, d time.Duration) {
	result := "ok"
	var e *httpx.Error
	if errors.As(err, &e) {
		result = e.Code
	} else if err != nil {
		result = "internal"
	}
	m.issuance.WithLabelValues(kind, result).Inc()
	if err == nil {
		m.latency.WithLabelValues(kind).Observe(d.Seconds())
	}
}
