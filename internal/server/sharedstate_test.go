package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/auth"
	"github.com/modgate/modgate/internal/config"
	"github.com/modgate/modgate/internal/server"
	"github.com/modgate/modgate/internal/state/postgres"
	"github.com/modgate/modgate/internal/testenv"
)

// sharedState returns an edit that points a modgate at the PostgreSQL
// database dsn (through a DSN file, as an operator would), and the
// database, opened and migrated by the test.
func sharedState(t *testing.T, dsn string) func(*config.Config) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "dsn")
	if err := os.WriteFile(file, []byte(dsn+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return func(c *config.Config) { c.State.Postgres.DSNFile = file }
}

func openStateDB(t *testing.T, dsn string) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(t.Context(), dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db
}

// TestSharedStateTokenRevokedAcrossReplicas runs two modgates on one
// PostgreSQL database: a token created through replica A's admin API works
// on replica B, and once revoked through A it is refused by B at the very
// next request.
func TestSharedStateTokenRevokedAcrossReplicas(t *testing.T) {
	dsn := testenv.PostgresDSN(t)
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	state := sharedState(t, dsn)
	edit := func(c *config.Config) { state(c); c.Auth.Anonymous.Scopes = []string{publicScope} }
	a := startModgate(t, up, edit)
	b := startModgate(t, up, edit)

	// The first admin token, as `modgate token create` makes it with
	// state.postgres set.
	db := openStateDB(t, dsn)
	tokens, err := auth.OpenTokens("", auth.TokensOptions{Store: db.Tokens()})
	if err != nil {
		t.Fatal(err)
	}
	adminScopes, _ := auth.ParseScopes([]string{"admin"})
	admin, _, err := tokens.Create("platform", adminScopes, time.Time{})
	if err != nil {
		t.Fatal(err)
	}

	c := http.DefaultClient
	r := call(t, c, "POST", a.URL+"/admin/tokens", `{"name":"ci","scopes":["read:example.com/greet"]}`,
		append(bearer(admin), "Content-Type", "application/json")...)
	if r.status != http.StatusCreated {
		t.Fatalf("POST /admin/tokens on A: %d %q; want 201", r.status, r.body)
	}
	var created struct{ ID, Token string }
	if err := json.Unmarshal([]byte(r.body), &created); err != nil || created.Token == "" {
		t.Fatalf("POST /admin/tokens answered %q (%v)", r.body, err)
	}
	const greet = "/example.com/greet/@v/v1.0.0.info"
	if r := call(t, c, "GET", b.URL+greet, "", bearer(created.Token)...); r.status != http.StatusOK {
		t.Fatalf("token created on A, used on B: %d %q; want 200", r.status, r.body)
	}
	if r := call(t, c, "DELETE", a.URL+"/admin/tokens/"+created.ID, "", bearer(admin)...); r.status != http.StatusOK {
		t.Fatalf("DELETE /admin/tokens on A: %d %q; want 200", r.status, r.body)
	}
	if r := call(t, c, "GET", b.URL+greet, "", bearer(created.Token)...); r.status != http.StatusUnauthorized || !strings.Contains(r.body, "unknown or revoked token") {
		t.Errorf("token revoked on A, used on B at once: %d %q; want 401 saying it is revoked", r.status, r.body)
	}
	if r := call(t, c, "GET", a.URL+greet, "", bearer(created.Token)...); r.status != http.StatusUnauthorized {
		t.Errorf("token revoked on A, used on A: %d %q; want 401", r.status, r.body)
	}
	// Nothing went to the data directories' token files.
	for _, in := range []*instance{a, b} {
		if _, err := os.Stat(filepath.Join(config.Config{DataDir: in.DataDir}.AuthDir(), "tokens.json")); err == nil {
			t.Errorf("%s has a tokens file; want the tokens in PostgreSQL only", in.DataDir)
		}
	}
}

// TestSharedStateTreeHead checks that a replica that verified a module
// stores the checksum database's tree head where the other replica reads
// it, and not in its data directory.
func TestSharedStateTreeHead(t *testing.T) {
	dsn := testenv.PostgresDSN(t)
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	a := startModgate(t, up, sharedState(t, dsn))
	if status, body, _ := a.get(t, "/example.com/greet/@v/v1.0.0.zip"); status != http.StatusOK {
		t.Fatalf("zip through A: %d %q", status, body)
	}
	db := openStateDB(t, dsn)
	var n int64
	if err := db.Pool().QueryRow(t.Context(), "SELECT tree_size FROM sumdb_heads").Scan(&n); err != nil || n <= 0 {
		t.Fatalf("tree head in PostgreSQL: size %d, %v; want one stored", n, err)
	}
	if _, err := os.Stat(filepath.Join(a.DataDir, "sumdb", strings.SplitN(up.VerifierKey(), "+", 2)[0], "latest")); err == nil {
		t.Errorf("the tree head went to the data directory too")
	}
	// Replica B starts from the shared head and verifies against it.
	b := startModgate(t, up, sharedState(t, dsn))
	if status, body, _ := b.get(t, "/example.com/greet/@v/v1.0.0.mod"); status != http.StatusOK {
		t.Fatalf("go.mod through B: %d %q", status, body)
	}
}

// TestSharedStatePostgresRestart stops PostgreSQL under a running modgate:
// stored files are still served; what needs the database (a file not
// stored yet, whose checksum-database tree head is shared) fails with a
// clear 503 that does not name the database's address; once PostgreSQL is
// back, the same request succeeds without restarting modgate.
func TestSharedStatePostgresRestart(t *testing.T) {
	pg := testenv.NewPostgres(t)
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	in := startModgate(t, up, sharedState(t, pg.DSN(t)))
	const stored = "/example.com/hello/@v/v1.0.0.zip"
	const later = "/example.com/hello/@v/v1.1.0.mod"
	if status, body, _ := in.get(t, stored); status != http.StatusOK {
		t.Fatalf("GET %s: %d %q", stored, status, body)
	}

	pg.Stop(t)
	if status, body, _ := in.get(t, stored); status != http.StatusOK {
		t.Errorf("stored file while PostgreSQL is down: %d %q; want 200", status, body)
	}
	status, body, _ := in.get(t, later)
	if status != http.StatusServiceUnavailable || !strings.Contains(string(body), "shared state database is unavailable") || strings.Contains(string(body), pg.Addr()) {
		t.Errorf("new file while PostgreSQL is down: %d %q; want 503 saying the shared state database is unavailable, without its address", status, body)
	}

	pg.Start(t)
	pollUntil(t, 20*time.Second, func() string {
		status, body, _ := in.get(t, later)
		if status != http.StatusOK {
			return fmt.Sprintf("after PostgreSQL restarted: GET %s = %d %q", later, status, body)
		}
		return ""
	})
}

// TestSharedStatePolicyReloadReachesReplicas: a policy reload on replica
// A makes replica B read its own configuration file again at once, though
// B's file watcher sees no change (its modification time is kept), so the
// notification alone carries it.
func TestSharedStatePolicyReloadReachesReplicas(t *testing.T) {
	dsn := testenv.PostgresDSN(t)
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	a, fileA := startPolicy(t, up, "log:\n  level: warn\n", sharedState(t, dsn))
	b, fileB := startPolicy(t, up, "log:\n  level: warn\n", sharedState(t, dsn))
	const greet = "/example.com/greet/@v/v1.0.0.info"
	for _, in := range []*instance{a, b} {
		if code, body, _ := in.get(t, greet); code != http.StatusOK {
			t.Fatalf("GET %s before any rule: %d %q", greet, code, body)
		}
	}
	const denyGreet = `
policy:
  rules:
    - name: no-greet
      deny:
        modules: [example.com/greet]
`
	// B's file changes behind its watcher's back.
	fi, err := os.Stat(fileB)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fileB, []byte(denyGreet), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(fileB, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	writeConfigFile(t, fileA, denyGreet)
	pollUntil(t, 15*time.Second, func() string {
		if code, _, _ := b.get(t, greet); code != http.StatusForbidden {
			return fmt.Sprintf("replica B: GET %s = %d after replica A reloaded; want 403", greet, code)
		}
		return ""
	})
}

// TestSharedStateMovedVersionAcrossReplicas: with no checksum database,
// the ledger is all that holds a version to its first content. Replica A
// stores a go.mod; the upstream then serves different bytes for that
// version (a moved tag); replica B, which never saw the version, refuses
// them, because the first hash is shared.
func TestSharedStateMovedVersionAcrossReplicas(t *testing.T) {
	dsn := testenv.PostgresDSN(t)
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	edit := func(c *config.Config) { sharedState(t, dsn)(c); c.SumDB.GOSUMDB = "off" }
	a := startModgate(t, up, edit)
	b := startModgate(t, up, edit)
	const mod = "/example.com/greet/@v/v1.0.0.mod"
	code, first, _ := a.get(t, mod)
	if code != http.StatusOK {
		t.Fatalf("A: GET %s = %d %q", mod, code, first)
	}
	up.SetTamperMod("example.com/greet", "v1.0.0", true)
	code, body, _ := b.get(t, mod)
	if code != http.StatusBadGateway || !strings.Contains(string(body), "moved") {
		t.Errorf("B: GET %s after the version changed upstream = %d %q; want 502 naming a moved tag", mod, code, body)
	}
	if b.stored("example.com/greet/@v/v1.0.0.mod") {
		t.Errorf("B stored the changed go.mod")
	}
}

// TestSharedStateOneFetchAcrossReplicas: two modgates sharing one module
// store (here one data directory; S3 in production) and one database get
// 16 concurrent requests for one uncached zip, half each: the upstream is
// asked once, and every request gets the zip.
func TestSharedStateOneFetchAcrossReplicas(t *testing.T) {
	dsn := testenv.PostgresDSN(t)
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	dataDir := filepath.Join(t.TempDir(), "data")
	edit := func(c *config.Config) {
		sharedState(t, dsn)(c)
		c.DataDir = dataDir
		c.Audit.Enabled = false // one audit log per replica; not what this test is about
	}
	a := startModgate(t, up, edit)
	b := startModgate(t, up, edit)
	const zip = "/example.com/hello/@v/v1.1.0.zip"
	up.SetDelay(300 * time.Millisecond)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var bodies [][]byte
	for i := range 16 {
		in := []*instance{a, b}[i%2]
		wg.Go(func() {
			resp, err := http.Get(in.URL + zip)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK {
				t.Errorf("GET %s: %d %q", zip, resp.StatusCode, body)
				return
			}
			mu.Lock()
			bodies = append(bodies, body)
			mu.Unlock()
		})
	}
	wg.Wait()
	if n := up.Count(zip); n != 1 {
		t.Errorf("16 requests over 2 replicas: %d upstream fetches of the zip, want 1", n)
	}
	for _, body := range bodies[1:] {
		if sha(body) != sha(bodies[0]) {
			t.Fatalf("replicas served different zips")
		}
	}
}

// TestSharedStateUnreachableAtStart: a modgate whose database cannot be
// reached does not start, and says why without the DSN's password.
func TestSharedStateUnreachableAtStart(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Upstream.GOPROXY = up.URL()
	cfg.SumDB.GOSUMDB = up.VerifierKey()
	sharedState(t, "postgres://modgate:s3cret@127.0.0.1:1/modgate?connect_timeout=2")(&cfg)
	if err := cfg.Resolve(config.GoEnv{}); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(cfg, slog.New(slog.DiscardHandler), server.WithDialControl(testenv.LoopbackOnly))
	if err == nil {
		srv.Close()
		t.Fatal("server.New with an unreachable database succeeded")
	}
	if msg := err.Error(); !strings.Contains(msg, "state.postgres: connecting to PostgreSQL: shared state database unavailable") || strings.Contains(msg, "s3cret") {
		t.Errorf("server.New = %q; want it to name the unreachable database, without the password", msg)
	}
}
