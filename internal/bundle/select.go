package bundle

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"

	"golang.org/x/mod/module"

	"github.com/modgate/modgate/internal/modgraph"
	"github.com/modgate/modgate/internal/storage"
)

// A Selection names the modules to export.
type Selection struct {
	GoMods   []string // go.mod files: their module graph and build list
	GoSums   []string // go.sum files: every version listed
	Patterns []string // module path patterns (path.Match, or a prefix ending in "/...")
	All      bool     // every module file in the store
}

// Select returns the store keys of the module files sel names (.info,
// .mod, .zip), plus the checksum-database files that prove them: their
// lookups, every stored tile and each database's "supported" file. missing
// lists files sel needs that the store does not have (fetch them first,
// with modgate prefetch). store must implement storage.Walker for patterns, All and
// the checksum-database files.
func Select(ctx context.Context, store storage.Store, sel Selection) (keys, missing []string, err error) {
	want := make(map[module.Version]map[string]bool) // version -> extensions
	need := func(m module.Version, exts ...string) {
		if want[m] == nil {
			want[m] = make(map[string]bool)
		}
		for _, e := range exts {
			want[m][e] = true
		}
	}
	loader := func(ctx context.Context, m module.Version) ([]byte, error) {
		k, err := fileKey(m, ".mod")
		if err != nil {
			return nil, err
		}
		rc, err := store.Get(ctx, k)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return io.ReadAll(rc)
	}
	for _, name := range sel.GoMods {
		main, err := modgraph.ReadMain(name)
		if err != nil {
			return nil, nil, err
		}
		g, _ := modgraph.Resolve(ctx, main, loader, 8) // what is missing shows below
		for _, m := range g.Loaded {
			if fm, ok := g.Fetch(m); ok {
				need(fm, ".mod")
			}
		}
		for _, m := range g.BuildList {
			if fm, ok := g.Fetch(m); ok {
				need(fm, ".info", ".mod", ".zip")
			}
		}
	}
	for _, name := range sel.GoSums {
		data, err := os.ReadFile(name)
		if err != nil {
			return nil, nil, err
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		for n := 1; sc.Scan(); n++ {
			f := strings.Fields(sc.Text())
			if len(f) == 0 {
				continue
			}
			if len(f) != 3 {
				return nil, nil, fmt.Errorf("%s:%d: malformed go.sum line", name, n)
			}
			v, isMod := strings.CutSuffix(f[1], "/go.mod")
			m := module.Version{Path: f[0], Version: v}
			if err := module.Check(m.Path, m.Version); err != nil {
				return nil, nil, fmt.Errorf("%s:%d: %w", name, n, err)
			}
			if isMod {
				need(m, ".mod")
			} else {
				need(m, ".info", ".mod", ".zip")
			}
		}
	}
	walker, _ := store.(storage.Walker)
	if walker == nil {
		return nil, nil, fmt.Errorf("this store cannot list its files")
	}
	var stored []string
	err = walker.Walk(ctx, "", func(name string) error {
		stored = append(stored, name)
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("listing the store: %w", err)
	}
	for _, name := range stored {
		m, ext, ok := parseFileKey(name)
		if !ok {
			continue
		}
		if sel.All || matchAny(sel.Patterns, m.Path) {
			need(m, ext)
		}
	}

	have := make(map[string]bool, len(stored))
	for _, name := range stored {
		have[name] = true
	}
	for m, exts := range want {
		for ext := range exts {
			k, err := fileKey(m, ext)
			if err != nil {
				return nil, nil, err
			}
			if !have[k] && !exists(ctx, store, k) {
				// A .info is not needed to build; a module without one
				// (stored by an older modgate) is still exported.
				if ext != ".info" {
					missing = append(missing, m.Path+"@"+m.Version+ext)
				}
				continue
			}
			keys = append(keys, k)
		}
	}
	// The checksum database: lookups of the selected versions, and every
	// tile (which lookup needs which tile depends on the tree size when it
	// was made; tiles are small and shared).
	for _, name := range stored {
		rest, ok := strings.CutPrefix(name, "sumdb/")
		if !ok {
			continue
		}
		_, file, _ := strings.Cut(rest, "/")
		if lookup, ok := strings.CutPrefix(file, "lookup/"); ok {
			at := strings.LastIndex(lookup, "@")
			if at < 0 {
				continue
			}
			p, err1 := module.UnescapePath(lookup[:at])
			v, err2 := module.UnescapeVersion(lookup[at+1:])
			if err1 != nil || err2 != nil || want[module.Version{Path: p, Version: v}] == nil {
				continue
			}
		} else if !strings.HasPrefix(file, "tile/") && file != "supported" {
			continue
		}
		keys = append(keys, name)
	}
	sort.Strings(keys)
	sort.Strings(missing)
	return keys, missing, nil
}

func exists(ctx context.Context, store storage.Store, key string) bool {
	rc, err := store.Get(ctx, key)
	if err != nil {
		return false
	}
	rc.Close()
	return true
}

// fileKey is the store key of a module file.
func fileKey(m module.Version, ext string) (string, error) {
	p, err := module.EscapePath(m.Path)
	if err != nil {
		return "", err
	}
	v, err := module.EscapeVersion(m.Version)
	if err != nil {
		return "", err
	}
	return p + "/@v/" + v + ext, nil
}

// parseFileKey reads a module file's store key.
func parseFileKey(key string) (module.Version, string, bool) {
	esc, file, ok := strings.Cut(key, "/@v/")
	if !ok || strings.HasPrefix(key, "sumdb/") {
		return module.Version{}, "", false
	}
	ext := path.Ext(file)
	if ext != ".info" && ext != ".mod" && ext != ".zip" {
		return module.Version{}, "", false
	}
	p, err := module.UnescapePath(esc)
	if err != nil {
		return module.Version{}, "", false
	}
	v, err := module.UnescapeVersion(strings.TrimSuffix(file, ext))
	if err != nil || module.Check(p, v) != nil {
		return module.Version{}, "", false
	}
	if k, err := fileKey(module.Version{Path: p, Version: v}, ext); err != nil || k != key {
		return module.Version{}, "", false // not the canonical spelling
	}
	return module.Version{Path: p, Version: v}, ext, true
}

// matchAny reports whether a module path matches one of the patterns:
// "example.com/x/..." matches example.com/x and everything below it, other
// patterns use path.Match (so "example.com/*" matches one element).
func matchAny(patterns []string, p string) bool {
	for _, pat := range patterns {
		if prefix, ok := strings.CutSuffix(pat, "/..."); ok {
			if p == prefix || strings.HasPrefix(p, prefix+"/") {
				return true
			}
			continue
		}
		if ok, _ := path.Match(pat, p); ok {
			return true
		}
	}
	return false
}
