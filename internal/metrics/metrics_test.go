package metrics

import (
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestMetricsExposed(t *testing.T) {
	m := New()
	m.Request("zip", 200, "hit", 1234, time.Millisecond)
	m.Request("zip", 200, "hit", 1, time.Millisecond)
	m.ObserveUpstream("https://up.example", "timeout", time.Second)
	m.FillStarted("mod")
	m.FillStarted("zip")
	m.FillDone("zip", errors.New("boom"))
	m.VerificationFailed("zip")
	m.SecurityEvent("fork")

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`modgate_requests_total{artifact="zip",cache="hit",status="200"} 2`,
		`modgate_bytes_served_total{artifact="zip"} 1235`,
		`modgate_upstream_errors_total{result="timeout",upstream="https://up.example"} 1`,
		`modgate_fills_in_flight 1`,
		`modgate_fills_total{artifact="zip",result="error"} 1`,
		`modgate_verification_failures_total{artifact="zip"} 1`,
		`modgate_sumdb_security_events_total 1`,
		`modgate_fill_queue_depth 0`,
		`modgate_fill_refusals_total 0`,
		`go_goroutines`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
