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
	upstreamBytes    *prometheus.CounterVec   // upstream
	verifyFailures   *prometheus.CounterVec   // artifact
	securityEvents   prometheus.Counter
	movedVersions    *prometheus.CounterVec
	policyDecisions  *prometheus.CounterVec
	auditErrors      *prometheus.CounterVec
	authRefusals     *prometheus.CounterVec
	vulndbEntries    prometheus.Gauge
	vulndbSynced     prometheus.Gauge
	fillsInFlight    prometheus.Gauge
	fills            *prometheus.CounterVec // artifact, result
	prefetched       *prometheus.CounterVec // artifact
	fillQueue        prometheus.Gauge
	fillRefusals     prometheus.Counter
	upstreamUp       *prometheus.GaugeVec // upstream
	ops              opsMetrics
	series           requestSeries // resolved children of requests, requestDuration, bytesServed
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
		upstreamBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "modgate_upstream_bytes_total",
			Help: "Body bytes received from upstreams (module files, lists, checksum database), by upstream.",
		}, []string{"upstream"}),
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
		movedVersions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "modgate_moved_versions_total",
			Help: "Copies of an already recorded private module version refused because they hash differently (a moved Git tag), by file.",
		}, []string{"file"}),
		policyDecisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "modgate_policy_decisions_total",
			Help: "Requests a policy rule blocked or warned about (dry-run included), by rule and verdict.",
		}, []string{"rule", "verdict"}),
		auditErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "modgate_audit_errors_total",
			Help: "Audit log problems, by kind (dropped: a record was lost; unwritable: a write failed; anchor: a checkpoint an outside anchor did not receive).",
		}, []string{"kind"}),
		authRefusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "modgate_auth_refusals_total",
			Help: "Requests refused by authentication or authorisation, by status.",
		}, []string{"status"}),
		vulndbEntries: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "modgate_vulndb_entries",
			Help: "Entries in the vulnerability database copy in use.",
		}),
		vulndbSynced: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "modgate_vulndb_last_sync_timestamp_seconds",
			Help: "When the vulnerability database was last synced successfully (Unix time; 0 never).",
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
		fillQueue: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "modgate_fill_queue_depth",
			Help: "Upstream fetches waiting for a slot (upstream.max_concurrent_fills) now.",
		}),
		fillRefusals: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "modgate_fill_refusals_total",
			Help: "Client requests answered 503 because no upstream fetch slot freed up within upstream.fill_queue_timeout.",
		}),
		upstreamUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "modgate_upstream_up",
			Help: "Whether an upstream is considered healthy (1) or down (0): down after repeated failures, up again when it answers.",
		}, []string{"upstream"}),
	}
	m.reg.MustRegister(m.upstreamBytes)
	m.reg.MustRegister(m.fillQueue, m.fillRefusals, m.upstreamUp, m.prefetched, m.requests, m.requestDuration, m.bytesServed, m.upstreamDuration,
		m.upstreamErrors, m.verifyFailures, m.securityEvents, m.fillsInFlight, m.fills,
		m.movedVersions, m.policyDecisions, m.auditErrors, m.authRefusals, m.vulndbEntries, m.vulndbSynced,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.ops = newOpsMetrics(m.reg)
	m.initZero()
	return m
}

// Label values known in advance, created at zero by New so that every
// family the README lists is in the first scrape and an alert on
// increase() sees the first event. Policy rules are known from the
// configuration (PolicyRules).
var (
	verifiedArtifacts = []string{"info", "mod", "zip"}
	movedFiles        = []string{"go.mod", "zip", "go.mod in zip"}
	auditErrorKinds   = []string{"dropped", "unwritable", "anchor"}
	refusalStatuses   = []int{401, 403, 404, 429}
	policyVerdicts    = []string{"block", "warn", "dry-run"}
)

func (m *Metrics) initZero() {
	for _, a := range verifiedArtifacts {
		m.verifyFailures.WithLabelValues(a)
		m.fills.WithLabelValues(a, "ok")
		m.fills.WithLabelValues(a, "error")
	}
	// Prefetch fetches go.mod files only.
	m.prefetched.WithLabelValues("mod")
	for _, f := range movedFiles {
		m.movedVersions.WithLabelValues(f)
	}
	for _, k := range auditErrorKinds {
		m.auditErrors.WithLabelValues(k)
	}
	for _, st := range refusalStatuses {
		m.authRefusals.WithLabelValues(strconv.Itoa(st))
	}
}

// PolicyRules creates the decision counters of the named rules at zero,
// for every verdict, so that the first block of a new rule is an increase.
// Call it whenever the policy is (re)loaded; counters of rules that are
// gone stay.
func (m *Metrics) PolicyRules(names []string) {
	for _, n := range names {
		for _, v := range policyVerdicts {
			m.policyDecisions.WithLabelValues(n, v)
		}
	}
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
	a := seriesArtifact(artifact)
	m.requestCounter(a, artifact, status, cache).Inc()
	m.requestObserver(a, artifact).Observe(d.Seconds())
	if bytes > 0 {
		m.bytesCounter(a, artifact).Add(float64(bytes))
	}
}

// ObserveUpstreamBytes counts body bytes received from an upstream.
func (m *Metrics) ObserveUpstreamBytes(upstream string, n int64) {
	m.upstreamBytes.WithLabelValues(upstream).Add(float64(n))
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

// MovedVersion counts a refused copy of a recorded version (file is
// "go.mod", "zip" or "go.mod in zip").
func (m *Metrics) MovedVersion(file string) { m.movedVersions.WithLabelValues(file).Inc() }

// PolicyDecision counts a rule that blocked or warned (verdict "block",
// "warn" or "dry-run").
func (m *Metrics) PolicyDecision(rule, verdict string) {
	m.policyDecisions.WithLabelValues(rule, verdict).Inc()
}

// AuditError counts an audit log problem: kind "dropped", "unwritable" or
// "anchor" (a checkpoint an outside anchor did not receive).
func (m *Metrics) AuditError(kind string) { m.auditErrors.WithLabelValues(kind).Inc() }

// AuthRefusal counts a request refused with status (401, 403, 404 for a
// hidden module, 429).
func (m *Metrics) AuthRefusal(status int) { m.authRefusals.WithLabelValues(strconv.Itoa(status)).Inc() }

// VulnDB records the state of the vulnerability database copy.
func (m *Metrics) VulnDB(entries int, lastSuccess time.Time) {
	m.vulndbEntries.Set(float64(entries))
	if !lastSuccess.IsZero() {
		m.vulndbSynced.Set(float64(lastSuccess.Unix()))
	}
}

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

// FillQueue implements mirror.LimitObserver.
func (m *Metrics) FillQueue(depth int) { m.fillQueue.Set(float64(depth)) }

// FillRefused implements mirror.LimitObserver.
func (m *Metrics) FillRefused() { m.fillRefusals.Inc() }

// UpstreamHealth records whether an upstream is healthy; it is given to
// upstream.Build as the health hook.
func (m *Metrics) UpstreamHealth(upstream string, up bool) {
	v := 0.0
	if up {
		v = 1
	}
	m.upstreamUp.WithLabelValues(upstream).Set(v)
}

// Prefetched implements mirror.Observer.
func (m *Metrics) Prefetched(artifact string) { m.prefetched.WithLabelValues(artifact).Inc() }

// VerificationFailed implements mirror.Observer.
func (m *Metrics) VerificationFailed(artifact string) {
	m.verifyFailures.WithLabelValues(artifact).Inc()
}
