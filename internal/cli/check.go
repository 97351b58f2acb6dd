package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"

	"github.com/modgate/modgate/internal/config"
	"github.com/modgate/modgate/internal/policy"
	"github.com/modgate/modgate/internal/vulndb"
)

const checkUsage = `usage: modgate check [--policy FILE] [--vulndb DIR] [--json] [go.mod|go.sum|dir]

Check evaluates every module of a build list against a modgate policy,
offline, and exits 1 when any is blocked: the CI gate for the rules the
proxy enforces.

The build list is read from go.sum (every module with a zip hash line) or,
when there is no go.sum, from the go.mod requirements (replacements
applied, local directory replacements skipped). A directory argument
(default ".") means its go.sum, else its go.mod.

Vulnerabilities come from the local copy of the database (--vulndb, else
policy.vulndb.dir). Licences are read from the zips in the module cache
(go env GOMODCACHE) and versions are dated by the .info files there; a
module not in the cache is reported as "not checked" for those rules (run
'go mod download' first to check them). A pseudo-version is mapped to the
tags at its commit through the .info files of those tags in the cache; one
that cannot be mapped is judged as policy.unmapped_pseudo_versions says.

Exit status: 0 nothing blocked (warnings allowed), 1 something blocked,
2 bad arguments or an invalid policy.

Flags:
`

// Check implements `modgate check`. It writes the report to stdout
// (a table, or JSON with --json) and problems to stderr, and returns the
// exit status: 0 when nothing is blocked, 1 when something is, 2 for bad
// arguments, a policy that does not load or validate, or an unreadable
// build list.
func Check(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return check(ctx, args, stdout, stderr, checkDeps{
		getenv:     os.Getenv,
		goModCache: goModCache,
		openVulns:  openVulnDB,
		now:        time.Now,
	})
}

// checkDeps are Check's connections to the process, replaced in tests.
type checkDeps struct {
	getenv     func(string) string
	goModCache func(context.Context) (string, error)
	openVulns  func(dir string) (policy.VulnSource, error)
	now        func() time.Time
}

// openVulnDB opens the local copy of the vulnerability database in dir
// (the served layout or a flat directory of OSV entries, see vulndb.Open).
func openVulnDB(dir string) (policy.VulnSource, error) {
	db, err := vulndb.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("reading the vulnerability database: %w", err)
	}
	return vulnSource{db}, nil
}

// vulnSource gives the policy engine the database's answers.
type vulnSource struct{ db *vulndb.DB }

func (s vulnSource) Affecting(module, version string) []policy.Vuln {
	vs := s.db.Affecting(module, version)
	if len(vs) == 0 {
		return nil
	}
	out := make([]policy.Vuln, len(vs))
	for i, v := range vs {
		out[i] = policy.Vuln(v)
	}
	return out
}

// goModCache asks the go command where the module cache is.
func goModCache(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMODCACHE").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMODCACHE: %w", err)
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		return "", errors.New("go env GOMODCACHE: empty")
	}
	return dir, nil
}

func check(ctx context.Context, args []string, stdout, stderr io.Writer, deps checkDeps) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	policyFile := fs.String("policy", deps.getenv("MODGATE_CONFIG"), "read the policy from the modgate config `FILE` (also MODGATE_CONFIG)")
	vulnDir := fs.String("vulndb", "", "read vulnerabilities from the local database copy in `DIR` (default: policy.vulndb.dir)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), checkUsage)
		fs.PrintDefaults()
	}
	// Flags may come before or after the arguments.
	positional, status, ok := parseInterspersed(fs, args)
	if !ok {
		return status
	}
	if len(positional) > 1 {
		fmt.Fprintf(stderr, "modgate check: want at most one go.mod, go.sum or directory, got %d arguments\n", len(positional))
		fs.Usage()
		return 2
	}
	target := "."
	if len(positional) == 1 {
		target = positional[0]
	}

	rep, err := runCheck(ctx, target, *policyFile, *vulnDir, deps, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "modgate check: %v\n", err)
		return 2
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintf(stderr, "modgate check: %v\n", err)
			return 2
		}
	} else {
		rep.writeTable(stdout)
	}
	if rep.Summary.Blocked > 0 {
		return 1
	}
	return 0
}

// checkReport is the result of a check, also its JSON form.
type checkReport struct {
	Source  string            `json:"source"` // the go.sum or go.mod read
	Summary checkSummary      `json:"summary"`
	Modules []policy.Decision `json:"modules"`
	// NotChecked maps a rule name to the modules it could not check
	// ("module@version: licence not known yet (zip not seen)").
	NotChecked map[string][]string `json:"not_checked,omitempty"`
}

type checkSummary struct {
	Modules int `json:"modules"`
	Blocked int `json:"blocked"`
	Warned  int `json:"warned"`
	Allowed int `json:"allowed"`
}

// runCheck loads the policy and the build list and decides every module.
func runCheck(ctx context.Context, target, policyFile, vulnDir string, deps checkDeps, stderr io.Writer) (*checkReport, error) {
	if policyFile == "" {
		return nil, errors.New("no policy: pass --policy FILE (a modgate config file with a policy section) or set MODGATE_CONFIG")
	}
	cfg, err := config.Load(policyFile, deps.getenv)
	if err != nil {
		return nil, fmt.Errorf("invalid policy:\n%w", err)
	}
	if err := policyProblems(cfg.Validate()); err != nil {
		return nil, fmt.Errorf("invalid policy:\n%w", err)
	}
	pcfg, err := cfg.Policy.Engine()
	if err != nil {
		return nil, fmt.Errorf("invalid policy:\n%w", err)
	}

	var pdeps policy.Deps
	pdeps.Now = deps.now
	if i := slices.IndexFunc(pcfg.Rules, func(r policy.Rule) bool { return r.Kind == policy.KindVulnerabilities }); i >= 0 {
		if vulnDir == "" {
			vulnDir = cfg.Policy.VulnDB.Dir
		}
		if vulnDir == "" {
			return nil, fmt.Errorf("rule %q checks vulnerabilities: pass --vulndb DIR (a local copy of the vulnerability database) or set policy.vulndb.dir", pcfg.Rules[i].Name)
		}
		if pdeps.Vulns, err = deps.openVulns(vulnDir); err != nil {
			return nil, err
		}
	}

	source, mods, err := buildList(target)
	if err != nil {
		return nil, err
	}

	cache, err := deps.goModCache(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "modgate check: warning: no module cache, licences and ages are not checked: %v\n", err)
	} else {
		pdeps.Licenses = policy.NewLicenseDetector("", func(m module.Version) (io.ReadCloser, error) {
			name, err := cacheFile(cache, m, ".zip")
			if err != nil {
				return nil, err
			}
			return os.Open(name)
		})
		pdeps.Tags = policy.NewTagIndex(cacheInfos(cache))
	}
	engine, err := policy.New(pcfg, pdeps)
	if err != nil {
		return nil, fmt.Errorf("invalid policy:\n%w", err)
	}

	rep := &checkReport{Source: source, Modules: []policy.Decision{}}
	for _, m := range mods {
		s := policy.Subject{Module: m.Path, Version: m.Version, File: policy.Zip}
		if cache != "" {
			s.InfoTime = infoTime(cache, m)
		}
		d := engine.Decide(s)
		rep.Modules = append(rep.Modules, d)
		switch d.Verdict {
		case policy.Block:
			rep.Summary.Blocked++
		case policy.Warn:
			rep.Summary.Warned++
		default:
			rep.Summary.Allowed++
		}
		for _, ev := range d.Rules {
			if ev.Outcome == policy.OutcomeNotChecked {
				if rep.NotChecked == nil {
					rep.NotChecked = make(map[string][]string)
				}
				rep.NotChecked[ev.Rule] = append(rep.NotChecked[ev.Rule], m.String()+": "+ev.Detail)
			}
		}
	}
	rep.Summary.Modules = len(mods)
	return rep, nil
}

// policyProblems keeps the problems of a Validate error that are about the
// policy section: check reads only that section of the file, so a data
// directory or upstream that is not set is not its concern.
func policyProblems(err error) error {
	if err == nil {
		return nil
	}
	var keep []error
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var p *config.Problem
		if !errors.As(err, &p) || strings.HasPrefix(p.Key, "policy.") || p.Key == "policy" || p.Key == "" {
			keep = append(keep, err)
		}
	}
	walk(err)
	return errors.Join(keep...)
}

// buildList reads the modules to check from target: a go.sum, a go.mod,
// or a directory holding either (go.sum preferred). It returns the file
// read and the modules, sorted and without duplicates.
func buildList(target string) (string, []module.Version, error) {
	fi, err := os.Stat(target)
	if err != nil {
		return "", nil, fmt.Errorf("reading the build list: %w", err)
	}
	file := target
	if fi.IsDir() {
		file = filepath.Join(target, "go.sum")
		if _, err := os.Stat(file); errors.Is(err, fs.ErrNotExist) {
			file = filepath.Join(target, "go.mod")
		}
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return "", nil, fmt.Errorf("reading the build list: %w", err)
	}
	var mods []module.Version
	if strings.HasSuffix(file, ".sum") {
		mods, err = parseGoSum(file, data)
	} else {
		mods, err = parseGoMod(file, data)
	}
	if err != nil {
		return "", nil, err
	}
	slices.SortFunc(mods, func(a, b module.Version) int {
		return strings.Compare(a.Path+"@"+a.Version, b.Path+"@"+b.Version)
	})
	return file, slices.Compact(mods), nil
}

// parseGoSum returns the modules with a zip hash line: those whose code
// the build downloads. Lines for a go.mod alone ("v1.2.3/go.mod") are
// modules only read for the module graph.
func parseGoSum(name string, data []byte) ([]module.Version, error) {
	var mods []module.Version
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			return nil, fmt.Errorf("%s:%d: want \"module version hash\", got %q", name, line, sc.Text())
		}
		if strings.HasSuffix(f[1], "/go.mod") {
			continue
		}
		m := module.Version{Path: f[0], Version: f[1]}
		if err := module.Check(m.Path, m.Version); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", name, line, err)
		}
		mods = append(mods, m)
	}
	return mods, sc.Err()
}

// parseGoMod returns the required modules, with replacements applied;
// modules replaced by a local directory are left out (there is nothing to
// download).
func parseGoMod(name string, data []byte) ([]module.Version, error) {
	f, err := modfile.Parse(name, data, nil)
	if err != nil {
		return nil, err
	}
	var mods []module.Version
	for _, r := range f.Require {
		m := r.Mod
		for _, rep := range f.Replace {
			if rep.Old.Path == m.Path && (rep.Old.Version == "" || rep.Old.Version == m.Version) {
				m = rep.New
			}
		}
		if m.Version == "" {
			continue // a local directory
		}
		mods = append(mods, m)
	}
	return mods, nil
}

// cacheFile returns the path of mod's file with suffix (".zip", ".info")
// in the module cache's download directory.
func cacheFile(cache string, mod module.Version, suffix string) (string, error) {
	p, err := module.EscapePath(mod.Path)
	if err != nil {
		return "", err
	}
	v, err := module.EscapeVersion(mod.Version)
	if err != nil {
		return "", err
	}
	return filepath.Join(cache, "cache", "download", filepath.FromSlash(p), "@v", v+suffix), nil
}

// cacheInfos gives the policy's TagIndex the .info files of the module
// cache: a pseudo-version is mapped to a tag when the tag's .info (with its
// Origin) is in the cache, as it is after 'go mod download' of the tag.
type cacheInfos string

// Versions returns the versions whose .info files are in the cache.
func (c cacheInfos) Versions(path string) ([]string, error) {
	name, err := cacheFile(string(c), module.Version{Path: path, Version: "v0.0.0"}, ".info")
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(filepath.Dir(name))
	if err != nil {
		return nil, err
	}
	var versions []string
	for _, e := range entries {
		if esc, ok := strings.CutSuffix(e.Name(), ".info"); ok {
			if v, err := module.UnescapeVersion(esc); err == nil {
				versions = append(versions, v)
			}
		}
	}
	return versions, nil
}

func (c cacheInfos) Info(path, version string) ([]byte, error) {
	name, err := cacheFile(string(c), module.Version{Path: path, Version: version}, ".info")
	if err != nil {
		return nil, err
	}
	return os.ReadFile(name)
}

// infoTime returns the Time in mod's .info file in the module cache, or
// zero when it is not there.
func infoTime(cache string, mod module.Version) time.Time {
	name, err := cacheFile(cache, mod, ".info")
	if err != nil {
		return time.Time{}
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return time.Time{}
	}
	var info struct{ Time time.Time }
	if json.Unmarshal(data, &info) != nil {
		return time.Time{}
	}
	return info.Time
}

// writeTable prints the report for people: one row per rule that matched
// (several for a module several rules object to) and one for each module
// no rule objects to, blocked modules first, then a summary.
func (r *checkReport) writeTable(w io.Writer) {
	order := slices.Clone(r.Modules)
	slices.SortStableFunc(order, func(a, b policy.Decision) int { return int(b.Verdict) - int(a.Verdict) })
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MODULE\tVERSION\tVERDICT\tRULE\tREASON\tFIX")
	for _, d := range order {
		if len(d.Matches) == 0 {
			fmt.Fprintf(tw, "%s\t%s\t%s\t-\t-\t-\n", d.Module, d.Version, d.Verdict)
			continue
		}
		for _, m := range d.Matches {
			verdict := string(m.Action)
			if m.DryRun {
				verdict = "dry run: " + verdict
			}
			reason := m.Detail
			if m.Pattern != "" && m.Pattern != d.Module && !strings.Contains(reason, m.Pattern) {
				// Patterns match in any case: say which one did.
				reason += fmt.Sprintf(" (pattern %q)", m.Pattern)
			}
			if m.Reason != "" {
				reason += "; " + m.Reason
			}
			if m.Contact != "" {
				reason += "; contact " + m.Contact
			}
			fix := m.Fix
			if fix == "" {
				fix = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.Module, d.Version, verdict, m.Rule, joinLines(reason), fix)
		}
	}
	tw.Flush()
	s := r.Summary
	fmt.Fprintf(w, "\n%s: %d modules: %d blocked, %d warned, %d allowed\n", r.Source, s.Modules, s.Blocked, s.Warned, s.Allowed)
	rules := make([]string, 0, len(r.NotChecked))
	for rule := range r.NotChecked {
		rules = append(rules, rule)
	}
	slices.Sort(rules)
	for _, rule := range rules {
		n := len(r.NotChecked[rule])
		noun := "modules"
		if n == 1 {
			noun = "module"
		}
		fmt.Fprintf(w, "rule %q not checked for %d %s (for licences and ages, run 'go mod download' first), e.g. %s\n",
			rule, n, noun, r.NotChecked[rule][0])
	}
}

// oneLine joins the lines of a multi-line reason.
func joinLines(s string) string { return strings.Join(strings.Fields(s), " ") }
