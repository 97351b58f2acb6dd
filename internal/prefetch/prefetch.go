// Package prefetch warms a modgate with everything the go command would
// download for a project: the go.mod files of every module version in its
// module graph (computed by package modgraph) and the .info, .mod and .zip
// of every module in its build list.
//
// It talks to modgate over the GOPROXY protocol only, so policy, access
// control and the audit log apply exactly as they do for the go command.
// Zips and .info files are requested with HEAD: modgate fetches, verifies
// and stores the file as for a GET, but sends nothing back, so warming a
// warm cache costs one round trip per file. modgate's X-Modgate-Cache
// header says whether a file was already stored. Everything modgate stores
// is stored atomically and only after verification, so an interrupted run
// resumes by running again; nothing is kept on the client side.
//
// The package does not own how modgate runs: the CLI points the Client at
// a server URL, or at an in-process server built from a data directory.
package prefetch

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"

	"github.com/modgate/modgate/internal/modgraph"
)

// A Request says what to prefetch.
type Request struct {
	GoMods  []string // go.mod files: their module graph and build list
	GoSums  []string // go.sum files: every module version listed
	Modules []string // module@version (or module, meaning @latest) arguments
	// All fetches every listed version of the modules named in Modules,
	// instead of the graph of one version.
	All bool
}

// Outcome says what happened to one file.
type Outcome string

const (
	Fetched Outcome = "fetched" // modgate fetched it from an upstream now
	Cached  Outcome = "cached"  // modgate had it already
	Refused Outcome = "refused" // modgate refused it (policy or access)
	Failed  Outcome = "failed"  // anything else: not found, upstream down
)

// An Item is one file's outcome.
type Item struct {
	Module  string  `json:"module"`
	Version string  `json:"version"`
	File    string  `json:"file"` // ".info", ".mod", ".zip", "list"
	Outcome Outcome `json:"outcome"`
	Bytes   int64   `json:"bytes,omitempty"`
	Error   string  `json:"error,omitempty"`
}

// A Summary is the result of Run.
type Summary struct {
	Fetched  int           `json:"fetched"`
	Cached   int           `json:"cached"`
	Refused  []Item        `json:"refused"`
	Failed   []Item        `json:"failed"`
	Bytes    int64         `json:"bytes"`    // of the files fetched or cached
	Versions int           `json:"versions"` // module versions touched
	Duration time.Duration `json:"duration_ns"`
}

// OK reports whether every file was fetched or already cached.
func (s *Summary) OK() bool { return len(s.Refused) == 0 && len(s.Failed) == 0 }

// JSON returns s as indented JSON.
func (s *Summary) JSON() []byte {
	if s.Refused == nil {
		s.Refused = []Item{}
	}
	if s.Failed == nil {
		s.Failed = []Item{}
	}
	out, _ := json.MarshalIndent(s, "", "  ")
	return append(out, '\n')
}

// A Progress hears about the work as it goes. Its methods are called from
// several goroutines, but never concurrently.
type Progress interface {
	// Planned says that n more files are known to be wanted.
	Planned(n int)
	// Done reports one file's outcome.
	Done(it Item)
}

// A Runner prefetches through one Client.
type Runner struct {
	Client   *Client
	Jobs     int      // concurrent requests, at least 1
	Progress Progress // may be nil

	mu    sync.Mutex
	seen  map[string]bool
	mods  map[module.Version]*modEntry
	sum   Summary
	bytes atomic.Int64
}

type modEntry struct {
	once sync.Once
	data []byte
	err  error
}

// Run prefetches everything req names and returns the summary. Its error
// is for a request that cannot be started at all (an unreadable go.mod);
// files that fail are in the summary.
func (r *Runner) Run(ctx context.Context, req Request) (*Summary, error) {
	start := time.Now()
	if r.Jobs < 1 {
		r.Jobs = 1
	}
	r.seen = make(map[string]bool)
	r.mods = make(map[module.Version]*modEntry)
	r.sum = Summary{}

	var mains []modgraph.Main
	for _, name := range req.GoMods {
		m, err := modgraph.ReadMain(name)
		if err != nil {
			return nil, err
		}
		mains = append(mains, m)
	}
	var files []file
	for _, name := range req.GoSums {
		fs, err := readGoSum(name)
		if err != nil {
			return nil, err
		}
		files = append(files, fs...)
	}
	named := make(map[string]bool)
	for _, arg := range req.Modules {
		path, query, hasVersion := strings.Cut(arg, "@")
		if err := module.CheckPath(path); err != nil {
			return nil, fmt.Errorf("%s: %w", arg, err)
		}
		if req.All {
			if hasVersion {
				return nil, fmt.Errorf("%s: -all takes module paths, without a version", arg)
			}
			named[path] = true
			continue
		}
		if query == "" {
			query = "latest"
		}
		v, err := r.resolveQuery(ctx, path, query)
		if err != nil {
			r.record(Item{Module: path, Version: query, File: ".info", Outcome: outcomeOf(err), Error: err.Error()}, false)
			continue
		}
		m := module.Version{Path: path, Version: v}
		data, err := r.goMod(ctx, m)
		if err != nil {
			continue // recorded
		}
		f, err := modfile.ParseLax("go.mod", data, nil)
		if err != nil {
			r.record(Item{Module: path, Version: v, File: ".mod", Outcome: Failed, Error: err.Error()}, false)
			continue
		}
		f.AddModuleStmt(path) // a module without go.mod has none
		// As for `go install m@v`: only a main module's own directives
		// apply, and a module version has no directory to replace from.
		f.Replace, f.Exclude = nil, nil
		mains = append(mains, modgraph.Main{File: f})
		files = append(files, buildFiles(m)...)
	}
	for path := range named {
		files = append(files, r.allVersions(ctx, path)...)
	}

	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, main := range mains {
		wg.Go(func() {
			g, _ := modgraph.Resolve(ctx, main, r.goMod, r.Jobs) // failures are recorded by goMod
			mu.Lock()
			defer mu.Unlock()
			for _, m := range g.Loaded {
				if fm, ok := g.Fetch(m); ok {
					files = append(files, file{fm, ".mod"})
				}
			}
			for _, m := range g.BuildList {
				if fm, ok := g.Fetch(m); ok {
					files = append(files, buildFiles(fm)...)
				}
			}
		})
	}
	wg.Wait()

	r.fetchAll(ctx, files)

	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.sum
	s.Bytes = r.bytes.Load()
	mods := make(map[string]bool)
	for k := range r.seen {
		mods[strings.SplitN(k, " ", 2)[0]] = true
	}
	s.Versions = len(mods)
	s.Duration = time.Since(start)
	sortItems(s.Refused)
	sortItems(s.Failed)
	return &s, nil
}

// file is one wanted protocol file.
type file struct {
	m   module.Version
	ext string
}

func buildFiles(m module.Version) []file {
	return []file{{m, ".info"}, {m, ".mod"}, {m, ".zip"}}
}

// claim reports whether f is new to this run, and marks it seen.
func (r *Runner) claim(m module.Version, ext string) bool {
	k := m.Path + "@" + m.Version + " " + ext
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen[k] {
		return false
	}
	r.seen[k] = true
	if r.Progress != nil {
		r.Progress.Planned(1)
	}
	return true
}

func (r *Runner) record(it Item, counted bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !counted && r.Progress != nil {
		r.Progress.Planned(1)
	}
	switch it.Outcome {
	case Fetched:
		r.sum.Fetched++
	case Cached:
		r.sum.Cached++
	case Refused:
		r.sum.Refused = append(r.sum.Refused, it)
	default:
		r.sum.Failed = append(r.sum.Failed, it)
	}
	if r.Progress != nil {
		r.Progress.Done(it)
	}
}

func outcomeOf(err error) Outcome {
	if errors.Is(err, ErrRefused) {
		return Refused
	}
	return Failed
}

// fetch requests one file and records the outcome.
func (r *Runner) fetch(ctx context.Context, m module.Version, ext string, keep bool) *response {
	resp, err := r.Client.get(ctx, m, ext, keep)
	it := Item{Module: m.Path, Version: m.Version, File: ext}
	switch {
	case err != nil:
		it.Outcome, it.Error = outcomeOf(err), err.Error()
	case resp.cached:
		it.Outcome, it.Bytes = Cached, max(resp.size, 0)
	default:
		it.Outcome, it.Bytes = Fetched, max(resp.size, 0)
	}
	r.bytes.Add(it.Bytes)
	r.record(it, true)
	if err != nil {
		return nil
	}
	return resp
}

// goMod is the modgraph.Loader: each go.mod is requested once per run.
func (r *Runner) goMod(ctx context.Context, m module.Version) ([]byte, error) {
	r.mu.Lock()
	e, ok := r.mods[m]
	if !ok {
		e = new(modEntry)
		r.mods[m] = e
	}
	r.mu.Unlock()
	e.once.Do(func() {
		if !r.claim(m, ".mod") {
			e.err = fmt.Errorf("%s: already requested", describe(m, ".mod"))
			return
		}
		resp := r.fetch(ctx, m, ".mod", true)
		if resp == nil {
			e.err = fmt.Errorf("%s: not available", describe(m, ".mod"))
			return
		}
		e.data = resp.body
	})
	return e.data, e.err
}

// fetchAll requests every file not requested yet, r.Jobs at a time.
func (r *Runner) fetchAll(ctx context.Context, files []file) {
	sem := make(chan struct{}, r.Jobs)
	var wg sync.WaitGroup
	for _, f := range files {
		if !r.claim(f.m, f.ext) {
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			r.record(Item{Module: f.m.Path, Version: f.m.Version, File: f.ext, Outcome: Failed, Error: ctx.Err().Error()}, true)
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			r.fetch(ctx, f.m, f.ext, false)
		})
	}
	wg.Wait()
}

// resolveQuery turns a version query into a version through the proxy.
func (r *Runner) resolveQuery(ctx context.Context, path, query string) (string, error) {
	if semver.IsValid(query) && semver.Canonical(query) == query || module.IsPseudoVersion(query) {
		return query, nil
	}
	if strings.HasSuffix(query, "+incompatible") && semver.IsValid(query) {
		return query, nil
	}
	resp, err := r.Client.get(ctx, module.Version{Path: path, Version: query}, ".info", true)
	if err != nil {
		return "", err
	}
	var info struct{ Version string }
	if err := json.Unmarshal(resp.body, &info); err != nil || !semver.IsValid(info.Version) {
		return "", fmt.Errorf("%s@%s: proxy answered an invalid .info", path, query)
	}
	return info.Version, nil
}

// allVersions lists path's versions and returns their files.
func (r *Runner) allVersions(ctx context.Context, path string) []file {
	m := module.Version{Path: path}
	if !r.claim(m, "list") {
		return nil
	}
	resp := r.fetch(ctx, m, "list", true)
	if resp == nil {
		return nil
	}
	var out []file
	for v := range strings.FieldsSeq(string(resp.body)) {
		if semver.IsValid(v) {
			out = append(out, buildFiles(module.Version{Path: path, Version: v})...)
		}
	}
	return out
}

// readGoSum returns the files that the lines of a go.sum name: the .mod
// for "/go.mod" lines, all three for the others.
func readGoSum(name string) ([]file, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var out []file
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			return nil, fmt.Errorf("%s:%d: malformed go.sum line", name, n)
		}
		v, isMod := strings.CutSuffix(f[1], "/go.mod")
		m := module.Version{Path: f[0], Version: v}
		if err := module.Check(m.Path, m.Version); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, n, err)
		}
		if isMod {
			out = append(out, file{m, ".mod"})
		} else {
			out = append(out, buildFiles(m)...)
		}
	}
	return out, nil
}

// FindProjects returns the go.mod and go.sum files in dir and below,
// skipping vendor, testdata and hidden directories.
func FindProjects(dir string) (gomods, gosums []string, err error) {
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			n := d.Name()
			if p != dir && (n == "vendor" || n == "testdata" || strings.HasPrefix(n, ".") || strings.HasPrefix(n, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		switch d.Name() {
		case "go.mod":
			gomods = append(gomods, p)
		case "go.sum":
			gosums = append(gosums, p)
		}
		return nil
	})
	return gomods, gosums, err
}

func sortItems(items []Item) {
	sort.Slice(items, func(i, j int) bool {
		a, b := items[i], items[j]
		if a.Module != b.Module {
			return a.Module < b.Module
		}
		if a.Version != b.Version {
			return a.Version < b.Version
		}
		return a.File < b.File
	})
}
