package tombstone

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"

	"golang.org/x/mod/module"

	"github.com/modgate/modgate/internal/storage"
)

// ErrInvalid reports a purge request that names no valid module or
// version; nothing was changed.
var ErrInvalid = errors.New("invalid purge request")

// A Request is one purge: Version "" purges the whole module.
type Request struct {
	Module, Version string
	Reason, By      string
	// AllowRefetch removes the files without leaving a tombstone (and
	// removes an existing one), so the version is fetched again on the
	// next request.
	AllowRefetch bool
}

// A Result says what a purge did.
type Result struct {
	Removed      []string `json:"removed"`       // store keys deleted
	Tombstoned   bool     `json:"tombstoned"`    // a tombstone now stands
	Unburied     bool     `json:"unburied"`      // an existing tombstone was removed
	ListsUpdated []string `json:"lists_updated"` // version lists rewritten without the version
}

// Parse splits "MODULE[@VERSION]" and checks it: the path must be a valid
// module path and the version, when given, a canonical version valid for
// it (not a query such as a branch name or "latest").
func Parse(arg string) (path, version string, err error) {
	path, version, _ = strings.Cut(arg, "@")
	if err := module.CheckPath(path); err != nil {
		return "", "", fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if strings.Contains(arg, "@") {
		if version == "" || module.CanonicalVersion(version) != version {
			return "", "", fmt.Errorf("%w: %q is not a canonical version (write it as it appears in go.sum, for example v1.2.3)", ErrInvalid, version)
		}
		if err := module.Check(path, version); err != nil {
			return "", "", fmt.Errorf("%w: %v", ErrInvalid, err)
		}
	}
	return path, version, nil
}

// Purge removes the stored files of req's module version (or of every
// version of the module) from store, and writes or removes the tombstone
// in set. The tombstone is written first, so a request arriving during
// the purge is refused rather than served a file about to go.
//
// It removes the .info, .mod and .zip, under the path as given and under
// its lower-cased form, drops the version from the stored version list,
// and removes a stored @latest that names it (or, for a module, the list
// and @latest). Files of other case variants stay in the store but are
// refused like the rest (tombstones ignore case).
func Purge(ctx context.Context, store storage.Store, set *Set, req Request) (Result, error) {
	var res Result
	arg := req.Module
	if req.Version != "" {
		arg += "@" + req.Version
	}
	if _, _, err := Parse(arg); err != nil {
		return res, err
	}
	d, ok := store.(storage.Deleter)
	if !ok {
		return res, errors.New("purging: the store cannot delete files")
	}
	if req.AllowRefetch {
		removed, err := set.Remove(ctx, req.Module, req.Version)
		if err != nil {
			return res, fmt.Errorf("purging %s: removing tombstone: %w", req.Module, err)
		}
		res.Unburied = removed
	} else {
		if err := set.Add(ctx, Tombstone{Module: req.Module, Version: req.Version, Reason: req.Reason, By: req.By, At: nowUTC()}); err != nil {
			return res, err
		}
		res.Tombstoned = true
	}
	paths := []string{req.Module}
	if lower := strings.ToLower(req.Module); lower != req.Module {
		paths = append(paths, lower)
	}
	for _, p := range paths {
		esc, err := module.EscapePath(p)
		if err != nil {
			continue
		}
		var names []string
		if req.Version != "" {
			ev, _ := module.EscapeVersion(req.Version)
			names = []string{ev + ".info", ev + ".mod", ev + ".zip"}
		} else if l, ok := store.(storage.Lister); ok {
			if names, err = l.List(ctx, esc+"/@v/"); err != nil {
				return res, fmt.Errorf("purging %s: listing: %w", req.Module, err)
			}
		}
		for _, n := range names {
			key := esc + "/@v/" + n
			if !exists(ctx, store, key) {
				continue
			}
			if err := d.Delete(ctx, key); err != nil {
				return res, fmt.Errorf("purging %s: %w", req.Module, err)
			}
			res.Removed = append(res.Removed, key)
		}
		latest := esc + "/@latest"
		if req.Version == "" || latestNames(ctx, store, latest, req.Version) {
			if exists(ctx, store, latest) {
				if err := d.Delete(ctx, latest); err != nil {
					return res, fmt.Errorf("purging %s: %w", req.Module, err)
				}
				res.Removed = append(res.Removed, latest)
			}
		}
		if req.Version != "" {
			changed, err := dropFromList(ctx, store, esc+"/@v/list", req.Version)
			if err != nil {
				return res, fmt.Errorf("purging %s: %w", req.Module, err)
			}
			if changed {
				res.ListsUpdated = append(res.ListsUpdated, esc+"/@v/list")
			}
		}
	}
	return res, nil
}

func exists(ctx context.Context, store storage.Store, key string) bool {
	rc, err := store.Get(ctx, key)
	if err != nil {
		return false
	}
	rc.Close()
	return true
}

func readSmall(ctx context.Context, store storage.Store, key string) ([]byte, error) {
	rc, err := store.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, 16<<20))
}

// latestNames reports whether the stored @latest at key names version.
func latestNames(ctx context.Context, store storage.Store, key, version string) bool {
	data, err := readSmall(ctx, store, key)
	if err != nil {
		return false
	}
	var in struct{ Version string }
	return json.Unmarshal(data, &in) == nil && in.Version == version
}

// dropFromList rewrites the stored list at key without version.
func dropFromList(ctx context.Context, store storage.Store, key, version string) (bool, error) {
	data, err := readSmall(ctx, store, key)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	kept := slices.DeleteFunc(slices.Clone(lines), func(l string) bool {
		f := strings.Fields(l)
		return len(f) > 0 && f[0] == version
	})
	if len(kept) == len(lines) {
		return false, nil
	}
	out := strings.Join(kept, "\n")
	if out != "" {
		out += "\n"
	}
	return true, store.Put(ctx, key, bytes.NewReader([]byte(out)))
}
