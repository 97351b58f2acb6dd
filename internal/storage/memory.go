package storage

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"time"
)

// Memory is a Store that keeps files in memory. It is the reference
// implementation of the Store contract and the store tests use; it also
// implements Lister and Deleter. Nothing survives the process, so "durable"
// means "visible to every later Get".
//
// The zero value is not usable; call NewMemory. A Memory is safe for
// concurrent use.
type Memory struct {
	mu    sync.RWMutex
	files map[string]memFile
}

// memFile is one stored file. data is never modified after Put stores it, so
// readers share it without copying.
type memFile struct {
	data    []byte
	modTime time.Time
}

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{files: make(map[string]memFile)}
}

var (
	_ Store   = (*Memory)(nil)
	_ Lister  = (*Memory)(nil)
	_ Deleter = (*Memory)(nil)
)

// Get returns a reader for the file stored under name, or an error matching
// fs.ErrNotExist if there is none. The reader also implements io.Seeker,
// io.ReaderAt and Stat() (fs.FileInfo, error), and keeps returning the
// content it was opened on even if name is replaced meanwhile.
// An invalid name is an error matching ErrInvalidName.
func (m *Memory) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	m.mu.RLock()
	f, ok := m.files[name]
	m.mu.RUnlock()
	if !ok {
		return nil, &fs.PathError{Op: "get", Path: name, Err: fs.ErrNotExist}
	}
	return &memReader{
		Reader: bytes.NewReader(f.data),
		info:   FileInfo{FileName: name, FileSize: int64(len(f.data)), FileModTime: f.modTime},
	}, nil
}

// Put stores a copy of everything read from r under name, replacing any
// previous content. Nothing is stored if name is invalid (ErrInvalidName),
// ctx is done (the context's error), or reading r fails (r's error): the
// previous content, or its absence, stays as it was.
func (m *Memory) Put(ctx context.Context, name string, r io.Reader) error {
	if err := CheckName(name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("storing %s: %w", name, err)
	}
	data, err := io.ReadAll(ctxReader{ctx, r})
	if err != nil {
		return fmt.Errorf("storing %s: %w", name, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("storing %s: %w", name, err)
	}
	m.mu.Lock()
	m.files[name] = memFile{data: data, modTime: time.Now()}
	m.mu.Unlock()
	return nil
}

// List returns the sorted names of the files directly below dir, a
// directory name ending in "/" (see CheckDir). Names in deeper directories
// are not included. A directory with no files is an empty list.
func (m *Memory) List(ctx context.Context, dir string) ([]string, error) {
	if err := CheckDir(dir); err != nil {
		return nil, err
	}
	var names []string
	m.mu.RLock()
	for key := range m.files {
		rest, ok := strings.CutPrefix(key, dir)
		if ok && !strings.Contains(rest, "/") {
			names = append(names, rest)
		}
	}
	m.mu.RUnlock()
	slices.Sort(names)
	return names, nil
}

// Delete removes name. Deleting an absent name is not an error.
func (m *Memory) Delete(ctx context.Context, name string) error {
	if err := CheckName(name); err != nil {
		return err
	}
	m.mu.Lock()
	delete(m.files, name)
	m.mu.Unlock()
	return nil
}

// memReader is what Memory.Get returns: a seekable reader with a Stat
// method, like an *os.File.
type memReader struct {
	*bytes.Reader
	info FileInfo
}

// Stat returns the size, name and modification time of the file. It
// points into r rather than copying the FileInfo into a new interface value:
// the server calls it several times per cache hit.
func (r *memReader) Stat() (fs.FileInfo, error) { return &r.info, nil }

// Close does nothing; it exists to satisfy io.ReadCloser.
func (r *memReader) Close() error { return nil }

// ctxReader is a reader that stops with the context's error once ctx is
// done, so a long Put from a slow reader can be cancelled between reads.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
