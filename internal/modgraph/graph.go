// Package modgraph computes the module graph the go command would load for a
// main module: the go.mod files of every module version minimal version
// selection (MVS) visits, and the build list it selects (what `go list -m
// all` prints).
//
// It follows the go command's graph pruning (go.mod files at go 1.17 or
// later): the requirements of a pruned dependency are part of the graph,
// but their own go.mod files are not read unless some unpruned module (go
// 1.16 or earlier, or no go directive) needs its full transitive graph. The
// main module's replace and exclude directives apply as they do for the go
// command. Workspaces (go.work) are not modelled.
//
// The package owns only the graph walk; where go.mod files come from (a
// modgate over HTTP, in-process) is the caller's Loader.
package modgraph

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
)

// A Loader returns the go.mod file of a module version (the .mod file of
// the GOPROXY protocol). It must be safe for concurrent use.
type Loader func(ctx context.Context, m module.Version) ([]byte, error)

// A Main is the main module the graph is computed for.
type Main struct {
	// File is the parsed go.mod of the main module.
	File *modfile.File
	// Dir is the directory of that go.mod, for replacements by a local
	// directory; "" when there is none (a module@version argument).
	Dir string
}

// ReadMain parses the go.mod file at path.
func ReadMain(path string) (Main, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Main{}, err
	}
	f, err := modfile.Parse(path, data, nil)
	if err != nil {
		return Main{}, err
	}
	return Main{File: f, Dir: filepath.Dir(path)}, nil
}

// A Graph is the result of Resolve.
type Graph struct {
	// Loaded lists the module versions whose go.mod files were read, in
	// path then version order. For a replaced module it is the version
	// required, not the replacement (see Fetch).
	Loaded []module.Version
	// BuildList is what MVS selects: one version per module path, sorted
	// by path, without the main module (as `go list -m all` prints it
	// after its first line).
	BuildList []module.Version
	// Replace maps a module version to the module whose files the go
	// command downloads for it (replace directives with a version).
	// Versions replaced by a local directory map to a Version of "".
	Replace map[module.Version]module.Version
}

// Fetch returns the module version whose files the go command downloads for
// m, and false when m is replaced by a local directory (nothing to fetch).
func (g *Graph) Fetch(m module.Version) (module.Version, bool) {
	if r, ok := g.Replace[m]; ok {
		return r, r.Version != ""
	}
	return m, true
}

// summary is what the graph walk needs from one go.mod file.
type summary struct {
	require []module.Version
	pruned  bool
}

// Resolve walks the module graph of main, reading go.mod files through
// load with at most jobs of them at once. A go.mod that cannot be loaded
// or parsed is an error naming the module version; everything else found
// is still returned in the graph.
func Resolve(ctx context.Context, main Main, load Loader, jobs int) (*Graph, error) {
	if main.File == nil || main.File.Module == nil {
		return nil, errors.New("go.mod has no module directive")
	}
	if jobs < 1 {
		jobs = 1
	}
	r := &resolver{
		main:     main,
		load:     load,
		excluded: make(map[module.Version]bool),
		replace:  make(map[module.Version]module.Version),
		byPath:   make(map[string]module.Version),
		loaded:   make(map[module.Version]*summary),
		enqueued: make(map[key]bool),
		selected: make(map[string]string),
	}
	for _, x := range main.File.Exclude {
		r.excluded[x.Mod] = true
	}
	for _, rep := range main.File.Replace {
		if rep.Old.Version == "" {
			r.byPath[rep.Old.Path] = rep.New
		} else {
			r.replace[rep.Old] = rep.New
		}
	}
	roots := requirements(main.File)
	for _, m := range roots {
		r.note(m)
	}
	r.ctx = ctx
	r.sem = make(chan struct{}, jobs)
	mainPruned := pruned(main.File)
	for _, m := range roots {
		r.enqueue(m, mainPruned)
	}
	r.wg.Wait()
	err := errors.Join(r.errs...)

	out := &Graph{Replace: make(map[module.Version]module.Version)}
	for m := range r.loaded {
		out.Loaded = append(out.Loaded, m)
	}
	for p, v := range r.selected {
		out.BuildList = append(out.BuildList, module.Version{Path: p, Version: v})
	}
	for _, list := range [][]module.Version{out.Loaded, out.BuildList} {
		for _, m := range list {
			if rep, ok := r.replacement(m); ok {
				out.Replace[m] = rep
			}
		}
	}
	sortVersions(out.Loaded)
	sortVersions(out.BuildList)
	return out, err
}

type key struct {
	m      module.Version
	pruned bool
}

type resolver struct {
	main     Main
	load     Loader
	excluded map[module.Version]bool
	replace  map[module.Version]module.Version // exact version replacements
	byPath   map[string]module.Version         // all-version replacements

	ctx  context.Context
	sem  chan struct{} // bounds concurrent loads
	wg   sync.WaitGroup
	errs []error // guarded by mu

	mu       sync.Mutex
	loaded   map[module.Version]*summary
	enqueued map[key]bool
	selected map[string]string
}

// replacement returns what replaces m, if anything. A New.Version of ""
// is a local directory.
func (r *resolver) replacement(m module.Version) (module.Version, bool) {
	if rep, ok := r.replace[m]; ok {
		return rep, true
	}
	rep, ok := r.byPath[m.Path]
	return rep, ok
}

// note records that some loaded module requires m (mvs.Graph.Require).
// The main module is always selected, at no version.
func (r *resolver) note(m module.Version) {
	if m.Path == r.main.File.Module.Mod.Path {
		return
	}
	if cur, ok := r.selected[m.Path]; !ok || semver.Compare(m.Version, cur) > 0 {
		r.selected[m.Path] = m.Version
	}
}

// enqueue mirrors the go command's readModGraph: m's go.mod is read once
// per pruning mode; the requirements of a pruned module reached from a
// pruned context are added to the graph but not loaded.
func (r *resolver) enqueue(m module.Version, pruning bool) {
	if m.Version == "none" {
		return
	}
	r.mu.Lock()
	k := key{m, pruning}
	if r.enqueued[k] {
		r.mu.Unlock()
		return
	}
	r.enqueued[k] = true
	r.mu.Unlock()
	r.wg.Go(func() {
		select {
		case r.sem <- struct{}{}:
		case <-r.ctx.Done():
			r.fail(r.ctx.Err())
			return
		}
		s, err := r.loadOne(m)
		<-r.sem
		if err != nil {
			r.fail(err)
			return
		}
		next := s.pruned && pruning
		for _, req := range s.require {
			if !pruning || !s.pruned {
				r.enqueue(req, next)
			}
		}
	})
}

func (r *resolver) fail(err error) {
	r.mu.Lock()
	r.errs = append(r.errs, err)
	r.mu.Unlock()
}

func (r *resolver) loadOne(m module.Version) (*summary, error) {
	r.mu.Lock()
	if s, ok := r.loaded[m]; ok {
		r.mu.Unlock()
		return s, nil
	}
	r.mu.Unlock()
	data, err := r.goMod(m)
	if err != nil {
		return nil, fmt.Errorf("loading go.mod of %s@%s: %w", m.Path, m.Version, err)
	}
	f, err := modfile.ParseLax(m.Path+"@"+m.Version+"/go.mod", data, nil)
	if err != nil {
		return nil, fmt.Errorf("parsing go.mod of %s@%s: %w", m.Path, m.Version, err)
	}
	s := &summary{pruned: pruned(f)}
	for _, req := range requirements(f) {
		if !r.excluded[req] {
			s.require = append(s.require, req)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if prev, ok := r.loaded[m]; ok {
		return prev, nil
	}
	r.loaded[m] = s
	for _, req := range s.require {
		r.note(req)
	}
	return s, nil
}

// goMod reads m's go.mod, from its replacement if it has one.
func (r *resolver) goMod(m module.Version) ([]byte, error) {
	rep, ok := r.replacement(m)
	if !ok {
		return r.load(r.ctx, m)
	}
	if rep.Version != "" {
		return r.load(r.ctx, rep)
	}
	dir := rep.Path
	if !filepath.IsAbs(dir) {
		if r.main.Dir == "" {
			return nil, fmt.Errorf("replaced by directory %s, which has no main module directory to be relative to", dir)
		}
		dir = filepath.Join(r.main.Dir, dir)
	}
	return os.ReadFile(filepath.Join(dir, "go.mod"))
}

// requirements lists f's module requirements.
func requirements(f *modfile.File) []module.Version {
	out := make([]module.Version, 0, len(f.Require))
	for _, r := range f.Require {
		out = append(out, r.Mod)
	}
	return out
}

// pruned reports whether a go.mod file's go directive is 1.17 or later,
// where the go command prunes the module graph.
func pruned(f *modfile.File) bool {
	if f.Go == nil {
		return false
	}
	major, rest, _ := strings.Cut(f.Go.Version, ".")
	if major != "1" {
		n, err := strconv.Atoi(major)
		return err == nil && n > 1
	}
	end := 0
	for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
		end++
	}
	minor, err := strconv.Atoi(rest[:end])
	return err == nil && minor >= 17
}

func sortVersions(list []module.Version) {
	sort.Slice(list, func(i, j int) bool {
		if list[i].Path != list[j].Path {
			return list[i].Path < list[j].Path
		}
		return semver.Compare(list[i].Version, list[j].Version) < 0
	})
}
