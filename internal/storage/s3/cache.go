package s3

import (
	"container/list"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/modgate/modgate/internal/storage"
)

// A diskCache keeps local copies of immutable objects under their storage
// names below dir, bounded in total size, evicting the least recently used
// first. Files arrive complete (written to dir/.tmp, checked, synced and
// renamed), so any file found under its name is whole. It holds nothing S3
// does not: wiping it at any time only costs downloads. Safe for
// concurrent use.
type diskCache struct {
	dir string
	tmp string // dir/.tmp: files being written; never a key (keys have no dot elements)
	max int64  // <= 0: off

	mu    sync.Mutex
	size  int64
	lru   *list.List               // front: most recently used; values are *cacheFile
	items map[string]*list.Element // name → element
}

type cacheFile struct {
	name string
	size int64
}

// newDiskCache opens the cache in dir, creating it; it removes the
// temporary files a previous process left and indexes the files there,
// oldest modification time first in line for eviction.
func newDiskCache(dir string, max int64) (*diskCache, error) {
	c := &diskCache{dir: dir, tmp: filepath.Join(dir, ".tmp"), max: max, lru: list.New(), items: make(map[string]*list.Element)}
	if err := os.RemoveAll(c.tmp); err != nil {
		return nil, fmt.Errorf("clearing cache temporary files: %w", err)
	}
	if err := os.MkdirAll(c.tmp, 0o755); err != nil {
		return nil, fmt.Errorf("creating cache directory: %w", err)
	}
	type found struct {
		name string
		size int64
		mod  time.Time
	}
	var files []found
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // vanished meanwhile: nothing to index
		}
		if strings.HasPrefix(d.Name(), ".") && p != dir {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return nil
		}
		name := filepath.ToSlash(rel)
		info, err := d.Info()
		if err != nil || storage.CheckName(name) != nil || !storage.Immutable(name) {
			return nil // not something this cache writes, and never read
		}
		files = append(files, found{name, info.Size(), info.ModTime()})
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(files, func(a, b found) int { return a.mod.Compare(b.mod) })
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range files {
		c.items[f.name] = c.lru.PushFront(&cacheFile{f.name, f.size})
		c.size += f.size
	}
	c.evictLocked()
	return c, nil
}

func (c *diskCache) enabled() bool { return c.max > 0 }

// fits reports whether a file of size bytes may be cached.
func (c *diskCache) fits(size int64) bool { return c.max > 0 && size <= c.max }

func (c *diskCache) path(name string) string { return filepath.Join(c.dir, filepath.FromSlash(name)) }

// open returns the cached file for name, or an error matching
// fs.ErrNotExist when it is not cached (or was wiped).
func (c *diskCache) open(name string) (*os.File, error) {
	f, err := os.OpenFile(c.path(name), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	var fi fs.FileInfo
	if err == nil {
		if fi, err = f.Stat(); err == nil && !fi.Mode().IsRegular() {
			err = &fs.PathError{Op: "open", Path: c.path(name), Err: fs.ErrNotExist}
		}
		if err != nil {
			f.Close()
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[name]
	if err != nil {
		if ok {
			c.removeLocked(el) // wiped behind our back
		}
		return nil, err
	}
	if ok {
		c.lru.MoveToFront(el)
	} else {
		// Put there by another process sharing the directory.
		c.items[name] = c.lru.PushFront(&cacheFile{name, fi.Size()})
		c.size += fi.Size()
	}
	return f, nil
}

// temp creates a new temporary file in the cache.
func (c *diskCache) temp() (*os.File, error) {
	f, err := os.CreateTemp(c.tmp, "put-*")
	if errors.Is(err, fs.ErrNotExist) { // the cache was wiped
		if err := os.MkdirAll(c.tmp, 0o755); err != nil {
			return nil, err
		}
		f, err = os.CreateTemp(c.tmp, "put-*")
	}
	return f, err
}

// commit renames the complete, synced temporary file tmp into the cache
// as name (size bytes), and evicts what no longer fits. On error tmp is
// removed.
func (c *diskCache) commit(name, tmp string, size int64) error {
	dst := c.path(name)
	err := os.Rename(tmp, dst)
	if errors.Is(err, fs.ErrNotExist) {
		if err = os.MkdirAll(filepath.Dir(dst), 0o755); err == nil {
			err = os.Rename(tmp, dst)
		}
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[name]; ok {
		c.size -= el.Value.(*cacheFile).size
		c.lru.Remove(el)
	}
	c.items[name] = c.lru.PushFront(&cacheFile{name, size})
	c.size += size
	c.evictLocked()
	return nil
}

// adopt moves a local file that was just uploaded as name into the cache
// (a rename; a copy when it is on another file system). The caller removes
// path if it is still there.
func (c *diskCache) adopt(name, path string, size int64) error {
	tmp, err := c.temp()
	if err != nil {
		return err
	}
	if filepath.Dir(path) == c.tmp {
		tmp.Close()
		os.Remove(tmp.Name())
		if err := syncFile(path); err != nil {
			return err
		}
		return c.commit(name, path, size)
	}
	if err := os.Rename(path, tmp.Name()); err == nil {
		tmp.Close()
		if err := syncFile(tmp.Name()); err != nil {
			os.Remove(tmp.Name())
			return err
		}
		return c.commit(name, tmp.Name(), size)
	}
	err = copyFile(tmp, path)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return c.commit(name, tmp.Name(), size)
}

// copyFile copies the file at src into dst and syncs dst.
func copyFile(dst *os.File, src string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.Copy(dst, f); err != nil {
		return err
	}
	return dst.Sync()
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// remove drops name from the cache.
func (c *diskCache) remove(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[name]; ok {
		c.removeLocked(el)
	}
	os.Remove(c.path(name))
}

// evictLocked removes the least recently used files until the cache fits.
func (c *diskCache) evictLocked() {
	for c.size > c.max && c.lru.Len() > 0 {
		el := c.lru.Back()
		os.Remove(c.path(el.Value.(*cacheFile).name)) // open readers keep reading
		c.removeLocked(el)
	}
}

func (c *diskCache) removeLocked(el *list.Element) {
	f := el.Value.(*cacheFile)
	c.lru.Remove(el)
	delete(c.items, f.name)
	c.size -= f.size
}

// len returns the number of files and bytes cached.
func (c *diskCache) len() (int, int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.items), c.size
}
