package httpx

import (
	"net/http"
	"strconv"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// NewRegistry returns a Prometheus registry with the Go runtime and process collectors
// and the service's own collectors.
func NewRegistry(own ...prometheus.Collector) *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	r.MustRegister(own...)
	return r
}

// CountRequests serves router and counts its requests in counter, labelled "route"
// (the route's template, not the path, so labels stay bounded) and "status".
func CountRequests(router *mux.Router, counter *prometheus.CounterVec) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		router.ServeHTTP(sw, req)
		route := "unmatched"
		var match mux.RouteMatch
		if router.Match(req, &match) && match.Route != nil {
			if tpl, err := match.Route.GetPathTemplate(); err == nil {
				route = tpl
			}
		}
		counter.WithLabelValues(route, strconv.Itoa(sw.status)).Inc()
	})
}
