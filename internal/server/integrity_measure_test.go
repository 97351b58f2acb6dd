package server_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/modgate/modgate/internal/config"
	"github.com/modgate/modgate/internal/testenv"
)

// TestMeasureVerify measures `modgate verify` on a warmed store: N
// modules (MODGATE_MEASURE_VERIFY=N, default 300) with a go.mod and a zip
// of about MODGATE_MEASURE_ZIP_KB kilobytes (default 64) each, every one
// verified against the checksum database's lookups cached in the store.
// It is a measurement, not a check: it runs only when
// MODGATE_MEASURE_VERIFY is set, and prints files/s and MB/s.
func TestMeasureVerify(t *testing.T) {
	nEnv := os.Getenv("MODGATE_MEASURE_VERIFY")
	if nEnv == "" {
		t.Skip("a measurement: set MODGATE_MEASURE_VERIFY=N to run it")
	}
	n, _ := strconv.Atoi(nEnv)
	kb := 64
	if v, err := strconv.Atoi(os.Getenv("MODGATE_MEASURE_ZIP_KB")); err == nil {
		kb = v
	}
	var mods []*testenv.Module
	for i := range n {
		m, err := testenv.LargeModule(fmt.Sprintf("example.com/measure/m%04d", i), "v1.0.0", kb<<10)
		if err != nil {
			t.Fatal(err)
		}
		mods = append(mods, m)
	}
	up := testenv.NewUpstream(t, mods)
	data := filepath.Join(t.TempDir(), "data")
	in := startModgate(t, up, func(c *config.Config) { c.DataDir = data })
	for _, m := range mods {
		for _, ext := range []string{"mod", "zip"} {
			if status, _, _ := in.get(t, "/"+m.Path+"/@v/"+m.Version+"."+ext); status != http.StatusOK {
				t.Fatalf("warming %s: %d", m, status)
			}
		}
	}
	in.shutdown(t)
	cfgFile := maintenanceConfig(t, up, data)
	for round := range 2 {
		code, rep := runVerify(t, cfgFile)
		if code != 0 || rep.Summary.Files != 2*n {
			t.Fatalf("verify: exit %d, %+v", code, rep.Summary)
		}
		s := rep.Summary.Duration.Seconds()
		t.Logf("round %d: verify of %d files (%d MB) in %.2fs: %.0f files/s, %.1f MB/s", round, rep.Summary.Files,
			rep.Summary.Bytes>>20, s, float64(rep.Summary.Files)/s, float64(rep.Summary.Bytes)/(1<<20)/s)
	}
}
