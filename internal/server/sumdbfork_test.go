package server_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/mod/module"

	"github.com/modgate/modgate/internal/audit"
	"github.com/modgate/modgate/internal/config"
	"github.com/modgate/modgate/internal/testenv"
)

// TestSumDBForkAfterDeletedTreeHead warms modgate through a checksum
// database, stops it, deletes the persisted tree head and restarts it in
// front of a fork of that database (same key, another history): the fill
// is refused, logged and counted, because the verified head was kept in
// the audit log too. The honest database, grown meanwhile, still works
// after the same deletion.
func TestSumDBForkAfterDeletedTreeHead(t *testing.T) {
	mods := testenv.Fixtures(t)
	up := testenv.NewUpstream(t, mods)
	data := filepath.Join(t.TempDir(), "data")
	start := func(u *testenv.Upstream) *instance {
		return startModgate(t, u, func(c *config.Config) { c.DataDir = data })
	}
	latest := filepath.Join(data, "sumdb", up.SumDBName(), "latest")

	in := start(up)
	mustGo(t, t.TempDir(), goEnv(t, in, up), "mod", "download", "example.com/hello@v1.0.0", "example.com/greet@v1.0.0")
	in.shutdown(t)
	r, ok, err := audit.Last(filepath.Join(data, "audit"), func(r audit.Record) bool { return r.Action == "sumdb.tree_head" })
	if err != nil || !ok || !strings.HasPrefix(r.Detail, "go.sum database tree\n") {
		t.Fatalf("audit log has no verified tree head: %+v, %v, %v", r, ok, err)
	}
	if err := os.Remove(latest); err != nil {
		t.Fatalf("deleting the tree head: %v", err)
	}

	// The fork starts with other records, so no history matches.
	fork := testenv.NewUpstream(t, mods, testenv.WithSumDBSignerKey(up.SumDBSignerKey()))
	if err := fork.RecordSumDB(t.Context(), module.Version{Path: "example.com/Upper", Version: "v1.0.0"},
		module.Version{Path: "example.com/greet", Version: "v1.0.0"}, module.Version{Path: "example.com/hello", Version: "v1.0.0"}); err != nil {
		t.Fatal(err)
	}
	in = start(fork)
	// The go command's own checks are left out: modgate alone must refuse.
	env := goEnv(t, in, fork, "GONOSUMDB=example.com", "GOFLAGS=-modcacherw")
	stderr := failGo(t, t.TempDir(), env, "mod", "download", "example.com/legacy@v2.0.0+incompatible")
	if !strings.Contains(stderr, "misbehaved") {
		t.Errorf("go mod download against the fork: %s\nwant modgate's refusal", stderr)
	}
	if in.stored("example.com/legacy/@v/v2.0.0+incompatible.mod") || in.stored("example.com/legacy/@v/v2.0.0+incompatible.zip") {
		t.Errorf("a file verified against the fork was stored")
	}
	_, body, _ := in.get(t, "/metrics")
	if m := regexp.MustCompile(`(?m)^modgate_sumdb_security_events_total ([1-9][0-9]*)$`).FindStringSubmatch(string(body)); m == nil {
		t.Errorf("security event not counted:\n%s", grepLines(string(body), "security"))
	}
	in.shutdown(t)

	// The honest database, grown by the new version: accepted.
	if err := os.Remove(latest); err != nil {
		t.Fatalf("deleting the tree head again: %v", err)
	}
	in = start(up)
	mustGo(t, t.TempDir(), goEnv(t, in, up), "mod", "download", "example.com/legacy@v2.0.0+incompatible")
}
