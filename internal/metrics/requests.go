package metrics

import (
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// requestSeries remembers the children of the request metrics for the
// label values of the versioned files' common answers, so that a cache hit
// costs atomic adds and no label lookup (WithLabelValues hashes the
// values, takes a lock and allocates on every call). A child is resolved
// the first time it is used, not in advance, so /metrics shows exactly the
// series it would without this cache.
type requestSeries struct {
	count    [len(seriesArtifacts)][len(seriesCaches)]atomic.Pointer[prometheus.Counter] // status 200
	duration [len(seriesArtifacts)]atomic.Pointer[prometheus.Observer]
	bytes    [len(seriesArtifacts)]atomic.Pointer[prometheus.Counter]
}

// The label values requestSeries keeps; others take WithLabelValues.
var (
	seriesArtifacts = [...]string{"info", "mod", "zip", "list", "latest", "sumdb"}
	seriesCaches    = [...]string{"", "hit", "miss", "stale"}
)

func seriesArtifact(artifact string) int {
	for i, a := range seriesArtifacts {
		if a == artifact {
			return i
		}
	}
	return -1
}

func seriesCache(cache string) int {
	for i, c := range seriesCaches {
		if c == cache {
			return i
		}
	}
	return -1
}

// child returns *p, first storing resolve() there.
func child[T any](p *atomic.Pointer[T], resolve func() T) T {
	if c := p.Load(); c != nil {
		return *c
	}
	c := resolve()
	p.Store(&c) // a racing store holds the same child
	return c
}

// requestCounter returns the child of modgate_requests_total.
func (m *Metrics) requestCounter(a int, artifact string, status int, cache string) prometheus.Counter {
	c := seriesCache(cache)
	if a < 0 || c < 0 || status != 200 {
		return m.requests.WithLabelValues(artifact, strconv.Itoa(status), cache)
	}
	return child(&m.series.count[a][c], func() prometheus.Counter {
		return m.requests.WithLabelValues(artifact, "200", cache)
	})
}

// requestObserver returns the child of modgate_request_duration_seconds.
func (m *Metrics) requestObserver(a int, artifact string) prometheus.Observer {
	if a < 0 {
		return m.requestDuration.WithLabelValues(artifact)
	}
	return child(&m.series.duration[a], func() prometheus.Observer {
		return m.requestDuration.WithLabelValues(artifact)
	})
}

// bytesCounter returns the child of modgate_bytes_served_total.
func (m *Metrics) bytesCounter(a int, artifact string) prometheus.Counter {
	if a < 0 {
		return m.bytesServed.WithLabelValues(artifact)
	}
	return child(&m.series.bytes[a], func() prometheus.Counter {
		return m.bytesServed.WithLabelValues(artifact)
	})
}
