package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// State is the "state" section: where the state that replicas must share
// (tokens, the private-module ledger, first-seen times, licence results,
// the checksum database's tree head, webhook delivery IDs, fill leases)
// is kept. With nothing set it stays in files under data_dir, for a
// single modgate.
type State struct {
	// Postgres keeps the shared state in a PostgreSQL database.
	Postgres StatePostgres `yaml:"postgres"`
}

// StatePostgres names the PostgreSQL database of the shared state. The
// DSN itself (which holds a password) is never part of the configuration:
// it comes from an environment variable or a file.
type StatePostgres struct {
	// DSNEnv is the name of an environment variable holding the DSN, for
	// example MODGATE_POSTGRES_DSN. Empty means none.
	DSNEnv string `yaml:"dsn_env"`

	// DSNFile is an absolute path to a file holding the DSN (surrounding
	// white space is ignored). Empty means none.
	DSNFile string `yaml:"dsn_file"`
}

// PostgresEnabled reports whether the shared state is in PostgreSQL.
func (c Config) PostgresEnabled() bool {
	return c.State.Postgres.DSNEnv != "" || c.State.Postgres.DSNFile != ""
}

// ErrNoDSN matches the error of PostgresDSN when the environment variable
// or the file it names holds no DSN.
var ErrNoDSN = errors.New("no PostgreSQL DSN")

// PostgresDSN reads the DSN from the environment variable or the file
// state.postgres names. Its errors never contain the DSN.
func (c Config) PostgresDSN() (string, error) {
	p := c.State.Postgres
	switch {
	case p.DSNEnv != "":
		getenv := c.env
		if getenv == nil {
			getenv = os.Getenv
		}
		dsn := strings.TrimSpace(getenv(p.DSNEnv))
		if dsn == "" {
			return "", fmt.Errorf("state.postgres.dsn_env: %w: environment variable %s is empty or unset", ErrNoDSN, p.DSNEnv)
		}
		return dsn, nil
	case p.DSNFile != "":
		data, err := os.ReadFile(p.DSNFile)
		if err != nil {
			return "", fmt.Errorf("state.postgres.dsn_file: %w", err)
		}
		dsn := strings.TrimSpace(string(data))
		if dsn == "" {
			return "", fmt.Errorf("state.postgres.dsn_file: %w: %s is empty", ErrNoDSN, p.DSNFile)
		}
		return dsn, nil
	}
	return "", fmt.Errorf("state.postgres: %w: set dsn_env or dsn_file", ErrNoDSN)
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// state checks the "state" section.
func (v *validator) state() {
	p := v.c.State.Postgres
	if p.DSNEnv != "" && p.DSNFile != "" {
		v.add("state.postgres.dsn_file", "", "set together with state.postgres.dsn_env; set one of them")
	}
	if p.DSNEnv != "" && !envName.MatchString(p.DSNEnv) {
		v.add("state.postgres.dsn_env", "", "%q is not an environment variable name (letters, digits and _, for example MODGATE_POSTGRES_DSN); the DSN itself never goes in the configuration", p.DSNEnv)
	}
	if p.DSNFile != "" && !filepath.IsAbs(p.DSNFile) {
		v.add("state.postgres.dsn_file", "", "%q is not an absolute path; write the full path", p.DSNFile)
	}
}
