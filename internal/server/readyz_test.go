package server_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/config"
	"github.com/modgate/modgate/internal/health"
	"github.com/modgate/modgate/internal/server"
	"github.com/modgate/modgate/internal/testenv"
)

// switchable is a dependency a test turns off and on.
type switchable struct{ down atomic.Bool }

func (d *switchable) Ready(context.Context) error {
	if d.down.Load() {
		return errors.New("dial tcp 10.0.0.7:5432: connection refused (password=hunter2)")
	}
	return nil
}

// TestReadyzReportsDependencies: /readyz names every dependency with its
// state; a required one failing makes it 503 (and back to 200 when it
// recovers, without a restart), an optional one failing leaves it 200,
// "degraded", and neither publishes the dependency's error text.
func TestReadyzReportsDependencies(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	var store, db switchable
	in := startWith(t, config.Default(), up, nil,
		server.WithCheck(health.Check{Name: "s3", Checker: &store}),
		server.WithCheck(health.Check{Name: "postgres", Checker: &db, Optional: true}))
	pollUntil(t, 5*time.Second, func() string {
		if code, body, _ := in.get(t, "/readyz"); code != http.StatusOK {
			return string(body)
		}
		return ""
	})
	check := func(wantCode int, want string) {
		t.Helper()
		code, body, h := in.get(t, "/readyz")
		if code != wantCode || strings.TrimSpace(string(body)) != want {
			t.Errorf("/readyz = %d\n%s\nwant %d\n%s", code, body, wantCode, want)
		}
		if strings.Contains(string(body), "hunter2") || strings.Contains(string(body), "10.0.0.7") {
			t.Errorf("/readyz publishes a dependency's error: %s", body)
		}
		if h.Get("Cache-Control") != "no-store" {
			t.Errorf("/readyz Cache-Control = %q, want no-store", h.Get("Cache-Control"))
		}
	}
	check(200, "ready\nserving: ok\ns3: ok\npostgres: ok")
	db.down.Store(true)
	check(200, "ready\nserving: ok\ns3: ok\npostgres: degraded (unavailable)")
	store.down.Store(true)
	check(503, "not ready\nserving: ok\ns3: failing (unavailable)\npostgres: degraded (unavailable)")
	store.down.Store(false)
	db.down.Store(false)
	check(200, "ready\nserving: ok\ns3: ok\npostgres: ok")
}

// TestBalancerSkipsUnreadyReplica: behind HAProxy, a replica whose
// required dependency fails leaves the balancer within about a second, the
// go command keeps working through the other replica, and the replica
// comes back once its dependency does.
func TestBalancerSkipsUnreadyReplica(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	var dep switchable
	a := startWith(t, config.Default(), up, nil, server.WithCheck(health.Check{Name: "s3", Checker: &dep}))
	b := startModgate(t, up, nil)
	for _, in := range []*instance{a, b} {
		pollUntil(t, 5*time.Second, func() string {
			if code, body, _ := in.get(t, "/readyz"); code != http.StatusOK {
				return string(body)
			}
			return ""
		})
	}
	lb := testenv.NewBalancer(t, strings.TrimPrefix(a.URL, "http://"), strings.TrimPrefix(b.URL, "http://"))
	lb.WaitState(t, "b1", "UP", 5*time.Second)
	lb.WaitState(t, "b2", "UP", 5*time.Second)

	dep.down.Store(true)
	lb.WaitState(t, "b1", "DOWN", 3*time.Second)
	env := testenv.GoEnv(t, lb.URL, up.VerifierKey())
	mustGo(t, t.TempDir(), env, "mod", "download", "example.com/hello@v1.0.0", "example.com/greet@v1.0.0")
	if a.stored("example.com/hello/@v/v1.0.0.zip") || !b.stored("example.com/hello/@v/v1.0.0.zip") {
		t.Errorf("with replica A unready, stored on A %v, on B %v; want B only",
			a.stored("example.com/hello/@v/v1.0.0.zip"), b.stored("example.com/hello/@v/v1.0.0.zip"))
	}
	dep.down.Store(false)
	lb.WaitState(t, "b1", "UP", 3*time.Second)
}
