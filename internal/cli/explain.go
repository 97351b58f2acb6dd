package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"

	"github.com/modgate/modgate/internal/config"
	"github.com/modgate/modgate/internal/policy"
	"github.com/modgate/modgate/internal/sumdb"
	"github.com/modgate/modgate/internal/upstream"
)

const explainUsage = `usage: modgate explain [--config FILE] MODULE[@VERSION]

Explain prints what modgate would do for a module: where it is stored, which
upstreams it is asked from and in what order, whether the checksum database
verifies it, and which policy applies, each with the setting that decides it
and where that setting came from. It contacts nothing.

Flags:
`

// Explain implements `modgate explain [--config FILE] MODULE[@VERSION]`.
// It writes a plain-language explanation to stdout and returns the exit
// status: 0 on success, 2 for bad arguments, an invalid module path or
// version, a configuration that does not load or validate, or an
// upstream.goproxy whose every entry points at modgate itself (the problems
// go to stderr).
func Explain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return explain(ctx, args, stdout, stderr, explainDeps{getenv: os.Getenv, goEnv: config.ReadGoEnv})
}

// explainDeps are Explain's connections to the process, replaced in tests.
type explainDeps struct {
	getenv func(string) string
	goEnv  func(context.Context) (config.GoEnv, error)
}

func explain(ctx context.Context, args []string, stdout, stderr io.Writer, deps explainDeps) int {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", deps.getenv("MODGATE_CONFIG"), "read the configuration from `FILE` (also MODGATE_CONFIG; default: none, only MODGATE_* and go env)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), explainUsage)
		fs.PrintDefaults()
	}
	// Flags may come before or after the arguments.
	positional, status, ok := parseInterspersed(fs, args)
	if !ok {
		return status
	}
	if len(positional) != 1 {
		fmt.Fprintf(stderr, "modgate explain: want exactly one MODULE[@VERSION], got %d arguments\n", len(positional))
		fs.Usage()
		return 2
	}

	modPath, version, hasVersion := strings.Cut(positional[0], "@")
	if err := module.CheckPath(modPath); err != nil {
		fmt.Fprintf(stderr, "modgate explain: %v\n", err)
		return 2
	}
	if hasVersion {
		if err := module.Check(modPath, version); err != nil {
			fmt.Fprintf(stderr, "modgate explain: %v (explain takes a semantic version such as v1.2.3, or none)\n", err)
			return 2
		}
	}

	cfg, err := config.Load(*configPath, deps.getenv)
	if err != nil && !errors.Is(err, config.ErrInvalid) {
		fmt.Fprintf(stderr, "modgate explain: %v\n", err)
		return 2
	}
	// The file's problems (err) come back from Validate, with the rest.
	goenv, err := deps.goEnv(ctx)
	if err != nil {
		// Not fatal: the configuration may not need go env at all, and
		// Validate says what is missing if it does.
		fmt.Fprintf(stderr, "modgate explain: %v\n", err)
	}
	if err := cfg.Resolve(goenv); err != nil {
		fmt.Fprintf(stderr, "modgate explain: %v\n", err)
		return 2
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "modgate explain: invalid configuration:\n%v\n", err)
		return 2
	}

	// Everything printed comes from the redacted copy: no credentials on
	// the terminal. The chain is built from it too: redaction changes only
	// user information, never the hosts Build compares with modgate's own.
	red := cfg.Redacted()
	// The chain the server would build (see server.New): the same Self,
	// so the same entries are left out. Building contacts nothing.
	chain, err := upstream.Build(red.Upstream.GOPROXY, upstream.BuildOptions{Self: []string{red.Listen, red.PublicURL}})
	if err != nil {
		fmt.Fprintf(stderr, "modgate explain: upstream.goproxy: %v\n", err)
		return 2
	}
	e := &explainer{w: stdout, cfg: red, chain: chain, path: modPath, version: version}
	e.module()
	e.upstreams()
	e.checksums()
	e.policy()
	if e.err != nil {
		fmt.Fprintf(stderr, "modgate explain: %v\n", e.err)
		return 2
	}
	return 0
}

// An explainer writes the sections of the explanation, remembering the
// first error (writing, or an impossible escaping or parse failure).
type explainer struct {
	w       io.Writer
	cfg     config.Config
	chain   *upstream.Chain // built from cfg's upstream.goproxy
	path    string
	version string
	err     error
}

func (e *explainer) printf(format string, args ...any) {
	if e.err != nil {
		return
	}
	_, e.err = fmt.Fprintf(e.w, format, args...)
}

func (e *explainer) module() {
	escaped, err := module.EscapePath(e.path)
	if err != nil {
		e.err = err // CheckPath accepted the path, so this cannot happen
		return
	}
	if e.version == "" {
		e.printf("module %s\n", e.path)
	} else {
		e.printf("module %s@%s\n", e.path, e.version)
	}
	e.printf("\nStorage (data_dir %s, from %s)\n", e.cfg.DataDir, e.cfg.Where("data_dir"))
	e.printf("  escaped path:        %s\n", escaped)
	e.printf("  storage key prefix:  %s/@v/\n", escaped)
	if e.cfg.Storage.Type == config.StorageTypeS3 {
		e.explainS3() // storage_s3.go
	}
	switch {
	case e.version == "":
	case semver.Canonical(e.version) != e.version:
		e.printf("  %s is not a canonical version: the go command resolves it as a query (to a version such as %s), which is what gets stored\n",
			e.version, semver.Canonical(e.version))
	default:
		v, err := module.EscapeVersion(e.version)
		if err != nil {
			e.err = err
			return
		}
		e.printf("  files:               %s/@v/%s.info, .mod and .zip\n", escaped, v)
	}
}

func (e *explainer) upstreams() {
	c := e.cfg
	for i, src := range c.Private.Sources {
		if p, ok := explainMatchExact(src.Patterns, e.path); ok {
			e.printf("\nUpstream: private source %q (private.sources[%d])\n", src.Name, i)
			e.printf("  %s matches its pattern %q, so it is fetched from that Git server and never\n", e.path, p)
			e.printf("  from a proxy in upstream.goproxy (the name does not leak to them).\n")
			if src.Discovery {
				e.printf("  repository: found through go-import meta tags over HTTPS\n")
			} else {
				e.printf("  repository: from the template %s\n", src.URL)
			}
			e.printf("  check it with: modgate source test %s %s\n", src.Name, e.path)
			return
		}
	}
	if p, ok := explainMatch(c.Private.Patterns(), e.path); ok {
		e.printf("\nUpstream: none\n")
		e.printf("  %s matches private pattern %q only in another case: it is never fetched from a\n", e.path, p)
		e.printf("  proxy (the name would leak), and no private source serves this spelling, so requests\n")
		e.printf("  answer \"not found\". Use the module path as the repository's go.mod spells it.\n")
		return
	}
	e.printf("\nUpstreams (upstream.goproxy %q, from %s)\n", c.Upstream.GOPROXY, c.Where("upstream.goproxy"))
	if p, ok := explainMatch(c.Upstream.NoProxy, e.path); ok {
		e.printf("  %s matches upstream.noproxy pattern %q (from %s),\n", e.path, p, c.Where("upstream.noproxy"))
		e.printf("  so it is never fetched from a proxy, and no private.sources entry serves it.\n")
		e.printf("  Requests for it answer \"not found\" unless its files are already stored;\n")
		e.printf("  add a private source for it.\n")
		return
	}
	if len(c.Upstream.NoProxy) > 0 {
		e.printf("  %s matches no upstream.noproxy pattern (%s, from %s).\n",
			e.path, strings.Join(c.Upstream.NoProxy, ", "), c.Where("upstream.noproxy"))
	}
	entries := e.chain.Links()
	if len(entries) == 1 && entries[0].URL == "off" {
		e.printf("  upstream.goproxy is \"off\": nothing is fetched; only files already stored are served.\n")
	} else {
		e.printf("  modgate asks, in this order:\n")
		for i, entry := range entries {
			name, last := entry.URL, i == len(entries)-1
			switch name {
			case "direct":
				e.printf("  %d. direct: the module's Git repository, found as the go command finds it (https only, no credentials; other version control systems answer \"not found\")\n", i+1)
			case "off":
				e.printf("  %d. off: stop here and answer \"not found\"\n", i+1)
			default:
				e.printf("  %d. %s\n", i+1, name)
			}
			switch {
			case last || name == "off":
			case entry.FallThroughOnAnyError:
				e.printf("     if it fails in any way (\"|\"), modgate asks the next entry\n")
			default:
				e.printf("     if it answers \"not found\" (\",\"), modgate asks the next entry; any other failure is final\n")
			}
		}
	}
	if excluded := e.chain.Excluded(); len(excluded) > 0 {
		self := fmt.Sprintf("listen %q", c.Listen)
		if c.PublicURL != "" {
			self += fmt.Sprintf(", public_url %q", c.PublicURL)
		}
		verb := "they point"
		if len(excluded) == 1 {
			verb = "it points"
		}
		e.printf("  left out, because %s at modgate itself (%s): %s\n", verb, self, strings.Join(excluded, ", "))
	}
}

func (e *explainer) checksums() {
	c := e.cfg
	e.printf("\nChecksum database (sumdb.gosumdb %q, from %s)\n", c.SumDB.GOSUMDB, c.Where("sumdb.gosumdb"))
	db, err := sumdb.ParseGOSUMDB(c.SumDB.GOSUMDB)
	if err != nil {
		e.err = err
		return
	}
	if db.Off() {
		e.printf("  not verified: sumdb.gosumdb is \"off\", so no module is checked against a checksum database.\n")
		return
	}
	if p, ok := explainMatch(c.Private.Patterns(), e.path); ok {
		e.printf("  not in the public database: %s matches private pattern %q, so it is never looked\n", e.path, p)
		e.printf("  up there (the name would leak). The first hashes modgate sees for each version are\n")
		e.printf("  recorded, and a different copy later (a moved tag) is refused. Clients set\n")
		e.printf("  GONOSUMDB=%s.\n", p)
		return
	}
	if p, ok := explainMatch(c.SumDB.NoSumDB, e.path); ok {
		e.printf("  not in the database: %s matches sumdb.nosumdb pattern %q (from %s); the first\n", e.path, p, c.Where("sumdb.nosumdb"))
		e.printf("  hashes seen for each version are recorded, and a different copy later is refused.\n")
		return
	}
	_, rest, _ := strings.Cut(db.Key, "+")
	hash, _, _ := strings.Cut(rest, "+")
	e.printf("  verified: every file is checked against checksum database %s (key hash %s) before it is stored.\n", db.Name, hash)
	if len(c.SumDB.NoSumDB) > 0 {
		e.printf("  (%s matches no sumdb.nosumdb pattern: %s, from %s.)\n",
			e.path, strings.Join(c.SumDB.NoSumDB, ", "), c.Where("sumdb.nosumdb"))
	}
}

func (e *explainer) policy() {
	rules := e.cfg.Policy.Rules
	e.printf("\nPolicy (%d rules, from %s)\n", len(rules), e.cfg.Where("policy.rules"))
	if len(rules) == 0 {
		e.printf("  no rules: every version is served\n")
		return
	}
	if e.cfg.Policy.DryRun {
		e.printf("  policy.dry_run is on: rules are evaluated and recorded, never enforced\n")
	}
	// What each rule says about the module as a whole, and which of its
	// patterns matched (patterns match without regard to case).
	var evals []policy.Evaluation
	if pc, err := e.cfg.Policy.Engine(); err == nil {
		if eng, err := policy.New(pc, policy.Deps{}); err == nil {
			evals = eng.Decide(policy.Subject{Module: e.path, File: policy.List}).Rules
		}
	}
	for i, r := range rules {
		if i >= len(evals) {
			e.printf("  - %s\n", r.Name)
			continue
		}
		ev := evals[i]
		line := fmt.Sprintf("  - %s (%s): %s", r.Name, ev.Kind, ev.Outcome)
		if ev.Pattern != "" && !strings.Contains(ev.Detail, fmt.Sprintf("%q", ev.Pattern)) {
			line += fmt.Sprintf(", pattern %q", ev.Pattern)
		}
		if ev.Detail != "" {
			line += ": " + ev.Detail
		}
		e.printf("%s\n", line)
	}
	e.printf("  Decisions depend on the version, its age, vulnerabilities and licence: ask a running\n")
	e.printf("  server with GET /policy/explain?module=%s&version=VERSION, or run modgate check.\n", e.path)
}

// explainMatch returns the first pattern in pats that matches modPath by
// the go command's GOPRIVATE rules (module.MatchPrefixPatterns) without
// regard to case, as the server matches upstream.noproxy, sumdb.nosumdb
// and private patterns (a case variant of a private path is private too).
func explainMatch(pats []string, modPath string) (string, bool) {
	for _, p := range pats {
		if module.MatchPrefixPatterns(strings.ToLower(p), strings.ToLower(modPath)) {
			return p, true
		}
	}
	return "", false
}

// explainMatchExact is explainMatch with case: which Git source serves a
// module path, as the Git sources match.
func explainMatchExact(pats []string, modPath string) (string, bool) {
	for _, p := range pats {
		if module.MatchPrefixPatterns(p, modPath) {
			return p, true
		}
	}
	return "", false
}
