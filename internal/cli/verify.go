package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"text/tabwriter"
	"time"

	"github.com/modgate/modgate/internal/config"
	"github.com/modgate/modgate/internal/integrity"
	"github.com/modgate/modgate/internal/server"
)

const verifyUsage = `usage: modgate verify [--config FILE] [--data-dir DIR] [--quarantine] [--repair] [--json]

Verify re-hashes every stored .mod and .zip and compares it with the
checksum database (its lookups cached in the store; missing ones are
fetched from the database through the upstream) or, for private modules,
the hash the ledger recorded when modgate first served it. It reports
corrupt files, missing ones (recorded as served, gone from the store) and
unverifiable ones (no hash to compare with), and exits 1 if there are any.

  --quarantine  move corrupt files to quarantine/ in the store (never deleted)
  --repair      quarantine corrupt files, then fetch corrupt and missing ones
                again from the upstream, verified as any fill is
  --json        print the summary and findings as JSON

It is safe while the server runs: it never writes the server's ledger or
checksum-database state, and a running server fetches a quarantined file
again at its next request.
`

// Verify implements `modgate verify`. It returns 0 when every file is
// good (or was repaired), 1 when a problem remains, 2 for bad arguments
// or a configuration that does not load.
func Verify(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const prog = "modgate verify"
	fset := newFlagSet(prog, verifyUsage+"\nFlags:\n", stderr)
	configPath := fset.String("config", os.Getenv("MODGATE_CONFIG"), "read the configuration from `FILE` (also MODGATE_CONFIG)")
	dataDir := fset.String("data-dir", "", "data `directory` (default: data_dir from the configuration)")
	quarantine := fset.Bool("quarantine", false, "move corrupt files aside to quarantine/")
	repair := fset.Bool("repair", false, "quarantine corrupt files and fetch corrupt and missing ones again")
	asJSON := fset.Bool("json", false, "print JSON")
	positional, status, ok := parseInterspersed(fset, args)
	if !ok {
		return status
	}
	if len(positional) != 0 {
		fmt.Fprintf(stderr, "%s: unexpected arguments %q\n", prog, positional)
		return 2
	}
	m, status := openMaintenance(ctx, prog, *configPath, *dataDir, stderr)
	if m == nil {
		return status
	}
	defer m.Close()

	opts := integrity.RunOptions{Quarantine: *quarantine, Recorded: m.Recorded}
	if *repair {
		opts.Repair = m.Repair
	}
	sum, findings, err := m.Checker.Run(ctx, opts)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if findings == nil {
			findings = []integrity.Finding{}
		}
		enc.Encode(struct {
			Summary  integrity.Summary   `json:"summary"`
			Findings []integrity.Finding `json:"findings"`
		}{sum, findings})
	} else {
		printFindings(stdout, sum, findings)
	}
	if sum.Problems() {
		return 1
	}
	return 0
}

func printFindings(w io.Writer, sum integrity.Summary, findings []integrity.Finding) {
	if len(findings) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "STATUS\tMODULE\tVERSION\tFILE\tREASON\tACTION")
		for _, f := range findings {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", f.Status, f.Module, f.Version, f.File, f.Reason, f.Action)
		}
		tw.Flush()
	}
	rate := 0.0
	if s := sum.Duration.Seconds(); s > 0 {
		rate = float64(sum.Files) / s
	}
	fmt.Fprintf(w, "%d files (%d MB) in %v (%.0f files/s): %d ok, %d corrupt, %d missing, %d unverifiable; %d quarantined, %d repaired\n",
		sum.Files, sum.Bytes>>20, sum.Duration.Round(time.Millisecond), rate, sum.OK, sum.Corrupt, sum.Missing, sum.Unverifiable, sum.Quarantined, sum.Repaired)
}

// openMaintenance loads the configuration as serve does and opens its
// data directory for maintenance; on failure it prints why and returns
// the exit status.
func openMaintenance(ctx context.Context, prog, configPath, dataDir string, stderr io.Writer) (*server.Maintenance, int) {
	cfg, err := tokenConfig(ctx, configPath, dataDir, tokenDeps{getenv: os.Getenv, goEnv: config.ReadGoEnv, now: time.Now})
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return nil, 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	m, err := server.OpenMaintenance(cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return nil, 1
	}
	return m, 0
}
