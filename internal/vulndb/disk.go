package vulndb

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sync/errgroup"
)

// The on-disk copy. Dir holds complete copies ("generations") in the served
// layout, each in its own directory gen-*, and a symbolic link "current"
// naming the one in use:
//
//	Dir/current -> gen-123456
//	Dir/gen-123456/index/{db,modules,vulns}.json{,.gz}
//	Dir/gen-123456/ID/GO-2024-1234.json{,.gz}
//
// A sync writes a new generation next to the current one, fsyncs it, then
// replaces the link with rename(2), which is atomic: a crash leaves either
// the old or the new copy, never a mix. Each generation is itself a valid
// file:// database for govulncheck. The previous generation is kept until
// the next swap, so a request that opened the old copy just before a swap
// still finds its files; older ones and leftovers of failed syncs are
// removed.
const (
	currentLink = "current"
	genPrefix   = "gen-"
)

// writeGeneration writes a complete served layout of db under root and
// returns its directory. Entries found in fresh (by id) are written from
// those bytes; every other entry is hard-linked (or copied) from prev, the
// current generation. On error nothing is left behind.
func writeGeneration(root string, db *DB, fresh map[string][]byte, prev string) (dir string, index map[string][]byte, err error) {
	index, err = db.indexFiles()
	if err != nil {
		return "", nil, err
	}
	dir, err = os.MkdirTemp(root, genPrefix)
	if err != nil {
		return "", nil, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
			dir = ""
		}
	}()
	// MkdirTemp creates 0700; the copy is public data that other local
	// users may read as a file:// database.
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", nil, err
	}
	for _, sub := range []string{"index", "ID"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			return "", nil, err
		}
	}

	var g errgroup.Group
	// fsync latency, not CPU, bounds this: let several files wait at once.
	g.SetLimit(8)
	for name, data := range index {
		g.Go(func() error { return writeJSONAndGzip(filepath.Join(dir, filepath.FromSlash(name)), data) })
	}
	for _, e := range db.entries {
		g.Go(func() error {
			base := filepath.Join("ID", e.id)
			if data, ok := fresh[e.id]; ok {
				return writeJSONAndGzip(filepath.Join(dir, base), data)
			}
			if prev == "" {
				return fmt.Errorf("entry %s: no data and no previous copy", e.id)
			}
			for _, n := range []string{base + ".json", base + ".json.gz"} {
				if err := linkOrCopy(filepath.Join(prev, n), filepath.Join(dir, n)); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return "", nil, fmt.Errorf("writing vulnerability database copy: %w", err)
	}
	for _, d := range []string{filepath.Join(dir, "index"), filepath.Join(dir, "ID"), dir} {
		if err := syncDir(d); err != nil {
			return "", nil, fmt.Errorf("writing vulnerability database copy: %w", err)
		}
	}
	return dir, index, nil
}

// writeJSONAndGzip writes data to base+".json" and its gzip compression to
// base+".json.gz", both fsynced.
func writeJSONAndGzip(base string, data []byte) error {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(data) // writes to a bytes.Buffer cannot fail
	if err := zw.Close(); err != nil {
		return err
	}
	if err := writeFileSync(base+".json", data); err != nil {
		return err
	}
	return writeFileSync(base+".json.gz", buf.Bytes())
}

func writeFileSync(name string, data []byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// linkOrCopy makes dst a hard link to src, or a copy when the file system
// refuses links. Generations are never modified in place, so sharing files
// between them is safe.
func linkOrCopy(src, dst string) error {
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return writeFileSync(dst, data)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// activate makes gen (a directory directly under root) the current
// generation with an atomic rename of the link.
func activate(root, gen string) error {
	tmp := filepath.Join(root, currentLink+".tmp")
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.Symlink(filepath.Base(gen), tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(root, currentLink)); err != nil {
		return err
	}
	return syncDir(root)
}

// currentGeneration returns the directory of the current generation under
// root, or an error matching fs.ErrNotExist when there is none.
func currentGeneration(root string) (string, error) {
	target, err := os.Readlink(filepath.Join(root, currentLink))
	if err != nil {
		return "", err
	}
	if target != filepath.Base(target) || !strings.HasPrefix(target, genPrefix) {
		return "", fmt.Errorf("%s: link to %q, want a %s* directory beside it", filepath.Join(root, currentLink), target, genPrefix)
	}
	return filepath.Join(root, target), nil
}

// removeGenerations deletes every generation under root except those in
// keep (full paths), and a leftover temporary link.
func removeGenerations(root string, keep ...string) error {
	des, err := os.ReadDir(root)
	if err != nil {
		return err
	}
	var errs []error
	for _, de := range des {
		name := de.Name()
		p := filepath.Join(root, name)
		if !strings.HasPrefix(name, genPrefix) && name != currentLink+".tmp" {
			continue
		}
		if containsPath(keep, p) {
			continue
		}
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func containsPath(list []string, p string) bool {
	for _, k := range list {
		if k != "" && filepath.Clean(k) == filepath.Clean(p) {
			return true
		}
	}
	return false
}
