package config

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// GoEnv holds the go command's settings that modgate's defaults come from,
// as `go env` reports them (GONOPROXY and GONOSUMDB already default to
// GOPRIVATE there).
type GoEnv struct {
	GOPROXY   string
	GOSUMDB   string
	GONOSUMDB string
	GONOPROXY string
	GOPRIVATE string
}

// goEnvVars are the variables ReadGoEnv asks for, in GoEnv order.
var goEnvVars = []string{"GOPROXY", "GOSUMDB", "GONOSUMDB", "GONOPROXY", "GOPRIVATE"}

// ReadGoEnv runs `go env -json GOPROXY GOSUMDB GONOSUMDB GONOPROXY GOPRIVATE`
// and returns its answer, which includes the user's go env file and the go
// command's built-in defaults.
//
// When the go command is not installed, it falls back to the process
// environment variables of the same names (GONOPROXY and GONOSUMDB default
// to GOPRIVATE, as in the go command). It then returns an error, alongside
// the values it found, only if GOPROXY is still empty, because modgate has
// nothing to mirror then. Any other failure of the go command is an error
// that includes its stderr.
//
// The command runs with GOTOOLCHAIN=local in the temporary directory, so it
// never downloads a toolchain and no go.mod around the caller influences it.
func ReadGoEnv(ctx context.Context) (GoEnv, error) {
	args := append([]string{"env", "-json"}, goEnvVars...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if errors.Is(err, exec.ErrNotFound) {
		env := goEnvFromProcess(os.Getenv)
		if env.GOPROXY == "" {
			return env, fmt.Errorf("reading go env: the go command is not installed and $GOPROXY is unset, so there is no default upstream; set upstream.goproxy: %w", err)
		}
		return env, nil
	}
	if err != nil {
		return GoEnv{}, fmt.Errorf("running go %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	var m map[string]string
	if err := json.Unmarshal(out, &m); err != nil {
		return GoEnv{}, fmt.Errorf("running go %s: decoding output: %w", strings.Join(args, " "), err)
	}
	return GoEnv{
		GOPROXY:   m["GOPROXY"],
		GOSUMDB:   m["GOSUMDB"],
		GONOSUMDB: m["GONOSUMDB"],
		GONOPROXY: m["GONOPROXY"],
		GOPRIVATE: m["GOPRIVATE"],
	}, nil
}

// goEnvFromProcess reads the settings from environment variables, applying
// the go command's GOPRIVATE defaults but not its built-in ones (which only
// the go command knows).
func goEnvFromProcess(getenv func(string) string) GoEnv {
	e := GoEnv{
		GOPROXY:   getenv("GOPROXY"),
		GOSUMDB:   getenv("GOSUMDB"),
		GONOSUMDB: getenv("GONOSUMDB"),
		GONOPROXY: getenv("GONOPROXY"),
		GOPRIVATE: getenv("GOPRIVATE"),
	}
	if e.GONOPROXY == "" {
		e.GONOPROXY = e.GOPRIVATE
	}
	if e.GONOSUMDB == "" {
		e.GONOSUMDB = e.GOPRIVATE
	}
	return e
}

// Resolve fills the settings that are still empty after Load and the
// caller's flags from the Go environment and the per-user data directory,
// recording each one's source:
//
//   - upstream.goproxy from GOPROXY ("go env GOPROXY"), unchanged: an
//     entry pointing at modgate itself is left out later, when the server
//     builds its upstreams (upstream.Build), whichever source the list
//     came from;
//   - upstream.noproxy from GONOPROXY, else GOPRIVATE;
//   - sumdb.gosumdb from GOSUMDB;
//   - sumdb.nosumdb from GONOSUMDB, else GOPRIVATE;
//   - data_dir from PerUserDataDir, using the environment given to Load.
//
// Pattern lists are split at commas, empty elements dropped. Resolve
// returns an error only when no data directory can be found and none is
// configured; the other settings are still resolved then. Values that are
// filled but wrong are left for Validate to report.
func (c *Config) Resolve(goenv GoEnv) error {
	if c.Sources == nil {
		c.Sources = make(map[string]string)
	}
	if c.Upstream.GOPROXY == "" && goenv.GOPROXY != "" {
		c.Upstream.GOPROXY = goenv.GOPROXY
		c.setSource("upstream.goproxy", "go env GOPROXY")
	}
	if len(c.Upstream.NoProxy) == 0 {
		c.resolvePatterns("upstream.noproxy", &c.Upstream.NoProxy, "GONOPROXY", goenv.GONOPROXY, goenv.GOPRIVATE)
	}
	if c.SumDB.GOSUMDB == "" && goenv.GOSUMDB != "" {
		c.SumDB.GOSUMDB = goenv.GOSUMDB
		c.setSource("sumdb.gosumdb", "go env GOSUMDB")
	}
	if len(c.SumDB.NoSumDB) == 0 {
		c.resolvePatterns("sumdb.nosumdb", &c.SumDB.NoSumDB, "GONOSUMDB", goenv.GONOSUMDB, goenv.GOPRIVATE)
	}
	if c.Upstream.MaxConcurrentFills == 0 {
		c.Upstream.MaxConcurrentFills = DefaultMaxConcurrentFills()
	}
	if c.DataDir == "" {
		getenv := c.env
		if getenv == nil {
			getenv = os.Getenv
		}
		dir, err := PerUserDataDir(getenv)
		if err != nil {
			return fmt.Errorf("resolving data_dir: %w; set data_dir or MODGATE_DATA_DIR", err)
		}
		c.DataDir = dir
		c.setSource("data_dir", SourceDefault)
	}
	return nil
}

// resolvePatterns fills *dst from the go env variable name (value val),
// else from GOPRIVATE. go env reports GOPRIVATE's value for an unset
// GONOPROXY/GONOSUMDB, so an equal value is credited to GOPRIVATE, where
// the user most likely wrote it.
func (c *Config) resolvePatterns(key string, dst *[]string, name, val, private string) {
	switch {
	case val != "" && val != private:
		*dst = splitList(val)
		c.setSource(key, "go env "+name)
	case private != "":
		*dst = splitList(private)
		c.setSource(key, "go env GOPRIVATE")
	}
}

// PerUserDataDir returns the directory modgate keeps its data in when
// data_dir is not set, looking variables up with env:
//
//   - $XDG_DATA_HOME/modgate when XDG_DATA_HOME is an absolute path
//     (not on Windows);
//   - on Windows, %LocalAppData%\modgate;
//   - on macOS, $HOME/Library/Application Support/modgate;
//   - elsewhere, $HOME/.local/share/modgate.
//
// It returns an error when none of the variables it needs is set.
func PerUserDataDir(env func(string) string) (string, error) {
	if runtime.GOOS == "windows" {
		if dir := env("LocalAppData"); dir != "" {
			return filepath.Join(dir, "modgate"), nil
		}
		return "", errors.New("no per-user data directory: %LocalAppData% is not set")
	}
	if dir := env("XDG_DATA_HOME"); dir != "" && filepath.IsAbs(dir) {
		return filepath.Join(dir, "modgate"), nil
	}
	home := env("HOME")
	if home == "" {
		return "", errors.New("no per-user data directory: neither $XDG_DATA_HOME nor $HOME is set")
	}
	if runtime.GOOS == "darwin" || runtime.GOOS == "ios" {
		return filepath.Join(home, "Library", "Application Support", "modgate"), nil
	}
	return filepath.Join(home, ".local", "share", "modgate"), nil
}
