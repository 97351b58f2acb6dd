package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/modgate/modgate/internal/server"
)

const sourceUsage = `usage: modgate source test [--config FILE] NAME [MODULE]

Source test checks the private source NAME (private.sources[*].name): that
its repository can be located, that the Git server answers, that it accepts
modgate's credentials, and that it lists branches and tags. MODULE names the
repository to try (any module path the source's patterns match); without it
the first pattern without wildcards is used. Nothing is fetched or stored.

Exit status: 0 when every check passes, 1 when one fails, 2 for bad usage
or configuration.

Flags:
`

// Source implements `modgate source test NAME [MODULE]`.
func Source(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "test" {
		fmt.Fprint(stderr, sourceUsage)
		return 2
	}
	fs := flag.NewFlagSet("modgate source test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configFile := fs.String("config", os.Getenv("MODGATE_CONFIG"), "YAML configuration `FILE` (also MODGATE_CONFIG)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), sourceUsage)
		fs.PrintDefaults()
	}
	// Flags may come before or after the arguments.
	positional, status, ok := parseInterspersed(fs, args[1:])
	if !ok {
		return status
	}
	if len(positional) < 1 || len(positional) > 2 {
		fs.Usage()
		return 2
	}
	name, mod := positional[0], ""
	if len(positional) == 2 {
		mod = positional[1]
	}
	cfg, err := loadConfig(ctx, *configFile, nil, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "modgate source test: invalid configuration:\n%v\n", err)
		return 2
	}
	src, err := server.GitSource(cfg, name, slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Fprintf(stderr, "modgate source test: %v\n", err)
		return 2
	}
	rep, err := src.Test(ctx, mod)
	if err != nil {
		fmt.Fprintf(stderr, "modgate source test: %v\n", err)
		return 2
	}
	fmt.Fprint(stdout, rep.String())
	if !rep.OK() {
		return 1
	}
	return 0
}
