package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"

	"github.com/modgate/modgate/internal/tombstone"
)

const purgeUsage = `usage: modgate purge [--config FILE] [--data-dir DIR] [--reason TEXT] [--allow-refetch] [--json] MODULE[@VERSION]

Purge removes a module version's stored files (.info, .mod, .zip), or every
version of a module, and leaves a tombstone in the store so that modgate
does not fetch it again: requests for it answer 410 "purged by operator",
and version lists, @latest and queries leave it out. A running server
sees the purge at its next request.

  --reason TEXT     why (a ticket, "legal takedown"); kept in the tombstone
  --allow-refetch   remove the files but no tombstone (and lift an existing
                    one), so the version is fetched again when asked for

VERSION must be canonical (v1.2.3, a pseudo-version, v2.0.0+incompatible):
a tombstone covers that exact version, in any case of the module path.
Purge the whole module to refuse every version, pseudo-versions included.
The running server writes an audit record of the purge when it sees the
tombstone. The admin API does the same as this command:
DELETE /admin/modules/MODULE[@VERSION]?reason=TEXT&allow_refetch=true.
`

// Purge implements `modgate purge`. It returns 0 on success, 1 when the
// store cannot be changed, 2 for bad arguments.
func Purge(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const prog = "modgate purge"
	fset := newFlagSet(prog, purgeUsage+"\nFlags:\n", stderr)
	configPath := fset.String("config", os.Getenv("MODGATE_CONFIG"), "read the configuration from `FILE` (also MODGATE_CONFIG)")
	dataDir := fset.String("data-dir", "", "data `directory` (default: data_dir from the configuration)")
	reason := fset.String("reason", "", "why the version is purged")
	allow := fset.Bool("allow-refetch", false, "leave no tombstone, so the version may be fetched again")
	asJSON := fset.Bool("json", false, "print JSON")
	positional, status, ok := parseInterspersed(fset, args)
	if !ok {
		return status
	}
	if len(positional) != 1 {
		fmt.Fprintf(stderr, "%s: want one MODULE[@VERSION], got %q\n", prog, positional)
		return 2
	}
	path, version, err := tombstone.Parse(positional[0])
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return 2
	}
	m, status := openMaintenance(ctx, prog, *configPath, *dataDir, stderr)
	if m == nil {
		return status
	}
	defer m.Close()
	by := "command line"
	if u, err := user.Current(); err == nil {
		by = u.Username + " (command line)"
	}
	req := tombstone.Request{Module: path, Version: version, Reason: *reason, By: by, AllowRefetch: *allow}
	res, err := tombstone.Purge(ctx, m.Store, m.Tombstones, req)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		if errors.Is(err, tombstone.ErrInvalid) {
			return 2
		}
		return 1
	}
	if *asJSON {
		json.NewEncoder(stdout).Encode(res)
		return 0
	}
	what := positional[0]
	for _, k := range res.Removed {
		fmt.Fprintf(stdout, "removed %s\n", k)
	}
	switch {
	case res.Tombstoned:
		fmt.Fprintf(stdout, "purged %s: %d files removed; it will not be fetched again (purge --allow-refetch lifts this)\n", what, len(res.Removed))
	case res.Unburied:
		fmt.Fprintf(stdout, "purged %s: %d files removed; tombstone lifted, it will be fetched again when asked for\n", what, len(res.Removed))
	default:
		fmt.Fprintf(stdout, "purged %s: %d files removed; it will be fetched again when asked for\n", what, len(res.Removed))
	}
	return 0
}
