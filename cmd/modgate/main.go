// Command modgate is a private Go module proxy: it caches public modules,
// verifies every file it stores against the checksum database, and serves
// them to the go command over the GOPROXY protocol.
//
// Usage:
//
//	modgate serve [flags]            run the proxy
//	modgate explain MODULE[@VERSION] say which upstreams and checksum database apply to a module, and why
//	modgate version                  print the version
//	modgate help                     print this text
//
// # serve
//
// With no flags and no configuration file, modgate serve listens on
// 127.0.0.1:3000, keeps its data in the per-user data directory
// ($XDG_DATA_HOME/modgate or ~/.local/share/modgate), and takes its upstreams
// and checksum database from `go env GOPROXY` and `go env GOSUMDB`.
//
//	-config FILE      YAML configuration file (also MODGATE_CONFIG)
//	-listen ADDR      listen address, host:port (also MODGATE_LISTEN)
//	-data-dir DIR     data directory (also MODGATE_DATA_DIR)
//	-log-level LEVEL  debug, info, warn or error (also MODGATE_LOG_LEVEL)
//	-log-format FMT   text or json (also MODGATE_LOG_FORMAT)
//	-print-config     print the effective configuration, with where each value came from, and exit
//
// Flags override environment variables, which override the file, which
// overrides the built-in defaults. Example:
//
//	modgate serve -listen :8080 -data-dir /var/lib/modgate
//	export GOPROXY=http://localhost:8080
//
// # explain
//
//	modgate explain [-config FILE] golang.org/x/mod@v0.42.0
//
// prints the storage location, the upstreams asked in order, and whether the
// checksum database verifies the module (or which pattern excludes it).
//
// Planned subcommands (check, prefetch, export, import, verify, audit, token,
// publish) arrive in later releases; modgate says so when asked for one.
//
// Exit status: 0 on success, 1 when serving failed, 2 for usage or
// configuration errors.
package main

import (
	"os"

	"github.com/modgate/modgate/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
