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

func TestOpsGauges(t *testing.T) {
	m := New()
	scrape := func() string {
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		return rec.Body.String()
	}
	// Present from the start, at zero, so alerts and dashboards find them.
	for _, want := range []string{"modgate_storage_free_bytes 0", "modgate_storage_size_bytes 0", "modgate_ready 0"} {
		if body := scrape(); !strings.Contains(body, want+"\n") {
			t.Errorf("fresh /metrics lacks %q", want)
		}
	}
	ready := false
	m.Readiness(func() bool { return ready })
	m.StorageSpace(1<<30, 4<<30)
	ready = true
	body := scrape()
	for _, want := range []string{"modgate_storage_free_bytes 1.073741824e+09", "modgate_storage_size_bytes 4.294967296e+09", "modgate_ready 1"} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	ready = false
	if body := scrape(); !strings.Contains(body, "modgate_ready 0\n") {
		t.Error("modgate_ready did not follow the readiness function to 0")
	}
}
