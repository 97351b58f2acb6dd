package server_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/modgate/modgate/internal/config"
	"github.com/modgate/modgate/internal/integrity"
	"github.com/modgate/modgate/internal/testenv"
)

// TestVerifySharedState: with state.postgres, the hash of a private
// module lives in the database's ledger, not in a file under data_dir.
// modgate verify reads it there, so a flipped bit in the stored zip is
// reported corrupt (not unverifiable), and --repair records and restores
// it through the shared ledger.
func TestVerifySharedState(t *testing.T) {
	dsn := testenv.PostgresDSN(t)
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	data := filepath.Join(t.TempDir(), "data")
	const private = "example.com/greet"
	state := sharedState(t, dsn)
	in := startModgate(t, up, func(c *config.Config) {
		c.DataDir = data
		c.SumDB.NoSumDB = []string{private}
		state(c)
	})
	mustGo(t, t.TempDir(), goEnv(t, in, up, "GONOSUMDB="+private), "mod", "download", private+"@v1.0.0")
	in.shutdown(t)
	if _, err := os.Stat(filepath.Join(data, "ledger")); err == nil {
		t.Fatalf("%s/ledger exists: the ledger should be in the database", data)
	}

	cfgFile := maintenanceConfig(t, up, data, private)
	var c config.Config
	state(&c)
	f, err := os.OpenFile(cfgFile, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "state:\n  postgres:\n    dsn_file: %q\n", c.State.Postgres.DSNFile)
	f.Close()

	const zipKey = private + "/@v/v1.0.0.zip"
	flipByte(t, data, zipKey)
	code, rep := runVerify(t, cfgFile)
	var got integrity.Status
	for _, f := range rep.Findings {
		if f.Key == zipKey {
			got = f.Status
		}
	}
	if code != 1 || got != integrity.Corrupt {
		t.Fatalf("verify with the ledger in PostgreSQL: exit %d, %s is %q (findings %+v); want exit 1 and corrupt", code, zipKey, got, rep.Findings)
	}
	if code, rep = runVerify(t, cfgFile, "--repair"); code != 0 || rep.Summary.Repaired != 1 {
		t.Errorf("verify --repair: exit %d, summary %+v; want 1 repaired and exit 0", code, rep.Summary)
	}
	if code, rep = runVerify(t, cfgFile); code != 0 || rep.Summary.Corrupt != 0 {
		t.Errorf("verify after repair: exit %d, %+v", code, rep)
	}
}
