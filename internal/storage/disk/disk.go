// Package disk is a storage.Store in a directory of the local file system,
// modgate's default store.
//
// # Layout
//
// A key is a file at the same relative path below the root: the key
// "example.com/!corp/lib/@v/v1.2.0.zip" is the file
// <root>/example.com/!corp/lib/@v/v1.2.0.zip. The root is therefore itself a
// valid file:// GOPROXY, and a module cache's download directory
// ($GOMODCACHE/cache/download) can be copied in as a seed. Files are created
// with mode 0o644 and directories with 0o755, both subject to the umask.
//
// # Writes
//
// Put writes to a temporary file named ".tmp-<random>" in the destination's
// own directory, syncs it, renames it over the destination and syncs the
// directory. Readers therefore see the old file or the new one, never a
// part, and a crash leaves the old content or nothing. Keys can never have
// an element starting with a dot (storage.CheckName), so temporary files
// are never served or listed. The temporary files of a crashed process
// stay behind; CleanTemp removes them and is meant to run at start-up.
//
// # Reads
//
// Get is the cache-hit hot path and costs one open and one fstat. It returns
// the *os.File wrapped so that Stat, and the Seek with which
// http.ServeContent finds the size, are answered from that fstat without
// another system call (file.go); the wrapper keeps SyscallConn, so HTTP
// servers can Seek and Stat it for Range requests and the kernel can send
// it with sendfile.
//
// # What operators must not do
//
// The store never creates symbolic links, FIFOs or other special files, and
// the tree must not contain any. Keys are validated, so a request can never
// name a path outside the root, but a symbolic link an operator puts in the
// tree is followed by Get (List skips it and CleanTemp never follows it).
// A key whose path is not a regular file (a directory, a FIFO, a device)
// reads as absent.
package disk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/modgate/modgate/internal/storage"
)

const (
	// tempPrefix starts the name of every temporary file. Keys never have
	// an element starting with a dot, so no key can name a temporary file.
	tempPrefix = ".tmp-"

	// tempMaxAge is how old a temporary file must be before CleanTemp
	// considers it abandoned. A Put in progress keeps its file's
	// modification time fresh with every write.
	tempMaxAge = time.Minute

	// copyBufferSize is the size of the buffer Put copies through.
	copyBufferSize = 128 << 10
)

// Store is a storage.Store in a directory of the local file system. It also
// implements storage.FilePutter, storage.Lister and storage.Deleter.
// A Store is safe for concurrent use, also by several processes sharing the
// same root.
type Store struct {
	root   string // absolute and clean
	prefix string // root followed by exactly one separator

	// rename is os.Rename; tests replace it to simulate a rename across
	// file systems.
	rename func(oldpath, newpath string) error
}

var (
	_ storage.Store      = (*Store)(nil)
	_ storage.FilePutter = (*Store)(nil)
	_ storage.Lister     = (*Store)(nil)
	_ storage.Deleter    = (*Store)(nil)
)

// New returns a store rooted at the directory root, creating it (mode
// 0o755) and its parents if needed. A relative root is made absolute.
func New(root string) (*Store, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("disk store %s: %w", root, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("disk store %s: %w", root, err)
	}
	prefix := abs
	if !strings.HasSuffix(prefix, string(filepath.Separator)) {
		prefix += string(filepath.Separator)
	}
	return &Store{root: abs, prefix: prefix, rename: os.Rename}, nil
}

// Root returns the absolute path of the store's directory.
func (s *Store) Root() string { return s.root }

// path returns the file system path of a valid key. CheckName guarantees
// the key is clean and relative, so appending it is enough.
func (s *Store) path(name string) string {
	return s.prefix + filepath.FromSlash(name)
}

// Get opens the file stored under name and returns it as an *os.File,
// which the caller closes. It returns an error matching fs.ErrNotExist if
// there is no regular file at that path, and one matching
// storage.ErrInvalidName if name is not a valid key. Opening a local file
// does not wait for anything, so ctx is not consulted.
func (s *Store) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := storage.CheckName(name); err != nil {
		return nil, err
	}
	p := s.path(name)
	// O_NONBLOCK keeps a FIFO in the tree from blocking the open forever.
	// It changes nothing for regular files, and it saves the os package
	// the fcntl calls it otherwise makes to switch a new descriptor's mode.
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		if impossiblePath(err) {
			return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
		}
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
	}
	return &file{File: f, info: fi}, nil
}

// impossiblePath reports whether err says that no file can exist at the
// path, because a parent is a file or the path is too long for the file
// system. Such a name is absent, like one that does not exist.
func impossiblePath(err error) bool {
	return errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.ENAMETOOLONG)
}

// Put stores the content of r under name, replacing any previous content,
// and returns once the new file and its directory entry are synced to disk.
// On error nothing changes: the old content, or its absence, stays. An
// error from r, or ctx's error if ctx is done before the file is in place,
// is returned wrapped.
func (s *Store) Put(ctx context.Context, name string, r io.Reader) error {
	if err := storage.CheckName(name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("storing %s: %w", name, err)
	}
	dst := s.path(name)
	dir := filepath.Dir(dst)
	tmp, err := writeTemp(ctx, dir, r)
	if err != nil {
		return fmt.Errorf("storing %s: %w", name, err)
	}
	if err := ctx.Err(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("storing %s: %w", name, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("storing %s: %w", name, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("storing %s: %w", name, err)
	}
	return nil
}

// writeTemp copies r into a new temporary file in dir, creating dir if
// needed, syncs and closes it, and returns its path. On error it removes
// the file.
func writeTemp(ctx context.Context, dir string, r io.Reader) (path string, err error) {
	f, err := createTemp(dir)
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			f.Close() // may be closed already; only the first error matters
			os.Remove(f.Name())
		}
	}()
	if err := copyContext(ctx, f, r); err != nil {
		return "", err
	}
	if err := f.Sync(); err != nil {
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return f.Name(), nil
}

// createTemp creates a new, empty temporary file in dir, creating dir and
// its parents if they are missing.
func createTemp(dir string) (*os.File, error) {
	madeDirs := false
	for range 100 {
		name := filepath.Join(dir, tempPrefix+strconv.FormatUint(rand.Uint64(), 36))
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		switch {
		case err == nil:
			return f, nil
		case errors.Is(err, fs.ErrExist):
			continue // name collision; try another
		case errors.Is(err, fs.ErrNotExist) && !madeDirs:
			// The directory is missing; this is the first file for it.
			if err := makeDirs(dir); err != nil {
				return nil, err
			}
			madeDirs = true
		default:
			return nil, err
		}
	}
	return nil, fmt.Errorf("creating a temporary file in %s: too many name collisions", dir)
}

// makeDirs creates dir and its missing parents, and syncs the parent of
// each so that the new entries survive a crash.
//
// A directory that exists already (made by a concurrent Put) gets its
// parent synced as well, in case its creator has not done so yet. A Put
// that finds the directory in place without calling makeDirs does not wait
// for that sync; the window is one fsync wide and needs a crash inside it.
func makeDirs(dir string) error {
	err := os.Mkdir(dir, 0o755)
	if errors.Is(err, fs.ErrNotExist) {
		parent := filepath.Dir(dir)
		if parent == dir {
			return err
		}
		if err := makeDirs(parent); err != nil {
			return err
		}
		err = os.Mkdir(dir, 0o755)
	}
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	// If dir exists as a file, the caller's next open reports ENOTDIR.
	return syncDir(filepath.Dir(dir))
}

// copyContext copies r to w until r is exhausted, checking ctx before each
// read so that a slow source can be abandoned.
func copyContext(ctx context.Context, w io.Writer, r io.Reader) error {
	buf := make([]byte, copyBufferSize)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, rerr := r.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return fmt.Errorf("reading content: %w", rerr)
		}
	}
}

// syncDir flushes dir's entries (a rename or a new file) to disk.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// PutFile moves the local file at localPath into the store under name,
// with Put's atomicity and durability. It syncs the file, sets its mode to
// 0o644 (os.CreateTemp makes files 0o600) and renames it into place; when
// localPath is on another file system it copies the file with Put and then
// removes it. On error localPath is left for the caller to remove.
func (s *Store) PutFile(ctx context.Context, name, localPath string) error {
	if err := storage.CheckName(name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("storing %s from %s: %w", name, localPath, err)
	}
	if err := prepareLocal(localPath); err != nil {
		return fmt.Errorf("storing %s: %w", name, err)
	}
	dst := s.path(name)
	dir := filepath.Dir(dst)
	err := s.rename(localPath, dst)
	if errors.Is(err, fs.ErrNotExist) {
		// prepareLocal saw localPath, so it is most likely dst's
		// directory that is missing.
		if err := makeDirs(dir); err != nil {
			return fmt.Errorf("storing %s: %w", name, err)
		}
		err = s.rename(localPath, dst)
	}
	if errors.Is(err, syscall.EXDEV) {
		return s.copyFile(ctx, name, localPath)
	}
	if err != nil {
		return fmt.Errorf("storing %s: %w", name, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("storing %s: %w", name, err)
	}
	return nil
}

// prepareLocal checks that localPath is a regular file, makes it readable
// by everyone like the files Put creates, and syncs it to disk.
func prepareLocal(localPath string) error {
	f, err := os.Open(localPath)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file", localPath)
	}
	if fi.Mode().Perm() != 0o644 {
		if err := f.Chmod(0o644); err != nil {
			return err
		}
	}
	return f.Sync()
}

// copyFile is PutFile across file systems: Put the file's content, then
// remove it.
func (s *Store) copyFile(ctx context.Context, name, localPath string) error {
	f, err := os.Open(localPath)
	if err != nil {
		return fmt.Errorf("storing %s: %w", name, err)
	}
	err = s.Put(ctx, name, f)
	f.Close()
	if err != nil {
		return err
	}
	if err := os.Remove(localPath); err != nil {
		return fmt.Errorf("storing %s: stored, but removing the local file: %w", name, err)
	}
	return nil
}

// List returns the sorted names of the regular files directly below dir, a
// directory key ending in "/" (see storage.CheckDir). Temporary files,
// subdirectories and symbolic links are not listed. A missing directory is
// an empty list.
func (s *Store) List(ctx context.Context, dir string) ([]string, error) {
	if err := storage.CheckDir(dir); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(s.path(strings.TrimSuffix(dir, "/")))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || impossiblePath(err) {
			return nil, nil
		}
		return nil, err
	}
	// os.ReadDir sorts by name, which is the order of Go strings.
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// Delete removes the file stored under name and syncs its directory.
// Deleting an absent name is not an error; neither is deleting a name that
// is a directory, which is left alone because it is not a stored file.
// Empty parent directories are kept.
func (s *Store) Delete(ctx context.Context, name string) error {
	if err := storage.CheckName(name); err != nil {
		return err
	}
	p := s.path(name)
	fi, err := os.Lstat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist) || (err != nil && impossiblePath(err)):
		return nil
	case err != nil:
		return fmt.Errorf("deleting %s: %w", name, err)
	case fi.IsDir():
		return nil
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("deleting %s: %w", name, err)
	}
	if err := syncDir(filepath.Dir(p)); err != nil {
		return fmt.Errorf("deleting %s: %w", name, err)
	}
	return nil
}

// CleanTemp removes the temporary files that a crashed process left in
// the store: regular files named ".tmp-*" that were last modified more than
// a minute ago. It returns how many it removed, and every error it met
// joined together; it carries on past errors.
//
// CleanTemp is meant to run at start-up, before the store is used. It is
// safe while Puts run, but a Put whose source stalls for over a minute can
// lose its temporary file and fail. It never follows symbolic links and
// skips directories whose names start with a dot, which the store never
// creates.
func (s *Store) CleanTemp() (removed int, err error) {
	cutoff := time.Now().Add(-tempMaxAge)
	var errs []error
	var walk func(dir string)
	walk = func(dir string) {
		entries, err := os.ReadDir(dir)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
			return
		}
		for _, e := range entries {
			p := filepath.Join(dir, e.Name())
			switch {
			case e.Type().IsDir(): // never true for a symbolic link
				if !strings.HasPrefix(e.Name(), ".") {
					walk(p)
				}
			case e.Type().IsRegular() && strings.HasPrefix(e.Name(), tempPrefix):
				info, err := e.Info()
				if err != nil || !info.ModTime().Before(cutoff) {
					continue // gone meanwhile, or possibly still being written
				}
				if err := os.Remove(p); err != nil {
					if !errors.Is(err, fs.ErrNotExist) {
						errs = append(errs, err)
					}
					continue
				}
				removed++
			}
		}
	}
	walk(s.root)
	if len(errs) > 0 {
		return removed, fmt.Errorf("cleaning temporary files in %s: %w", s.root, errors.Join(errs...))
	}
	return removed, nil
}
