// Package datadir moves the module files of a single modgate's data
// directory ({data_dir}/modules, the GOPROXY tree with the checksum
// database's lookups and tiles) into the object store replicas share
// (README: "Running replicas"). `modgate import-data` runs it, together
// with state/postgres's ImportDataDir for the state.
//
// Nothing already in the destination is ever replaced. A file there with
// the same bytes is skipped, so an import can be run again after an
// interruption; an immutable file there with other bytes is a conflict:
// reported, left alone, and the import fails once it has copied everything
// else. A list or @latest already there is kept (the cluster's is at least
// as recent). The source is only read; temporary files of interrupted
// writes are not copied.
package datadir

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/modgate/modgate/internal/storage"
)

// ErrConflict matches the error of an import that found something in the
// destination with other content than the source's.
var ErrConflict = errors.New("different content already in the destination")

// A Target is where an import copies to.
type Target struct {
	Store storage.Store // module files
}

// A Report counts what an import did.
type Report struct {
	Files, FilesSkipped int
	Bytes               int64
	// Conflicts names each file left alone because the destination has
	// other bytes.
	Conflicts []string
}

// String is a one-line summary.
func (r Report) String() string {
	return fmt.Sprintf("%d module files copied (%d bytes), %d already there, %d conflicts",
		r.Files, r.Bytes, r.FilesSkipped, len(r.Conflicts))
}

// Import copies the data directory dir into t. It stops at the first
// error reading the source or writing the destination; conflicts do not
// stop it, and make it return an error matching ErrConflict at the end.
func Import(ctx context.Context, dir string, t Target) (Report, error) {
	var r Report
	if fi, err := os.Stat(dir); err != nil {
		return r, fmt.Errorf("data directory: %w", err)
	} else if !fi.IsDir() {
		return r, fmt.Errorf("data directory %s is not a directory", dir)
	}
	if err := importFiles(ctx, dir, t, &r); err != nil {
		return r, err
	}
	if len(r.Conflicts) > 0 {
		return r, fmt.Errorf("%w: %s", ErrConflict, strings.Join(r.Conflicts, "; "))
	}
	return r, nil
}

// importFiles copies {dir}/modules, the module store in GOPROXY layout.
func importFiles(ctx context.Context, dir string, t Target, r *Report) error {
	if t.Store == nil {
		return nil
	}
	root := filepath.Join(dir, "modules")
	if _, err := os.Stat(root); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".") && path != root {
			// Temporary files of interrupted writes; never a stored name.
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		if err := storage.CheckName(name); err != nil {
			return fmt.Errorf("%s: not a stored file: %w", path, err)
		}
		return importFile(ctx, t.Store, name, path, r)
	})
}

func importFile(ctx context.Context, store storage.Store, name, path string, r *Report) error {
	have, err := store.Get(ctx, name)
	switch {
	case err == nil:
		same, err := sameContent(have, path)
		have.Close()
		if err != nil {
			return fmt.Errorf("comparing %s: %w", name, err)
		}
		if same {
			r.FilesSkipped++
		} else if storage.Immutable(name) {
			r.Conflicts = append(r.Conflicts, "module file "+name)
		} else {
			// A list, @latest or remembered answer: the cluster's copy
			// is at least as recent as the single node's.
			r.FilesSkipped++
		}
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("reading %s from the destination: %w", name, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	// Put, not a store's PutFile: that one may take the file away, and the
	// source is only read. Put streams it either way.
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = store.Put(ctx, name, f)
	f.Close()
	if err != nil {
		return fmt.Errorf("storing %s: %w", name, err)
	}
	r.Files++
	r.Bytes += fi.Size()
	return nil
}

// sameContent reports whether rc holds the bytes of the file at path.
func sameContent(rc io.Reader, path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	a, b := sha256.New(), sha256.New()
	if _, err := io.Copy(a, rc); err != nil {
		return false, err
	}
	if _, err := io.Copy(b, f); err != nil {
		return false, err
	}
	return bytes.Equal(a.Sum(nil), b.Sum(nil)), nil
}
