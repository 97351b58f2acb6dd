package metrics

import "github.com/prometheus/client_golang/prometheus"

// Integrity holds the metrics of stored-file checks (the serve path and
// the background scrub) and purges. Create it once per Metrics with
// NewIntegrity; every series starts at zero.
type Integrity struct {
	scrubbed *prometheus.CounterVec // file, status
	corrupt  *prometheus.CounterVec // found_by, file
	purges   prometheus.Counter
}

var (
	integrityFiles    = []string{"mod", "zip"}
	integrityStatuses = []string{"ok", "corrupt", "missing", "unverifiable"}
	integrityFinders  = []string{"serve", "scrub"}
)

// NewIntegrity creates and registers the integrity metrics.
func (m *Metrics) NewIntegrity() *Integrity {
	in := &Integrity{
		scrubbed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "modgate_scrub_files_total",
			Help: "Stored files the background scrub checked, by file (mod, zip) and status (ok, corrupt, missing, unverifiable).",
		}, []string{"file", "status"}),
		corrupt: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "modgate_store_corrupt_total",
			Help: "Corrupt stored files found and quarantined, by who found them (serve: the check on a hit; scrub: the background scrub) and file.",
		}, []string{"found_by", "file"}),
		purges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "modgate_purges_total",
			Help: "Purges of module versions through the admin API.",
		}),
	}
	m.reg.MustRegister(in.scrubbed, in.corrupt, in.purges)
	for _, f := range integrityFiles {
		for _, s := range integrityStatuses {
			in.scrubbed.WithLabelValues(f, s)
		}
		for _, by := range integrityFinders {
			in.corrupt.WithLabelValues(by, f)
		}
	}
	return in
}

// Scrubbed counts one file checked by the scrub.
func (in *Integrity) Scrubbed(file, status string) {
	in.scrubbed.WithLabelValues(file, status).Inc()
	if status == "corrupt" {
		in.corrupt.WithLabelValues("scrub", file).Inc()
	}
}

// CorruptServed counts a corrupt file found on the serve path.
func (in *Integrity) CorruptServed(file string) { in.corrupt.WithLabelValues("serve", file).Inc() }

// Purged counts a purge through the admin API.
func (in *Integrity) Purged() { in.purges.Inc() }
