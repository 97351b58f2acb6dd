package server_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/audit"
	"github.com/modgate/modgate/internal/config"
	"github.com/modgate/modgate/internal/state/postgres"
	"github.com/modgate/modgate/internal/testenv"
)

// TestAuditSharedChainReplicas runs three replicas on one PostgreSQL
// database (state.postgres), each with its own data directory and the
// cluster's one signing key, and downloads through each with the go
// command, with their one signing key in the database: their records form one chain that verifies and holds records
// of all three. Then PostgreSQL is stopped while clients download from a
// replica: cached files are still served, their records are spooled on
// the replica's disk and appended when the database is back, each exactly
// once; a fail-closed replica answers 503 meanwhile.
func TestAuditSharedChainReplicas(t *testing.T) {
	pg := testenv.NewPostgres(t)
	t.Setenv("MODGATE_TEST_AUDIT_DSN", pg.DSN(t))
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	replicas := make([]*instance, 3)
	for i := range replicas {
		replicas[i] = startModgate(t, up, func(c *config.Config) {
			c.State.Postgres.DSNEnv = "MODGATE_TEST_AUDIT_DSN"
			c.Server.ReplicaName = fmt.Sprintf("replica-%d", i+1)
			c.Audit.FailClosed = i == 2
		})
	}
	for _, in := range replicas {
		mustGo(t, t.TempDir(), goEnv(t, in, up), "mod", "download", "example.com/hello@v1.0.0")
	}

	pg.Stop(t)
	// The go command downloads a cached module through replica-1 with a
	// fresh module cache; probes with their own user agent count records.
	mustGo(t, t.TempDir(), goEnv(t, replicas[0], up), "mod", "download", "example.com/hello@v1.0.0")
	const probes = 20
	for i := range probes {
		req, _ := http.NewRequest(http.MethodGet, replicas[0].URL+"/example.com/hello/@v/v1.0.0.info", nil)
		req.Header.Set("User-Agent", fmt.Sprintf("pg-down-probe/%d", i))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("probe %d while PostgreSQL is down: %d, want 200 (served from the cache)", i, resp.StatusCode)
		}
	}
	spool := filepath.Join(replicas[0].DataDir, "audit", "spool")
	pollUntil(t, 10*time.Second, func() string {
		if n := spooledRecords(t, spool); n < probes {
			return fmt.Sprintf("%d records spooled in %s, want at least %d", n, spool, probes)
		}
		return ""
	})
	// The fail-closed replica refuses once it has seen the database fail.
	pollUntil(t, 20*time.Second, func() string {
		code, _, _ := replicas[2].get(t, "/example.com/hello/@v/v1.0.0.info")
		if code != http.StatusServiceUnavailable {
			return fmt.Sprintf("fail-closed replica answered %d while PostgreSQL is down, want 503", code)
		}
		return ""
	})

	pg.Start(t)
	pollUntil(t, 20*time.Second, func() string {
		if n := spooledRecords(t, spool); n != 0 {
			return fmt.Sprintf("%d records still spooled after PostgreSQL came back", n)
		}
		return ""
	})
	pollUntil(t, 20*time.Second, func() string {
		if code, _, _ := replicas[2].get(t, "/example.com/hello/@v/v1.0.0.info"); code != http.StatusOK {
			return fmt.Sprintf("fail-closed replica answered %d after PostgreSQL came back, want 200", code)
		}
		return ""
	})
	for _, in := range replicas {
		in.shutdown(t)
	}

	db, err := postgres.Open(context.Background(), os.Getenv("MODGATE_TEST_AUDIT_DSN"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Without audit.key_file the replicas share one key in the database.
	pub, ok, err := db.AuditPublicKey(context.Background())
	if err != nil || !ok {
		t.Fatalf("the shared signing key: %v (found: %v)", err, ok)
	}
	for _, in := range replicas {
		if _, err := os.Stat(filepath.Join(in.DataDir, "audit.key")); err == nil {
			t.Errorf("%s: a signing key file was written although the key is in the database", in.DataDir)
		}
	}
	rep, err := audit.VerifyChain(context.Background(), db.AuditChain(), pub, audit.VerifyOptions{})
	if err != nil {
		t.Fatalf("verify: %v\n%s", err, rep)
	}
	if want := []string{"replica-1", "replica-2", "replica-3"}; !slices.Equal(rep.Replicas, want) {
		t.Errorf("records of %v, want %v", rep.Replicas, want)
	}
	seen := map[string]int{}
	err = audit.QueryChain(context.Background(), db.AuditChain(), audit.Filter{}, func(r audit.Record) error {
		if strings.HasPrefix(r.UserAgent, "pg-down-probe/") {
			seen[r.UserAgent]++
			if r.Replica != "replica-1" || r.Result != audit.ResultHit {
				t.Errorf("probe record %+v, want a hit by replica-1", r)
			}
		}
		if r.Action == audit.ActionDropped {
			t.Errorf("records were dropped: %s", r.Detail)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range probes {
		if n := seen[fmt.Sprintf("pg-down-probe/%d", i)]; n != 1 {
			t.Errorf("probe %d has %d records in the chain, want exactly 1", i, n)
		}
	}
}

// spooledRecords counts the records waiting in a replica's audit spool.
func spooledRecords(t *testing.T, dir string) int {
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, de := range des {
		data, err := os.ReadFile(filepath.Join(dir, de.Name()))
		if err == nil {
			n += strings.Count(string(data), "\n")
		}
	}
	return n
}
