package server

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.mongodb.org/mongo-driver/v2/event"
)

// Metrics are the server's Prometheus metrics, on a registry of their own (one
// per server, so tests can run several). Labels hold route templates, methods,
// statuses and database command names — never ids or anything a client typed.
type Metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	dbOps    *prometheus.HistogramVec

	// series remembers each request series' counter and histogram: looking
	// them up by label values hashes and checks the values on every request.
	seriesMu sync.RWMutex
	series   map[seriesKey]requestSeries
}

type seriesKey struct {
	route, method string
	status        int
}

type requestSeries struct {
	count   prometheus.Counter
	latency prometheus.Observer
}

// NewMetrics creates the metrics, with the Go runtime and process collectors.
func NewMetrics() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		series:   map[seriesKey]requestSeries{},
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crm_http_requests_total",
			Help: "HTTP requests answered, by route template, method and status.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "crm_http_request_duration_seconds",
			Help:    "Time to answer HTTP requests, by route template, method and status.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method", "status"}),
		dbOps: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "crm_db_operation_duration_seconds",
			Help:    "Time of database commands, by command name and outcome.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"command", "outcome"}),
	}
	m.registry.MustRegister(m.requests, m.latency, m.dbOps,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// countPasswordHashes publishes the count of password hashes computed, which
// the handlers keep. Metrics given to a second server keep counting the
// first server's.
func (m *Metrics) countPasswordHashes(count func() uint64) {
	_ = m.registry.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "crm_password_hashes_total",
		Help: "Password hashes computed (argon2id or bcrypt), to set a password or to check one at sign-in.",
	}, func() float64 { return float64(count()) }))
}

// CommandMonitor feeds database command timings into the metrics; pass it to
// the store.
func (m *Metrics) CommandMonitor() *event.CommandMonitor {
	return &event.CommandMonitor{
		Succeeded: func(_ context.Context, e *event.CommandSucceededEvent) {
			m.dbOps.WithLabelValues(e.CommandName, "ok").Observe(e.Duration.Seconds())
		},
		Failed: func(_ context.Context, e *event.CommandFailedEvent) {
			m.dbOps.WithLabelValues(e.CommandName, "error").Observe(e.Duration.Seconds())
		},
	}
}

// observeRequest records one answered request.
func (m *Metrics) observeRequest(route, method string, status int, took time.Duration) {
	key := seriesKey{route, method, status}
	m.seriesMu.RLock()
	s, ok := m.series[key]
	m.seriesMu.RUnlock()
	if !ok {
		code := strconv.Itoa(status)
		s = requestSeries{m.requests.WithLabelValues(route, method, code), m.latency.WithLabelValues(route, method, code)}
		m.seriesMu.Lock()
		m.series[key] = s
		m.seriesMu.Unlock()
	}
	s.count.Inc()
	s.latency.Observe(took.Seconds())
}

// handler serves the metrics in Prometheus' text format.
func (m *Metrics) handler() echo.HandlerFunc {
	return echo.WrapHandler(promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{}))
}

// methodLabel keeps the method label to the methods HTTP defines.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return method
	}
	return "OTHER"
}
