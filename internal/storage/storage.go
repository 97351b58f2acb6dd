// Package storage defines where modgate keeps the files it serves.
//
// Keys are the escaped GOPROXY protocol paths, for example
// "example.com/!corp/lib/@v/v1.2.0.zip", "example.com/lib/@v/list" or
// "sumdb/sum.example.org/tile/8/0/001". Using the protocol path as the key
// means the disk store is itself a valid file:// GOPROXY, can be seeded from a
// module cache's download directory, and an object store needs no translation.
// A module path's first element always contains a dot, so keys under the
// dot-free prefixes "sumdb/" and "answers/" (the mirror's last answers to
// queries and remembered misses) never collide with module files.
//
// The package owns the Store contract, its in-memory implementation and the
// conformance suite in storagetest. It does not decide what may be stored:
// verification happens before Put is called (see package mirror).
package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"
)

// A Store holds module files under their escaped protocol paths.
//
// Get returns an error matching fs.ErrNotExist when name is absent. The
// returned reader may also implement io.Seeker and Stat() (fs.FileInfo, error)
// (an *os.File does); servers use them for Range requests and zero-copy sends.
// The caller closes it.
//
// Put stores the whole of r under name, replacing any previous content. It
// must be atomic: a concurrent Get sees all of the old file or all of the new
// one, never a part, and a crash during Put leaves the old content (or
// nothing) in place. Put returns only after the data is durable.
// Callers only replace mutable keys (lists, sumdb state); versioned files are
// written once.
//
// Implementations must be safe for concurrent use.
type Store interface {
	Get(ctx context.Context, name string) (io.ReadCloser, error)
	Put(ctx context.Context, name string, r io.Reader) error
}

// A FilePutter is a Store that can take ownership of a local, already written
// file without copying its bytes (a rename on the same file system). PutFile
// has Put's atomicity and durability contract; after a successful PutFile the
// file at localPath no longer exists. On error localPath is left for the
// caller to remove.
type FilePutter interface {
	PutFile(ctx context.Context, name, localPath string) error
}

// A Lister is a Store that can list the names directly below a directory
// prefix ending in "/". Names are returned without the prefix, sorted.
// A missing directory is an empty list, not an error.
type Lister interface {
	List(ctx context.Context, dir string) ([]string, error)
}

// A Deleter is a Store that can remove a name. Deleting an absent name is
// not an error. Only maintenance tools (quarantine of corrupt files) use it.
type Deleter interface {
	Delete(ctx context.Context, name string) error
}

// ErrInvalidName reports a key that is not a clean relative slash path.
var ErrInvalidName = errors.New("invalid storage name")

// ErrUnavailable reports a store that cannot be reached or does not answer
// (an object store that is down): the request may succeed later, and
// nothing was stored. Servers answer 503.
var ErrUnavailable = errors.New("storage unavailable")

// CheckName reports whether name is acceptable as a storage key: a clean,
// relative, slash-separated path without control characters whose elements
// are not empty, ".", "..", and do not start with "." (temporary files use
// that prefix). Stores call it
// before touching their backend, so a hostile name can never escape the
// store's root.
func CheckName(name string) error {
	if name == "" || !fs.ValidPath(name) || strings.Contains(name, "\\") || path.Clean(name) != name {
		return fmt.Errorf("%w: %q", ErrInvalidName, name)
	}
	for elem := range strings.SplitSeq(name, "/") {
		if strings.HasPrefix(elem, ".") {
			return fmt.Errorf("%w: %q: element starts with a dot", ErrInvalidName, name)
		}
	}
	for _, c := range name {
		if c < 0x20 || c == 0x7f {
			return fmt.Errorf("%w: %q: control character", ErrInvalidName, name)
		}
	}
	return nil
}

// CheckDir reports whether dir is acceptable as a Lister directory: a name
// that CheckName accepts, followed by "/".
func CheckDir(dir string) error {
	name, ok := strings.CutSuffix(dir, "/")
	if !ok || CheckName(name) != nil {
		return fmt.Errorf("%w: directory %q", ErrInvalidName, dir)
	}
	return nil
}

// FileInfo is a minimal fs.FileInfo for stores that do not have one of their own.
type FileInfo struct {
	FileName    string
	FileSize    int64
	FileModTime time.Time
}

func (fi FileInfo) Name() string       { return path.Base(fi.FileName) }
func (fi FileInfo) Size() int64        { return fi.FileSize }
func (fi FileInfo) Mode() fs.FileMode  { return 0o444 }
func (fi FileInfo) ModTime() time.Time { return fi.FileModTime }
func (fi FileInfo) IsDir() bool        { return false }
func (fi FileInfo) Sys() any           { return nil }
