package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStateLoadAndValidate(t *testing.T) {
	dsnFile := filepath.Join(t.TempDir(), "dsn")
	if err := os.WriteFile(dsnFile, []byte("  postgres://u:pw@db:5432/modgate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		yaml    string
		env     map[string]string
		errs    []string // substrings of the problems, in order
		enabled bool
		dsn     string // want from PostgresDSN ("" = an error matching ErrNoDSN)
	}{
		{name: "default is files", yaml: ""},
		{name: "env", yaml: "state:\n  postgres:\n    dsn_env: PG_DSN\n", env: map[string]string{"PG_DSN": "postgres://u:pw@db/x"},
			enabled: true, dsn: "postgres://u:pw@db/x"},
		{name: "env unset", yaml: "state:\n  postgres:\n    dsn_env: PG_DSN\n", enabled: true},
		{name: "file", yaml: "state:\n  postgres:\n    dsn_file: " + dsnFile + "\n", enabled: true, dsn: "postgres://u:pw@db:5432/modgate"},
		{name: "both, bad name, relative file",
			yaml: "state:\n  postgres:\n    dsn_env: postgres://u:pw@db/x\n    dsn_file: dsn\n",
			errs: []string{
				"modgate.yaml:4: state.postgres.dsn_file: set together with state.postgres.dsn_env",
				`modgate.yaml:3: state.postgres.dsn_env: "postgres://u:pw@db/x" is not an environment variable name`,
				`modgate.yaml:4: state.postgres.dsn_file: "dsn" is not an absolute path`,
			}},
		{name: "unknown key", yaml: "state:\n  postgres:\n    dsn: postgres://x\n", errs: []string{"state.postgres.dsn: unknown key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "modgate.yaml")
			if err := os.WriteFile(path, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			env := map[string]string{"HOME": "/home/gopher"}
			for k, v := range tt.env {
				env[k] = v
			}
			c, err := Load(path, envOf(env))
			if err == nil {
				if err := c.Resolve(testGoEnv); err != nil {
					t.Fatal(err)
				}
				err = c.Validate()
			}
			var got []string
			for _, e := range unjoin(err) {
				got = append(got, e.Error())
			}
			if len(got) != len(tt.errs) {
				t.Fatalf("problems = %q, want %d like %q", got, len(tt.errs), tt.errs)
			}
			for i, want := range tt.errs {
				if !strings.Contains(got[i], want) {
					t.Errorf("problem %d = %q, want it to contain %q", i, got[i], want)
				}
			}
			if len(tt.errs) > 0 {
				return
			}
			if c.PostgresEnabled() != tt.enabled {
				t.Errorf("PostgresEnabled() = %v, want %v", c.PostgresEnabled(), tt.enabled)
			}
			if !tt.enabled {
				return
			}
			dsn, err := c.PostgresDSN()
			if tt.dsn == "" {
				if !errors.Is(err, ErrNoDSN) {
					t.Errorf("PostgresDSN() = %q, %v; want ErrNoDSN", dsn, err)
				}
				return
			}
			if err != nil || dsn != tt.dsn {
				t.Errorf("PostgresDSN() = %q, %v; want %q", dsn, err, tt.dsn)
			}
		})
	}
}

// unjoin flattens the problems of an errors.Join.
func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, unjoin(e)...)
		}
		return out
	}
	return []error{err}
}
