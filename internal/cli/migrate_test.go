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
