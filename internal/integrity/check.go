package integrity

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/dirhash"
	modzip "golang.org/x/mod/zip"

	"github.com/modgate/modgate/internal/modhash"
	"github.com/modgate/modgate/internal/storage"
)

// ErrNoHash reports that a Source covers a module but has no hash for the
// version: nothing will vouch for the stored file, now or later.
var ErrNoHash = errors.New("no hash known")

// ErrCorrupt reports a stored file whose hash differs from the one the
// checksum database or the ledger gives for it. It is never served.
var ErrCorrupt = errors.New("stored file is corrupt")

// A Source gives the expected h1: hashes of a module version's files.
// Covers reports whether it answers for path at all. Expected returns the
// hashes of the go.mod and the zip; either is "" when unknown. An error
// means no answer could be had (the database is down, knows nothing of the
// version); it makes the file unverifiable, not corrupt.
type Source interface {
	Covers(path string) bool
	Expected(ctx context.Context, path, version string) (mod, zip string, err error)
}

// A Ledger is what LedgerSource needs of a *ledger.Ledger.
type Ledger interface {
	Covers(path string) bool
	Lookup(path, version string) (mod, zip string, ok bool)
}

// LedgerSource makes a ledger a Source: the hashes first seen for private
// modules. It only reads the ledger; checking a stored file never records
// a hash (a file nobody recorded is unverifiable, not trusted).
type LedgerSource struct{ Ledger Ledger }

// Covers reports whether the ledger records path.
func (s LedgerSource) Covers(path string) bool { return s.Ledger.Covers(path) }

// Expected returns the recorded hashes, or an error when none is recorded.
func (s LedgerSource) Expected(ctx context.Context, path, version string) (string, string, error) {
	mod, zip, ok := s.Ledger.Lookup(path, version)
	if !ok {
		return "", "", fmt.Errorf("%s@%s: %w in the ledger", path, version, ErrNoHash)
	}
	return mod, zip, nil
}

// Status is the verdict on one stored file.
type Status string

const (
	OK           Status = "ok"
	Corrupt      Status = "corrupt"      // its hash differs from the expected one
	Missing      Status = "missing"      // the ledger says it was served; the store lacks it
	Unverifiable Status = "unverifiable" // there is no hash to compare with
)

// A Finding is the verdict on one file, with what was done about it.
type Finding struct {
	Key     string `json:"key"`
	Module  string `json:"module"`
	Version string `json:"version"`
	File    string `json:"file"` // "mod" or "zip"
	Status  Status `json:"status"`
	Reason  string `json:"reason,omitempty"`
	// Action is what happened to a bad file: "quarantined", "repaired",
	// or why neither worked ("repair failed: ...").
	Action string `json:"action,omitempty"`
	Size   int64  `json:"size"`
}

// A Checker checks stored files. Its fields must be set before use and
// not changed after; it is safe for concurrent use.
type Checker struct {
	Store storage.Store
	// Sources give expected hashes; the first that covers a path answers.
	Sources []Source
	// Evict, when set, is the store bad files are removed through after
	// they were copied aside: a memory cache in front of Store, which must
	// forget them too (default Store).
	Evict storage.Store
	// ScratchDir holds zips copied out of a store that does not hand out
	// local files, while they are hashed ("" is the system's temp dir).
	ScratchDir string

	// memo holds the hashes looked up during a Run; nil outside one.
	memo atomic.Pointer[sync.Map]
}

// ParseKey splits a stored file's key into module path, version and file
// kind ("mod" or "zip"); ok is false for any other key (.info, lists,
// sumdb/, answers/, quarantine/, tombstones/).
func ParseKey(key string) (path, version, file string, ok bool) {
	escPath, rest, found := strings.Cut(key, "/@v/")
	if !found || strings.Contains(rest, "/") {
		return "", "", "", false
	}
	var escVer string
	switch {
	case strings.HasSuffix(rest, ".mod"):
		escVer, file = strings.TrimSuffix(rest, ".mod"), "mod"
	case strings.HasSuffix(rest, ".zip"):
		escVer, file = strings.TrimSuffix(rest, ".zip"), "zip"
	default:
		return "", "", "", false
	}
	p, err1 := module.UnescapePath(escPath)
	v, err2 := module.UnescapeVersion(escVer)
	if err1 != nil || err2 != nil || module.Check(p, v) != nil {
		return "", "", "", false
	}
	return p, v, file, true
}

// FileKey returns the key of path@version's file ("mod", "zip" or "info").
func FileKey(path, version, file string) (string, error) {
	escPath, err := module.EscapePath(path)
	if err != nil {
		return "", err
	}
	escVer, err := module.EscapeVersion(version)
	if err != nil {
		return "", err
	}
	return escPath + "/@v/" + escVer + "." + file, nil
}

// lookup asks src for the hashes of path@version, once per version
// during a Run (its .mod and .zip share the answer).
func (c *Checker) lookup(ctx context.Context, src Source, path, version string) (string, string, error) {
	memo := c.memo.Load()
	if memo == nil {
		return src.Expected(ctx, path, version)
	}
	k := path + "@" + version
	if h, ok := memo.Load(k); ok {
		p := h.([2]string)
		return p[0], p[1], nil
	}
	mod, zip, err := src.Expected(ctx, path, version)
	if err == nil {
		memo.Store(k, [2]string{mod, zip})
	}
	return mod, zip, err
}

func (c *Checker) source(path string) Source {
	for _, s := range c.Sources {
		if s != nil && s.Covers(path) {
			return s
		}
	}
	return nil
}

// expected returns the expected hash of one file, or a Finding that is
// not OK when there is none; final says that asking again will not help
// (nothing covers the module, or its source has no hash for it).
func (c *Checker) expected(ctx context.Context, f Finding) (want string, bad *Finding, final bool) {
	src := c.source(f.Module)
	if src == nil {
		f.Status, f.Reason = Unverifiable, "no checksum database or ledger covers this module"
		return "", &f, true
	}
	mod, zip, err := c.lookup(ctx, src, f.Module, f.Version)
	if err != nil {
		f.Status, f.Reason = Unverifiable, err.Error()
		return "", &f, errors.Is(err, ErrNoHash)
	}
	want = mod
	if f.File == "zip" {
		want = zip
	}
	if want == "" {
		f.Status, f.Reason = Unverifiable, "no hash known for the "+f.File
		return "", &f, true
	}
	return want, nil, false
}

// Check re-hashes the stored file key and compares it with its expected
// hash. It never modifies the store.
func (c *Checker) Check(ctx context.Context, key string) Finding {
	path, version, file, ok := ParseKey(key)
	f := Finding{Key: key, Module: path, Version: version, File: file}
	if !ok {
		f.Status, f.Reason = Unverifiable, "not a module file key"
		return f
	}
	rc, err := c.Store.Get(ctx, key)
	if errors.Is(err, fs.ErrNotExist) {
		f.Status, f.Reason = Missing, "not in the store"
		return f
	}
	if err != nil {
		f.Status, f.Reason = Unverifiable, "reading: "+err.Error()
		return f
	}
	defer rc.Close()
	got, size, err := c.hash(rc, path, version, file)
	f.Size = size
	if err != nil {
		// A file that cannot be hashed (a zip that does not open) is as
		// bad as one that hashes differently.
		f.Status, f.Reason = Corrupt, err.Error()
		return f
	}
	want, bad, _ := c.expected(ctx, f)
	if bad != nil {
		return *bad
	}
	if got != want {
		f.Status, f.Reason = Corrupt, fmt.Sprintf("hash %s, want %s", got, want)
		return f
	}
	f.Status = OK
	return f
}

// hash computes the go.sum hash of a stored file read from rc.
func (c *Checker) hash(rc io.Reader, path, version, file string) (string, int64, error) {
	if file == "mod" {
		data, err := io.ReadAll(io.LimitReader(rc, modzip.MaxGoMod+1))
		if err != nil {
			return "", 0, fmt.Errorf("reading: %w", err)
		}
		if len(data) > modzip.MaxGoMod {
			return "", int64(len(data)), fmt.Errorf("go.mod is larger than %d bytes", modzip.MaxGoMod)
		}
		h, err := HashMod(data)
		return h, int64(len(data)), err
	}
	name, size, cleanup, err := c.localZip(rc)
	if err != nil {
		return "", 0, err
	}
	defer cleanup()
	h, err := modhash.Zip(name)
	if err != nil {
		return "", size, fmt.Errorf("hashing zip: %w", err)
	}
	return h, size, nil
}

// localZip returns the name of a local file holding the zip read from rc:
// the store's own file when rc is one (the disk store's *os.File), else a
// scratch copy that cleanup removes.
func (c *Checker) localZip(rc io.Reader) (name string, size int64, cleanup func(), err error) {
	if f, ok := rc.(interface {
		Name() string
		Stat() (fs.FileInfo, error)
	}); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			if _, err := os.Stat(f.Name()); err == nil {
				return f.Name(), fi.Size(), func() {}, nil
			}
		}
	}
	tmp, err := os.CreateTemp(c.ScratchDir, "verify-*.zip")
	if err != nil {
		return "", 0, nil, fmt.Errorf("creating scratch file: %w", err)
	}
	n, err := io.Copy(tmp, io.LimitReader(rc, modzip.MaxZipFile+1))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	cleanup = func() { os.Remove(tmp.Name()) }
	if err != nil {
		cleanup()
		return "", 0, nil, fmt.Errorf("copying zip to scratch: %w", err)
	}
	return tmp.Name(), n, cleanup, nil
}

// HashMod computes the go.sum hash of a go.mod file as the go command does.
func HashMod(data []byte) (string, error) {
	return dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	})
}
