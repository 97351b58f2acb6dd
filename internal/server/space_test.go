package server_test

import (
	"fmt"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/config"
	"github.com/modgate/modgate/internal/testenv"
)

// TestStorageAndReadyMetrics: a serving modgate exports the free space of
// its data directory's file system (what the "disk nearly full" alert
// reads) and modgate_ready 1, and modgate_ready turns 0 when /readyz does.
func TestStorageAndReadyMetrics(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	in := startModgate(t, up, func(c *config.Config) { c.Server.DrainPeriod = config.Duration{Duration: 3 * time.Second} })
	gauge := func(name string) (float64, bool) {
		_, body, _ := in.get(t, "/metrics")
		m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindSubmatch(body)
		if m == nil {
			return 0, false
		}
		v, err := strconv.ParseFloat(string(m[1]), 64)
		return v, err == nil
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(in.DataDir, &st); err != nil {
		t.Fatal(err)
	}
	size := float64(st.Blocks) * float64(st.Bsize)
	pollUntil(t, 5*time.Second, func() string {
		free, ok1 := gauge("modgate_storage_free_bytes")
		got, ok2 := gauge("modgate_storage_size_bytes")
		if !ok1 || !ok2 || got != size || free <= 0 || free > size {
			return fmt.Sprintf("modgate_storage_free_bytes %v (%v), modgate_storage_size_bytes %v (%v); want 0 < free <= size = %v", free, ok1, got, ok2, size)
		}
		return ""
	})
	if v, ok := gauge("modgate_ready"); !ok || v != 1 {
		t.Errorf("modgate_ready = %v (present %v) while serving, want 1", v, ok)
	}
	if code, _, _ := in.get(t, "/readyz"); code != 200 {
		t.Errorf("/readyz = %d, want 200", code)
	}
	// Shutting down: /readyz answers 503 through the drain period, and so
	// does the gauge (scraped on the same listener, still serving).
	in.stop()
	pollUntil(t, 2*time.Second, func() string {
		code, _, _ := in.get(t, "/readyz")
		v, ok := gauge("modgate_ready")
		if code != 503 || !ok || v != 0 {
			return fmt.Sprintf("draining: /readyz = %d, modgate_ready = %v (present %v); want 503 and 0", code, v, ok)
		}
		return ""
	})
}
