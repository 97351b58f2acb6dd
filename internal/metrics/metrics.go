// Package metrics owns modgate's Prometheus metrics and the /metrics
// handler. Components do not import Prometheus: they receive small hooks
// (mirror.Observer, upstream observe functions) that this package implements,
// so the hot path pays for a few atomic adds and nothing else.
//
// Metrics live in their own registry (no package-level state), which also
// carries the Go runtime and process collectors.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds every metric modgate exports. Create it with New.
type Metrics struct {
	reg *prometheus.Registry

	requests         *prometheus.CounterVec   // artifact, status, cache
	requestDuration  *prometheus.HistogramVec // artifact
	bytesServed      *prometheus.CounterVec   // artifact
	upstreamDuration *prometheus.HistogramVec // upstream, result
	upstreamErrors   *prometheus.CounterVec   // upstream, result
	verifyFailures   *prometheus.CounterVec   // artifact
	securityEvents   prometheus.Counter
	fillsInFlight    prometheus.Gauge
	fills            *prometheus.CounterVec // artifact, result
	prefetched       *prometheus.CounterVec // artifact
}

// New creates the metrics and registers them in a fresh registry.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "modgate_requests_total",
			Help: "Requests answered, by artifact (list, latest, info, mod, zip, sumdb, other), HTTP status and cache result (hit, miss, stale, none).",
		}, []string{"artifact", "status", "cache"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "modgate_request_duration_seconds",
			Help:    "Time to answer a request, by artifact.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"artifact"}),
		bytesServed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "modgate_bytes_served_total",
			Help: "Response body bytes written, by artifact.",
		}, []string{"artifact"}),
		upstreamDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "modgate_upstream_request_duration_seconds",
			Help:    "Time to the response header of upstream requests, by upstream and result (ok, not_found, error, timeout).",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 10),
		}, []string{"upstream", "result"}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "modgate_upstream_errors_total",
			Help: "Upstream requests that failed (error or timeout), by upstream.",
		}, []string{"upstream", "result"}),
		verifyFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "modgate_verification_failures_total",
			Help: "Files from an upstream refused because they failed verification, by artifact.",
		}, []string{"artifact"}),
		securityEvents: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "modgate_sumdb_security_events_total",
			Help: "Checksum database inconsistencies detected (forked or rolled-back tree, hash mismatch).",
		}),
		fillsInFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "modgate_fills_in_flight",
			Help: "Upstream fetches of versioned files running now.",
		}),
		fills: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "modgate_fills_total",
			Help: "Upstream fetches of versioned files, by artifact and result (ok, error).",
		}, []string{"artifact", "result"}),
		prefetched: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "modgate_prefetched_total",
			Help: "Files fetched and stored by requirement prefetch rather than for a client, by artifact.",
		}, []string{"artifact"}),
	}
	m.reg.MustRegister(m.prefetched, m.requests, m.requestDuration, m.bytesServed, m.upstreamDuration,
		m.upstreamErrors, m.verifyFailures, m.securityEvents, m.fillsInFlight, m.fills,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry returns the registry, for tests and for components that add
// their own collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Request records one answered request.
func (m *Metrics) Request(artifact string, status int, cache string, bytes int64, d time.Duration) {
	m.requests.WithLabelValues(artifact, strconv.Itoa(status), cache).Inc()
	m.requestDuration.WithLabelValues(artifact).Observe(d.Seconds())
	if bytes > 0 {
		m.bytesServed.WithLabelValues(artifact).Add(float64(bytes))
	}
}

// ObserveUpstream records one upstream attempt; result is ok, not_found,
// error or timeout.
func (m *Metrics) ObserveUpstream(upstream, result string, d time.Duration) {
	m.upstreamDuration.WithLabelValues(upstream, result).Observe(d.Seconds())
	if result == "error" || result == "timeout" {
		m.upstreamErrors.WithLabelValues(upstream, result).Inc()
	}
}

// SecurityEvent counts a checksum database security event.
func (m *Metrics) SecurityEvent(string) { m.securityEvents.Inc() }

// FillStarted implements mirror.Observer.
func (m *Metrics) FillStarted(string) { m.fillsInFlight.Inc() }

// FillDone implements mirror.Observer.
func (m *Metrics) FillDone(artifact string, err error) {
	m.fillsInFlight.Dec()
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.fills.WithLabelValues(artifact, result).Inc()
}

// Prefetched implements mirror.Observer.
func (m *Metrics) Prefetched(artifact string) { m.prefetched.WithLabelValues(artifact).Inc() }

// VerificationFailed implements mirror.Observer.
func (m *Metrics) VerificationFailed(artifact string) {
	m.verifyFailures.WithLabelValues(artifact).Inc()
}
