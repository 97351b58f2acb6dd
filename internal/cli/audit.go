package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/modgate/modgate/internal/audit"
	"github.com/modgate/modgate/internal/config"
)

const auditUsage = `usage: modgate audit verify [--config FILE] [--data-dir DIR] [--dir DIR] [--public-key FILE]
                            [--checkpoints FILE] [--as-of T]
       modgate audit query [--config FILE] [--data-dir DIR] [--dir DIR] [--since T] [--until T]
                           [--identity X] [--module PATTERN] [--result R] [--json]

verify checks the audit log: every record's hash, the chain across files,
the signed checkpoints, and that nothing was cut off the end: records or
a checkpoint that a running server would have signed by now, unless a
clean shutdown signed the end. It prints "ok: ..." and exits 0, or names
each problem (file, line, seq, what) and exits 1. With --checkpoints (by
default audit.anchor_file, when configured) it also checks the log
against that outside copy of the checkpoints (an anchor file, or syslog
lines) and names the first record that disagrees; give --public-key from
outside the data directory too, or whoever rewrote the log may have
replaced the key. --as-of judges a copy of a log as of when it was taken.

query prints the records that match every filter given, oldest first, as a
table or (--json) as JSON lines. T is a time (2026-11-21, 2026-11-21T15:04,
RFC 3339) or a duration meaning that long ago (24h). PATTERN is a module
path or a GOPRIVATE-style pattern (corp.example/*). R is a result: hit,
miss, stale, blocked, unauthorized, forbidden, not_found, error or admin.
When the log is pseudonymised, --identity takes the identity in clear (the
key is read from the key file) or its pseudonym ("p:...").

The directory is audit.dir from the configuration, else {data_dir}/audit.
When state.postgres names a database (and --dir is not given), both read
the replicas' shared chain from it instead; a problem in a row is named by
its seq and the replica that wrote it, and query shows a REPLICA column.
The verify key is <key>.pub (or the signing key itself), where <key> is
audit.key_file, else <dir>.key next to the directory.

Flags:
`

// Audit implements `modgate audit verify|query`. It returns the exit
// status: 0 on success, 1 when the log does not verify or cannot be read,
// 2 for bad arguments or an unusable configuration.
func Audit(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runAudit(ctx, args, stdout, stderr, auditDeps{getenv: os.Getenv, now: time.Now})
}

// auditDeps are Audit's connections to the process, replaced in tests.
type auditDeps struct {
	getenv func(string) string
	now    func() time.Time
}

func runAudit(_ context.Context, args []string, stdout, stderr io.Writer, deps auditDeps) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, auditUsage)
		return 2
	}
	switch args[0] {
	case "verify":
		return auditVerify(args[1:], stdout, stderr, deps)
	case "query":
		return auditQuery(args[1:], stdout, stderr, deps)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, auditUsage)
		return 0
	}
	fmt.Fprintf(stderr, "modgate audit: unknown subcommand %q (want verify or query)\n", args[0])
	return 2
}

// auditFlags are the flags both subcommands share.
type auditFlags struct {
	fs      *flag.FlagSet
	config  *string
	dataDir *string
	dir     *string
}

func newAuditFlags(name string, stderr io.Writer, deps auditDeps) auditFlags {
	set := flag.NewFlagSet("modgate audit "+name, flag.ContinueOnError)
	set.SetOutput(stderr)
	set.Usage = func() {
		fmt.Fprint(set.Output(), auditUsage)
		set.PrintDefaults()
	}
	return auditFlags{
		fs:      set,
		config:  set.String("config", deps.getenv("MODGATE_CONFIG"), "read the configuration from `FILE` (also MODGATE_CONFIG)"),
		dataDir: set.String("data-dir", "", "data `directory` (default: data_dir from the configuration)"),
		dir:     set.String("dir", "", "the audit log `DIR`ectory (default: audit.dir, else {data_dir}/audit)"),
	}
}

// parse parses args and reports the exit status to return if it fails.
func (f auditFlags) parse(args []string) (int, bool) {
	if err := f.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		return 2, false
	}
	if f.fs.NArg() > 0 {
		fmt.Fprintf(f.fs.Output(), "%s: unexpected arguments %q\n", f.fs.Name(), f.fs.Args())
		return 2, false
	}
	return 0, true
}

// auditConfig loads the configuration the audit commands need: defaults,
// file, environment and --data-dir (dataDir, applied like serve's flag),
// the data directory resolved, and the problems with the audit section and
// (unless the directory is given, dirGiven) data_dir. The rest, upstreams
// and the like, does not matter to reading the log, and go env is not
// consulted.
func auditConfig(file, dataDir string, dirGiven bool, deps auditDeps) (config.Config, error) {
	cfg, err := config.Load(file, deps.getenv)
	if err != nil {
		return config.Config{}, err
	}
	if dataDir != "" {
		if err := cfg.Set("data_dir", dataDir, "flag --data-dir"); err != nil {
			return config.Config{}, err
		}
	}
	if err := cfg.Resolve(config.GoEnv{}); err != nil && !dirGiven {
		return config.Config{}, err
	}
	var relevant []error
	for _, e := range flattenErrors(cfg.Validate()) {
		var p *config.Problem
		if errors.As(e, &p) && ((p.Key == "data_dir" && !dirGiven) || strings.HasPrefix(p.Key, "audit.")) {
			relevant = append(relevant, e)
		}
	}
	return cfg, errors.Join(relevant...)
}

// flattenErrors returns the errors inside an errors.Join.
func flattenErrors(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flattenErrors(e)...)
		}
		return out
	}
	return []error{err}
}

// location returns the configuration and the log directory.
func (f auditFlags) location(deps auditDeps, stderr io.Writer) (config.Config, string, bool) {
	cfg, err := auditConfig(*f.config, *f.dataDir, *f.dir != "", deps)
	if err != nil {
		fmt.Fprintf(stderr, "%s: invalid configuration:\n%v\n", f.fs.Name(), err)
		return config.Config{}, "", false
	}
	dir := *f.dir
	if dir == "" {
		dir = cfg.AuditDir()
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		fmt.Fprintf(stderr, "%s: no audit log in %s (set --dir, --data-dir, audit.dir or data_dir)\n", f.fs.Name(), dir)
		return config.Config{}, "", false
	}
	return cfg, dir, true
}

func auditVerify(args []string, stdout, stderr io.Writer, deps auditDeps) int {
	f := newAuditFlags("verify", stderr, deps)
	keyFile := f.fs.String("public-key", "", "read the public key from `FILE` (default: <key>.pub, else <key>, where <key> is audit.key_file or <dir>.key)")
	f.fs.StringVar(keyFile, "key", "", "the same as --public-key `FILE`")
	checkpoints := f.fs.String("checkpoints", "", "also check the log against this outside copy of the checkpoints, `FILE` (default: audit.anchor_file if set; \"none\": no copy)")
	asOf := f.fs.String("as-of", "", "judge the end of the log as of `T`, when a copy was taken (default: now)")
	if code, ok := f.parse(args); !ok {
		return code
	}
	now := deps.now()
	var opts audit.VerifyOptions
	if *asOf != "" {
		t, err := parseAuditTime(*asOf, now)
		if err != nil {
			fmt.Fprintf(stderr, "modgate audit verify: --as-of: %v\n", err)
			return 2
		}
		now = t
	}
	opts.Now = now
	src, code, ok := f.open(deps, stderr)
	if !ok {
		return code
	}
	defer src.close()
	cfg, dir := src.cfg, src.dir
	opts.Interval = cfg.Audit.CheckpointInterval.Duration
	pub, keyOK, err := src.sharedKey(*keyFile)
	if err != nil {
		fmt.Fprintf(stderr, "modgate audit verify: %v\n", err)
		return 1
	}
	if !keyOK && *keyFile == "" {
		key := audit.KeyPath(dir)
		if *f.dir == "" || cfg.Audit.KeyFile != "" {
			key = cfg.AuditKeyFile()
		}
		*keyFile = key + ".pub"
		if _, err := os.Stat(*keyFile); errors.Is(err, fs.ErrNotExist) {
			*keyFile = key
		}
	}
	if !keyOK {
		if pub, err = audit.LoadPublicKey(*keyFile); err != nil {
			fmt.Fprintf(stderr, "modgate audit verify: %v\n", err)
			return 2
		}
	}
	switch *checkpoints {
	case "none":
	case "":
		opts.Checkpoints = cfg.Audit.AnchorFile
	default:
		opts.Checkpoints = *checkpoints
	}
	if opts.Checkpoints != "" {
		if _, err := os.Stat(opts.Checkpoints); err != nil {
			fmt.Fprintf(stderr, "modgate audit verify: outside checkpoints: %v (a missing copy is a problem in itself; --checkpoints none skips it)\n", err)
			return 1
		}
	}
	rep, err := src.verify(pub, opts)
	if err != nil && !errors.Is(err, audit.ErrTampered) {
		fmt.Fprintf(stderr, "modgate audit verify: %v\n", err)
		return 1
	}
	fmt.Fprint(stdout, rep.String())
	if !rep.OK() {
		return 1
	}
	return 0
}

func auditQuery(args []string, stdout, stderr io.Writer, deps auditDeps) int {
	f := newAuditFlags("query", stderr, deps)
	since := f.fs.String("since", "", "only records at or after `T`")
	until := f.fs.String("until", "", "only records before `T`")
	identity := f.fs.String("identity", "", "only records of the identity `X`")
	modPattern := f.fs.String("module", "", "only records of modules matching `PATTERN`")
	result := f.fs.String("result", "", "only records with the result `R`")
	asJSON := f.fs.Bool("json", false, "print JSON lines instead of a table")
	if code, ok := f.parse(args); !ok {
		return code
	}
	now := deps.now()
	var filter audit.Filter
	var err error
	if filter.From, err = parseAuditTime(*since, now); err != nil {
		fmt.Fprintf(stderr, "modgate audit query: --since: %v\n", err)
		return 2
	}
	if filter.To, err = parseAuditTime(*until, now); err != nil {
		fmt.Fprintf(stderr, "modgate audit query: --until: %v\n", err)
		return 2
	}
	if *result != "" {
		if filter.Result, err = audit.ParseResult(*result); err != nil {
			fmt.Fprintf(stderr, "modgate audit query: --result: %v\n", err)
			return 2
		}
	}
	filter.Module = *modPattern
	src, code, ok := f.open(deps, stderr)
	if !ok {
		return code
	}
	defer src.close()
	cfg, dir := src.cfg, src.dir
	filter.Identity = *identity
	if *identity != "" && cfg.Audit.Pseudonymize && !strings.HasPrefix(*identity, audit.PseudonymPrefix) {
		keyFile := cfg.Audit.PseudonymKeyFile
		if keyFile == "" {
			keyFile = audit.PseudonymKeyPath(dir)
		}
		key, err := audit.LoadSecret(keyFile)
		if err != nil {
			fmt.Fprintf(stderr, "modgate audit query: --identity: the log is pseudonymised and %v\n", err)
			return 2
		}
		filter.Identity = audit.Pseudonym(key, *identity)
	}

	var emit func(audit.Record) error
	var flush func() error
	if *asJSON {
		enc := json.NewEncoder(stdout)
		emit = func(r audit.Record) error { return enc.Encode(r) }
		flush = func() error { return nil }
	} else {
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		// A shared chain has records of several replicas: say whose.
		replicaHead, replica := "", func(audit.Record) string { return "" }
		if src.chain != nil {
			replicaHead, replica = "\tREPLICA", func(r audit.Record) string { return "\t" + dash(r.Replica) }
		}
		fmt.Fprintln(tw, "TIME\tRESULT\tIDENTITY\tCLIENT\tMODULE\tFILE\tRULE/ACTION\tBYTES\tDURATION\tREQUEST"+replicaHead)
		emit = func(r audit.Record) error {
			mod := r.Module
			if r.Version != "" {
				mod += "@" + r.Version
			}
			_, err := fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s%s\n",
				r.Time.UTC().Format(time.RFC3339), r.Result, dash(r.Identity), dash(r.ClientIP), dash(mod),
				dash(r.File), dash(r.Rule+r.Action), r.Bytes, r.Duration.Round(time.Millisecond), dash(r.RequestID), replica(r))
			return err
		}
		flush = tw.Flush
	}
	if err := src.query(filter, emit); err != nil {
		flush()
		fmt.Fprintf(stderr, "modgate audit query: %v\n", err)
		return 1
	}
	if err := flush(); err != nil {
		fmt.Fprintf(stderr, "modgate audit query: %v\n", err)
		return 1
	}
	return 0
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// parseAuditTime parses a --since/--until value: empty (no bound), a
// date, a date and time (UTC unless a zone is given), or a duration
// meaning that long before now.
func parseAuditTime(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("%q: a duration means that long ago and must not be negative", s)
		}
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time (write 2026-11-21, 2026-11-21T15:04, an RFC 3339 time, or a duration such as 24h)", s)
}
