package metrics

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// opsMetrics are the gauges that alerts about the process itself read:
// the space left where modules are stored and whether the server wants
// traffic.
type opsMetrics struct {
	storageFree prometheus.Gauge
	storageSize prometheus.Gauge
	// readiness is asked at every scrape, so a scrape during the drain
	// period already sees 0.
	readiness *atomic.Pointer[func() bool]
}

func newOpsMetrics(reg *prometheus.Registry) opsMetrics {
	readiness := new(atomic.Pointer[func() bool])
	o := opsMetrics{
		readiness: readiness,
		storageFree: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "modgate_storage_free_bytes",
			Help: "Bytes available to modgate on the file system of the data directory, updated every 30 seconds.",
		}),
		storageSize: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "modgate_storage_size_bytes",
			Help: "Size in bytes of the file system of the data directory, updated every 30 seconds.",
		}),
	}
	ready := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "modgate_ready",
		Help: "Whether /readyz answers 200 (1) or 503 (0: starting, draining, or something configured is not loaded yet).",
	}, func() float64 {
		if f := readiness.Load(); f != nil && (*f)() {
			return 1
		}
		return 0
	})
	reg.MustRegister(o.storageFree, o.storageSize, ready)
	return o
}

// StorageSpace records the free and total bytes of the file system that
// holds the data directory.
func (m *Metrics) StorageSpace(free, size uint64) {
	m.ops.storageFree.Set(float64(free))
	m.ops.storageSize.Set(float64(size))
}

// Readiness sets the function modgate_ready asks at every scrape: true
// when /readyz answers 200. Until it is set, modgate_ready is 0. It must
// be cheap and safe for concurrent use.
func (m *Metrics) Readiness(ready func() bool) { m.ops.readiness.Store(&ready) }
