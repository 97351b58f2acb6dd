package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"

	"github.com/modgate/modgate/internal/config"
	"github.com/modgate/modgate/internal/server"
)

// serveFlags maps each serve flag to the configuration key it sets.
var serveFlags = []struct{ name, key, usage string }{
	{"listen", "listen", "listen address, host:port (default 127.0.0.1:3000)"},
	{"data-dir", "data_dir", "data directory (default: the per-user data directory)"},
	{"log-level", "log.level", "log level: debug, info, warn or error"},
	{"log-format", "log.format", "log format: text or json"},
}

// Serve implements `modgate serve`. It returns when ctx is done (after a
// graceful shutdown) or when serving fails.
func Serve(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("modgate serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configFile := fs.String("config", os.Getenv("MODGATE_CONFIG"), "YAML configuration file (also MODGATE_CONFIG)")
	printConfig := fs.Bool("print-config", false, "print the effective configuration and where each value came from, then exit")
	values := make(map[string]*string)
	for _, f := range serveFlags {
		values[f.name] = fs.String(f.name, "", f.usage)
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "modgate serve: unexpected arguments %q\n", fs.Args())
		return 2
	}
	cfg, err := loadConfig(ctx, *configFile, func(set func(key, value, source string) error) error {
		var errs []error
		fs.Visit(func(f *flag.Flag) {
			for _, sf := range serveFlags {
				if sf.name == f.Name {
					errs = append(errs, set(sf.key, *values[f.Name], "flag --"+f.Name))
				}
			}
		})
		return errors.Join(errs...)
	}, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "modgate serve: invalid configuration:\n%v\n", err)
		return 2
	}
	if *printConfig {
		out, err := cfg.YAML()
		if err != nil {
			fmt.Fprintf(stderr, "modgate serve: %v\n", err)
			return 1
		}
		stdout.Write(out)
		return 0
	}

	log, stopLog := newLogger(cfg.Log, stderr)
	defer stopLog()
	srv, err := server.New(cfg, log)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		log.Error("cannot listen", "addr", cfg.Listen, "err", err)
		return 1
	}
	if err := srv.Serve(ctx, ln); err != nil {
		log.Error("serving failed", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

// loadConfig builds the effective configuration: defaults, file,
// environment, flags (applied by setFlags), then go env, then validation.
// Every problem is reported at once.
func loadConfig(ctx context.Context, file string, setFlags func(set func(key, value, source string) error) error, stderr io.Writer) (config.Config, error) {
	cfg, err := config.Load(file, os.Getenv)
	if err != nil && !errors.Is(err, config.ErrInvalid) {
		return config.Config{}, err
	}
	// The file's problems (err) come back from Validate, with the rest.
	if setFlags != nil {
		if err := setFlags(cfg.Set); err != nil {
			return config.Config{}, err
		}
	}
	goenv, err := config.ReadGoEnv(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "modgate: warning: %v\n", err)
	}
	if err := cfg.Resolve(goenv); err != nil {
		return config.Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return config.Config{}, err
	}
	return cfg, nil
}
