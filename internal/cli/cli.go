// Package cli implements modgate's subcommands, one file each: flags are
// parsed into a configuration, the configuration is validated, and the
// command runs. Commands return an exit status instead of calling os.Exit so
// they can be tested in-process.
package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

const usage = `modgate is a private Go module proxy.

Usage:
  modgate serve [flags]              run the proxy (modgate serve -h for flags)
  modgate explain MODULE[@VERSION]   say which upstreams, checksum database and policy apply to a module
  modgate check [go.mod|go.sum|DIR]  evaluate a build list against the policy, offline (a CI gate)
  modgate prefetch [go.mod|go.sum|DIR|MODULE@VERSION ...]
                                     fill modgate with a project's whole module graph
  modgate export --key FILE -o BUNDLE [--since M] [--all|go.mod|PATTERN ...]
                                     write a signed bundle for an air-gapped site
  modgate import --public-key FILE BUNDLE | --gomodcache DIR
                                     check and store a bundle, or seed from a module cache
  modgate token create|list|revoke   manage access tokens
  modgate audit verify|query         check the audit log's hash chain, or search it
  modgate source test NAME [MODULE]  check a private Git source: reachability, credentials, refs
  modgate verify [--repair]          re-hash every stored file against the checksum database or ledger
  modgate purge MODULE[@VERSION]     remove a stored version and refuse to fetch it again
  modgate migrate                    apply the shared state's PostgreSQL schema migrations
  modgate import-data --from DIR     copy a single modgate's data directory into S3 and PostgreSQL
  modgate version                    print the version
  modgate help                       print this text

Set clients up with:  go env -w GOPROXY=http://127.0.0.1:3000
`

// planned names subcommands that later releases add, so that asking for one
// explains itself instead of reading as a typo.
var planned = map[string]bool{
	"publish": true,
}

// Main runs the subcommand named by args[0] and returns the exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return Serve(ctx, rest, stdout, stderr)
	case "explain":
		return Explain(context.Background(), rest, stdout, stderr)
	case "check":
		return Check(context.Background(), rest, stdout, stderr)
	case "prefetch":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return Prefetch(ctx, rest, stdout, stderr)
	case "export":
		return Export(context.Background(), rest, stdout, stderr)
	case "import":
		return Import(context.Background(), rest, stdout, stderr)
	case "token":
		return Token(context.Background(), rest, stdout, stderr)
	case "audit":
		return Audit(context.Background(), rest, stdout, stderr)
	case "source":
		return Source(context.Background(), rest, stdout, stderr)
	case "verify":
		return Verify(context.Background(), rest, stdout, stderr)
	case "purge":
		return Purge(context.Background(), rest, stdout, stderr)
	case "migrate":
		return Migrate(context.Background(), rest, stdout, stderr)
	case "import-data":
		return ImportData(context.Background(), rest, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "modgate", version())
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	if planned[cmd] {
		fmt.Fprintf(stderr, "modgate %s: not available in this release yet\n", cmd)
		return 2
	}
	fmt.Fprintf(stderr, "modgate: unknown command %q\n\n%s", cmd, usage)
	return 2
}

// version returns the module version the binary was built from.
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
