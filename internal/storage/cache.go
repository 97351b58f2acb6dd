package storage

import (
	"bytes"
	"container/list"
	"context"
	"io"
	"io/fs"
	"os"
	"sync"
)

// A Cache keeps small files of another Store in memory, in a bounded LRU.
//
// Most requests the go command makes are for small immutable files: it reads
// the go.mod (and often the .info) of every module in the build graph, about
// two of them for each zip it downloads. Serving those from memory saves
// every file-system call on the hottest path. Large files (zips) pass
// through to the inner store, whose readers keep zero-copy sends.
//
// Writes go to the inner store first and then drop the cached copy, so a
// reader never sees a version older than the last completed Put of its own
// process. (Replicas sharing a store each cache independently; the files
// they cache are immutable, and the mutable ones are refreshed through Put.)
//
// Cache implements Store, FilePutter, Lister and Deleter; the optional ones
// pass through to the inner store when it has them.
type Cache struct {
	inner    Store
	maxBytes int64 // total size of cached data
	maxFile  int64 // larger files are not cached

	mu    sync.Mutex
	gen   uint64 // counts writes; a Get that raced one does not cache what it read
	size  int64
	lru   *list.List               // front: most recently used; values are *cacheEntry
	items map[string]*list.Element // name → element in lru
}

type cacheEntry struct {
	name string
	data []byte
	info FileInfo
}

// NewCache returns a Cache over inner holding at most maxBytes of files no
// larger than maxFile bytes each. maxBytes <= 0 disables caching (every call
// passes through).
func NewCache(inner Store, maxBytes, maxFile int64) *Cache {
	return &Cache{inner: inner, maxBytes: maxBytes, maxFile: maxFile, lru: list.New(), items: make(map[string]*list.Element)}
}

// Get returns the file from memory, or from the inner store (caching it
// when it is small enough). Readers from memory implement io.ReadSeeker and
// Stat, like the inner store's files.
func (c *Cache) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	var gen uint64
	if c.maxBytes > 0 {
		c.mu.Lock()
		if el, ok := c.items[name]; ok {
			c.lru.MoveToFront(el)
			e := el.Value.(*cacheEntry)
			c.mu.Unlock()
			return &memReader{Reader: bytes.NewReader(e.data), info: e.info}, nil
		}
		gen = c.gen
		c.mu.Unlock()
	}
	rc, err := c.inner.Get(ctx, name)
	if err != nil || c.maxBytes <= 0 {
		return rc, err
	}
	st, ok := rc.(interface{ Stat() (fs.FileInfo, error) })
	if !ok {
		return rc, nil
	}
	fi, err := st.Stat()
	if err != nil || fi.Size() > c.maxFile {
		return rc, nil
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, c.maxFile+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > c.maxFile { // grew since Stat: do not cache
		return &memReader{Reader: bytes.NewReader(data), info: FileInfo{FileName: name, FileSize: int64(len(data)), FileModTime: fi.ModTime()}}, nil
	}
	e := &cacheEntry{name: name, data: data, info: FileInfo{FileName: name, FileSize: int64(len(data)), FileModTime: fi.ModTime()}}
	c.add(e, gen)
	return &memReader{Reader: bytes.NewReader(data), info: e.info}, nil
}

// add caches e, read when the write generation was gen. If a write has
// completed since, e may be older than what the inner store now holds, so
// it is not cached.
func (c *Cache) add(e *cacheEntry, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if old, ok := c.items[e.name]; ok {
		c.removeElement(old)
	}
	c.items[e.name] = c.lru.PushFront(e)
	c.size += int64(len(e.data))
	for c.size > c.maxBytes {
		c.removeElement(c.lru.Back())
	}
}

func (c *Cache) removeElement(el *list.Element) {
	e := el.Value.(*cacheEntry)
	c.lru.Remove(el)
	delete(c.items, e.name)
	c.size -= int64(len(e.data))
}

// forget drops name from memory after a write, and makes Gets that were in
// flight during the write not cache what they read.
func (c *Cache) forget(name string) {
	c.mu.Lock()
	c.gen++
	if el, ok := c.items[name]; ok {
		c.removeElement(el)
	}
	c.mu.Unlock()
}

// Put writes to the inner store, then drops any cached copy.
func (c *Cache) Put(ctx context.Context, name string, r io.Reader) error {
	err := c.inner.Put(ctx, name, r)
	c.forget(name)
	return err
}

// PutFile moves a local file into the inner store (copying it when the inner
// store cannot take files), then drops any cached copy.
func (c *Cache) PutFile(ctx context.Context, name, localPath string) error {
	defer c.forget(name)
	if fp, ok := c.inner.(FilePutter); ok {
		return fp.PutFile(ctx, name, localPath)
	}
	f, err := os.Open(localPath)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := c.inner.Put(ctx, name, f); err != nil {
		return err
	}
	return os.Remove(localPath)
}

// List passes through to the inner store; a store that cannot list yields
// nothing.
func (c *Cache) List(ctx context.Context, dir string) ([]string, error) {
	if l, ok := c.inner.(Lister); ok {
		return l.List(ctx, dir)
	}
	if err := CheckDir(dir); err != nil {
		return nil, err
	}
	return nil, nil
}

// Delete removes name from the inner store and from memory. A store that
// cannot delete reports fs.ErrPermission.
func (c *Cache) Delete(ctx context.Context, name string) error {
	defer c.forget(name)
	if d, ok := c.inner.(Deleter); ok {
		return d.Delete(ctx, name)
	}
	return &fs.PathError{Op: "delete", Path: name, Err: fs.ErrPermission}
}

// Len returns the number of files and bytes held in memory.
func (c *Cache) Len() (files int, bytes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.items), c.size
}
