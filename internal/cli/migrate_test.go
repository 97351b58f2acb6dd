package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/config"
	"github.com/modgate/modgate/internal/testenv"
)

func migrateRun(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	deps := tokenDeps{
		getenv: func(k string) string { return env[k] },
		goEnv: func(context.Context) (config.GoEnv, error) {
			return config.GoEnv{GOPROXY: "https://proxy.test", GOSUMDB: "off"}, nil
		},
		now: time.Now,
	}
	code := migrate(t.Context(), args, &stdout, &stderr, deps)
	return code, stdout.String(), stderr.String()
}

func TestMigrateCommand(t *testing.T) {
	dsn := testenv.PostgresDSN(t)
	cfgFile := filepath.Join(t.TempDir(), "modgate.yaml")
	if err := os.WriteFile(cfgFile, []byte("data_dir: "+t.TempDir()+"\nstate:\n  postgres:\n    dsn_env: TEST_PG_DSN\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"HOME": "/home/gopher", "MODGATE_CONFIG": cfgFile, "TEST_PG_DSN": dsn}

	code, stdout, stderr := migrateRun(t, env)
	if code != 0 || !strings.Contains(stdout, "applied 0001_fill_leases.sql\n") {
		t.Fatalf("migrate = %d, stdout:\n%s\nstderr:\n%s\nwant 0 and 0001_fill_leases.sql applied", code, stdout, stderr)
	}
	code, stdout, stderr = migrateRun(t, env)
	if code != 0 || stdout != "schema up to date, nothing to apply\n" {
		t.Errorf("second migrate = %d, stdout:\n%s\nstderr:\n%s\nwant 0 and nothing applied", code, stdout, stderr)
	}
}

func TestMigrateCommandErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	noDB := write("nodb.yaml", "data_dir: "+dir+"\n")
	unset := write("unset.yaml", "data_dir: "+dir+"\nstate:\n  postgres:\n    dsn_env: TEST_PG_DSN\n")
	tests := []struct {
		name string
		env  map[string]string
		args []string
		code int
		want string
	}{
		{"no database configured", map[string]string{"MODGATE_CONFIG": noDB}, nil, 2, "modgate migrate: no database: state.postgres.dsn_env or dsn_file is not set"},
		{"dsn variable unset", map[string]string{"MODGATE_CONFIG": unset}, nil, 2, "environment variable TEST_PG_DSN is empty or unset"},
		{"unreachable", map[string]string{"MODGATE_CONFIG": unset, "TEST_PG_DSN": "postgres://u:s3cret@127.0.0.1:1/x?connect_timeout=2"}, nil, 1, "modgate migrate: connecting to PostgreSQL: shared state database unavailable: "},
		{"stray argument", map[string]string{"MODGATE_CONFIG": unset}, []string{"now"}, 2, `want no arguments, got ["now"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.env["HOME"] = "/home/gopher"
			code, _, stderr := migrateRun(t, tt.env, tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.want) || strings.Contains(stderr, "s3cret") {
				t.Errorf("migrate %v = %d, stderr %q; want %d and %q (and no password)", tt.args, code, stderr, tt.code, tt.want)
			}
		})
	}
}

// TestTokenCommandSharedState: with state.postgres set, modgate token
// creates, lists and revokes tokens in the database, not in the data
// directory.
func TestTokenCommandSharedState(t *testing.T) {
	dsn := testenv.PostgresDSN(t)
	dataDir := t.TempDir()
	cfgFile := filepath.Join(t.TempDir(), "modgate.yaml")
	if err := os.WriteFile(cfgFile, []byte("data_dir: "+dataDir+"\nstate:\n  postgres:\n    dsn_env: TEST_PG_DSN\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"HOME": "/home/gopher", "MODGATE_CONFIG": cfgFile, "TEST_PG_DSN": dsn}
	now := time.Now()
	if code, _, stderr := tokenRun(t, env, now, "create", "--name", "ci", "--scope", "read"); code != 0 {
		t.Fatalf("token create = %d:\n%s", code, stderr)
	}
	if code, stdout, stderr := tokenRun(t, env, now, "list"); code != 0 || !strings.Contains(stdout, "ci") {
		t.Fatalf("token list = %d:\n%s\n%s", code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "auth", "tokens.json")); err == nil {
		t.Errorf("the token went to the data directory; want it in PostgreSQL only")
	}
	if code, _, stderr := tokenRun(t, env, now, "revoke", "ci"); code != 0 {
		t.Fatalf("token revoke = %d:\n%s", code, stderr)
	}
	if code, stdout, _ := tokenRun(t, env, now, "list"); code != 0 || strings.Contains(stdout, "ci") {
		t.Errorf("token list after revoke:\n%s", stdout)
	}
	// The database down: a clear error, exit 1.
	env["TEST_PG_DSN"] = "postgres://u:s3cret@127.0.0.1:1/x?connect_timeout=2"
	if code, _, stderr := tokenRun(t, env, now, "list"); code != 1 || !strings.Contains(stderr, "shared state database unavailable") || strings.Contains(stderr, "s3cret") {
		t.Errorf("token list with the database down = %d, %q; want 1 naming the database as unavailable, without the password", code, stderr)
	}
}

// TestMigrateImport moves a single modgate's tokens into the database with
// modgate migrate --import: the token works there, and a second run adds
// nothing.
func TestMigrateImport(t *testing.T) {
	dsn := testenv.PostgresDSN(t)
	single := t.TempDir()
	env := map[string]string{"HOME": "/home/gopher", "TEST_PG_DSN": dsn}
	// The single node's token, made by modgate token without state.postgres.
	plain := filepath.Join(t.TempDir(), "single.yaml")
	if err := os.WriteFile(plain, []byte("data_dir: "+single+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env["MODGATE_CONFIG"] = plain
	if code, _, stderr := tokenRun(t, env, time.Now(), "create", "--name", "ci", "--scope", "read"); code != 0 {
		t.Fatalf("token create = %d:\n%s", code, stderr)
	}
	shared := filepath.Join(t.TempDir(), "replica.yaml")
	if err := os.WriteFile(shared, []byte("data_dir: "+t.TempDir()+"\nstate:\n  postgres:\n    dsn_env: TEST_PG_DSN\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env["MODGATE_CONFIG"] = shared
	code, stdout, stderr := migrateRun(t, env, "--import", single)
	if code != 0 || !strings.Contains(stdout, "imported from "+single+": 1 tokens, 0 ledger records") {
		t.Fatalf("migrate --import = %d\n%s\n%s", code, stdout, stderr)
	}
	if code, stdout, _ := tokenRun(t, env, time.Now(), "list"); code != 0 || !strings.Contains(stdout, "ci") {
		t.Errorf("token list on the database after the import:\n%s", stdout)
	}
	if code, stdout, _ := migrateRun(t, env, "--import", single); code != 0 || !strings.Contains(stdout, ": 0 tokens, 0 ledger records, 0 tree heads, 0 version ages, 0 licence results") {
		t.Errorf("second import = %d\n%s", code, stdout)
	}
	if code, _, stderr := migrateRun(t, env, "--import", filepath.Join(single, "nope")); code != 2 || !strings.Contains(stderr, "not a directory") {
		t.Errorf("import of a missing directory = %d %q", code, stderr)
	}
}
