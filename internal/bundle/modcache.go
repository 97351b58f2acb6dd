package bundle

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/mod/module"

	"github.com/modgate/modgate/internal/storage"
)

// A SeedConfig says where SeedModCache reads and stores.
type SeedConfig struct {
	Store storage.Store
	// Dir is a module cache (GOMODCACHE); its cache/download directory is
	// read.
	Dir string
	// Checker verifies every .mod and .zip; the lookups and tiles it
	// uses should be stored too (see NewChecker's onCache).
	Checker *Checker
	// Private reports modules the checksum database does not cover
	// (GONOSUMDB); they are skipped, since nothing can vouch for them.
	Private func(path string) bool
}

// SeedStats is what SeedModCache did.
type SeedStats struct {
	Stats
	Private []string // module versions skipped as private
	Failed  []string // "path@version.ext: reason": not stored
}

// SeedModCache stores the module files of a module cache that the
// checksum database vouches for. A version's .info is stored only with a
// verified .mod or .zip. Files the store has already are left alone.
func SeedModCache(ctx context.Context, cfg SeedConfig) (SeedStats, error) {
	var st SeedStats
	root := filepath.Join(cfg.Dir, "cache", "download")
	if _, err := os.Stat(root); err != nil {
		return st, fmt.Errorf("module cache: %w", err)
	}
	type files map[string]string // ext -> local path
	found := make(map[module.Version]files)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == "sumdb" && filepath.Dir(p) == root {
				return fs.SkipDir
			}
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		m, ext, ok := parseFileKey(filepath.ToSlash(rel))
		if !ok {
			return nil // .lock, .ziphash, .partial, list
		}
		if found[m] == nil {
			found[m] = make(files)
		}
		found[m][ext] = p
		return nil
	})
	if err != nil {
		return st, err
	}
	versions := make([]module.Version, 0, len(found))
	for m := range found {
		versions = append(versions, m)
	}
	sort.Slice(versions, func(i, j int) bool {
		if versions[i].Path != versions[j].Path {
			return versions[i].Path < versions[j].Path
		}
		return versions[i].Version < versions[j].Version
	})
	for _, m := range versions {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		if cfg.Private != nil && cfg.Private(m.Path) {
			st.Private = append(st.Private, m.Path+"@"+m.Version)
			continue
		}
		fs := found[m]
		verified := false
		for _, ext := range []string{".mod", ".zip"} {
			local, ok := fs[ext]
			if !ok {
				continue
			}
			h1, err := goSumHash("modules/x/@v/v"+ext, local)
			if err == nil {
				err = cfg.Checker.Check(m, ext, h1)
			}
			if err != nil {
				st.Failed = append(st.Failed, fmt.Sprintf("%s@%s%s: %v", m.Path, m.Version, ext, err))
				continue
			}
			verified = true
			if err := seedPut(ctx, cfg.Store, m, ext, local, &st); err != nil {
				return st, err
			}
		}
		if local, ok := fs[".info"]; ok && verified {
			if err := checkInfo(local, m.Version); err != nil {
				st.Failed = append(st.Failed, fmt.Sprintf("%s@%s.info: %v", m.Path, m.Version, err))
				continue
			}
			if err := seedPut(ctx, cfg.Store, m, ".info", local, &st); err != nil {
				return st, err
			}
		}
	}
	return st, nil
}

func seedPut(ctx context.Context, store storage.Store, m module.Version, ext, local string, st *SeedStats) error {
	key, err := fileKey(m, ext)
	if err != nil {
		return err
	}
	if rc, err := store.Get(ctx, key); err == nil {
		rc.Close()
		st.Skipped++
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	f, err := os.Open(local)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if err := store.Put(ctx, key, f); err != nil {
		return fmt.Errorf("storing %s: %w", key, err)
	}
	st.Files++
	st.Bytes += fi.Size()
	return nil
}

// checkInfo accepts a .info file that names version.
func checkInfo(local, version string) error {
	data, err := os.ReadFile(local)
	if err != nil {
		return err
	}
	var info struct{ Version string }
	if err := json.NewDecoder(bytes.NewReader(data)).Decode(&info); err != nil {
		return fmt.Errorf("not a .info file: %v", err)
	}
	if info.Version != version {
		return fmt.Errorf("names version %q", info.Version)
	}
	return nil
}

// StoreSumDBFile returns an onCache function for NewChecker that stores
// the database files the Checker used, so the importing modgate serves
// them to offline clients. Errors are collected in *errs.
func StoreSumDBFile(ctx context.Context, store storage.Store, errs *[]error) func(file string, data []byte) {
	return func(file string, data []byte) {
		if strings.HasSuffix(file, "/latest") {
			return
		}
		if err := store.Put(ctx, "sumdb/"+file, bytes.NewReader(data)); err != nil {
			*errs = append(*errs, err)
		}
	}
}
