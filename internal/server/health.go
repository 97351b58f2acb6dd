package server

import (
	"context"
	"net/http"

	"github.com/modgate/modgate/internal/health"
)

// Readiness, wired here: what /readyz checks is a list of named
// dependencies (package health). The server itself is one ("serving":
// started and not draining), the vulnerability database another when one
// is configured, the module store when it has a Ready method (S3), the
// database of the shared state when there is one.

// buildHealth registers the checks New's configuration implies, then the
// ones the options add.
func (s *Server) buildHealth(o options) {
	s.health = health.NewMonitor(s.log, 0)
	s.health.Add(health.Check{Name: "serving", Checker: health.CheckerFunc(func(context.Context) error {
		if !s.ready.Load() {
			return health.Reasonf(nil, "starting or shutting down")
		}
		return nil
	})})
	if s.policy != nil && s.policy.vulns != nil {
		v := s.policy.vulns
		s.health.Add(health.Check{Name: "vulndb", Checker: health.CheckerFunc(func(context.Context) error {
			if !v.Status().Loaded {
				return health.Reasonf(nil, "the vulnerability database is not loaded yet")
			}
			return nil
		})})
	}
	// The module store, when it can be probed (S3): a replica that cannot
	// reach it serves only its local cache, and leaves the balancer.
	if _, ok := s.store.(interface{ Ready(context.Context) error }); ok {
		s.health.Add(health.Check{Name: "storage", Checker: health.CheckerFunc(func(context.Context) error {
			if err := s.storageReadiness(); err != nil { // storage.go
				return health.Reasonf(err, "the %s store cannot be reached", s.cfg.Storage.Type)
			}
			return nil
		})})
	}
	// The shared state's database: optional, because a replica keeps
	// serving what it has without it (README: "Running replicas"), and
	// every replica would leave the balancer at once if it were required.
	if db := s.pg; db != nil {
		s.health.Add(health.Check{Name: "postgres", Optional: true, Checker: health.CheckerFunc(func(ctx context.Context) error {
			if err := db.Ping(ctx); err != nil {
				return health.Reasonf(err, "the database cannot be reached")
			}
			return nil
		})})
	}
	for _, c := range o.checks {
		s.health.Add(c)
	}
}

// serveReady answers /readyz: 200 when every required dependency is ready,
// else 503; the body names each dependency and its state, one a line.
func (s *Server) serveReady(w http.ResponseWriter, r *http.Request) {
	rep := s.health.Check(r.Context())
	status := http.StatusOK
	if !rep.Ready() {
		status = http.StatusServiceUnavailable
	}
	writeText(w, status, rep.String())
}
