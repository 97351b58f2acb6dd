package server

import (
	"net/http"

	"github.com/modgate/modgate/internal/auth"
	"github.com/modgate/modgate/internal/httperr"
	"github.com/modgate/modgate/internal/reqlog"
)

// Operations endpoints, wired here: /metrics (readiness: health.go).
//
// /metrics shows rule names, upstream URLs and module traffic, so it is
// not for everyone: metrics.access decides who may read it on the main
// listener (by default the "metrics" or "admin" scope once anonymous
// access is off), and metrics.listen moves it to a listener of its own,
// protected by the network, without authentication.

// serveMetrics serves /metrics on the main listener, after checking the
// metrics scope when metrics.access asks for it.
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	if s.cfg.MetricsScoped() {
		if err := s.authn.Authorize(auth.FromContext(r.Context()), auth.Metrics, ""); err != nil {
			s.metrics.AuthRefusal(httperr.Status(err))
			httperr.Write(w, r, err)
			return
		}
	}
	s.metrics.Handler().ServeHTTP(w, r)
}

// metricsHandler is the whole of the metrics.listen listener: GET /metrics,
// with the request log and panic recovery but no authentication.
func (s *Server) metricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.tag("metrics", s.metrics.Handler().ServeHTTP))
	var h http.Handler = mux
	h = reqlog.Middleware(s.log, s.metrics)(h)
	return recoverPanics(s.log)(h)
}
