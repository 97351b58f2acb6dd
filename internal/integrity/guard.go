package integrity

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"sync"
	"time"

	"github.com/modgate/modgate/internal/storage"
)

// A Guard checks stored .mod and .zip files on the serve path, once per
// process and file version.
//
// What is checked on a hit, exactly:
//
//   - the first time this process serves a .mod or .zip (and again
//     whenever the stored file's size or modification time changes): the
//     whole file is re-hashed and compared with the checksum database's
//     hash (from the lookup cached in the store) or the ledger's. A go.mod
//     costs microseconds; a zip costs one read and inflate of it (tens of
//     MB/s per core: see the README for measured rates), paid by the
//     first request after a restart. Zips larger than MaxZipBytes are not
//     hashed on the serve path;
//   - every later hit: only that the file's size and modification time
//     (on an object store, what its Stat reports) are those that were
//     checked. A byte flipped in place without changing them (bit rot
//     under a file system without checksums) is not seen until the next
//     restart, `modgate verify` or the background scrub;
//   - .info files carry no published hash and are not checked.
//
// A corrupt file is not served: it is quarantined, OnCorrupt is told,
// and the request fails with an error matching ErrCorrupt, so the next
// request misses and fetches the file again through the verifying fill.
// A file that cannot be verified (no hash known, the database unreachable
// for a lookup it never cached) is served as before: it was verified when
// it was stored.
type Guard struct {
	checker   *Checker
	onCorrupt func(Finding)

	mu     sync.Mutex
	seen   map[string]stamp // key → the size and time that were verified
	found  map[string]stamp // key → the size and time found corrupt
	max    int
	maxZip int64
}

type stamp struct {
	size int64
	mod  time.Time
}

// GuardConfig configures a Guard.
type GuardConfig struct {
	Checker *Checker
	// OnCorrupt is called once per corrupt file found, after it was
	// quarantined (Finding.Action says whether that worked).
	OnCorrupt func(Finding)
	// MaxEntries bounds the files remembered as verified (default
	// 1,000,000, about 100 MB); when full, the memory is cleared and files
	// are verified again as they are served.
	MaxEntries int
	// MaxZipBytes is the largest zip checked on the serve path (default
	// DefaultMaxZipBytes); larger ones are left to verify and the scrub.
	MaxZipBytes int64
}

// DefaultMaxZipBytes is the default GuardConfig.MaxZipBytes: hashing runs
// at a few tens of MB/s per core (inflate and SHA-256), so a zip this size
// costs its first request about a second or two.
const DefaultMaxZipBytes = 64 << 20

// NewGuard returns a Guard.
func NewGuard(cfg GuardConfig) *Guard {
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = 1_000_000
	}
	if cfg.MaxZipBytes <= 0 {
		cfg.MaxZipBytes = DefaultMaxZipBytes
	}
	return &Guard{checker: cfg.Checker, onCorrupt: cfg.OnCorrupt, seen: make(map[string]stamp), max: cfg.MaxEntries, maxZip: cfg.MaxZipBytes}
}

type statter interface {
	Stat() (fs.FileInfo, error)
}

// CheckHit checks body, the stored file key of path@version, before it is
// served, and returns what to serve: body itself (rewound) or an
// equivalent reader. On error body has been closed.
func (g *Guard) CheckHit(ctx context.Context, path, version, key string, body io.ReadCloser) (io.ReadCloser, error) {
	// A file already checked with the same size and time is the common
	// case; look it up before parsing the key (only keys that parse are
	// ever remembered).
	var st stamp
	if s, ok := body.(statter); ok {
		if fi, err := s.Stat(); err == nil {
			st = stamp{fi.Size(), fi.ModTime()}
			g.mu.Lock()
			prev, seen := g.seen[key]
			g.mu.Unlock()
			if seen && prev == st {
				return body, nil
			}
		}
	}
	_, _, file, ok := ParseKey(key)
	if !ok {
		return body, nil
	}
	if file == "zip" && st.size > g.maxZip {
		// Hashing it would hold this request for seconds; verify and
		// the scrub check it.
		return body, nil
	}
	f := Finding{Key: key, Module: path, Version: version, File: file}
	serve := body
	var got string
	var err error
	if file == "mod" {
		var data []byte
		got, f.Size, data, err = g.hashMod(body)
		if data != nil {
			serve = withStat(body, data, key, st)
		}
	} else {
		got, f.Size, err = g.checker.hash(body, path, version, file)
		if _, seekable := body.(io.Seeker); err == nil && seekable {
			err = rewind(body)
		} else if err == nil {
			// Hashing consumed a reader that cannot rewind (an object
			// store's): open the file again to serve it.
			body.Close()
			body, err = g.checker.Store.Get(ctx, key)
			if err != nil {
				return nil, err
			}
			serve = body
		}
	}
	if err != nil {
		f.Status, f.Reason = Corrupt, err.Error()
	} else if want, bad, final := g.checker.expected(ctx, f); bad != nil {
		// Unverifiable: serve what was verified when it was stored. What
		// nothing vouches for stays so; a database that did not answer
		// may answer the next request.
		if final {
			g.remember(key, st)
		}
		return serve, nil
	} else if got != want {
		f.Status, f.Reason = Corrupt, fmt.Sprintf("hash %s, want %s", got, want)
	} else {
		g.remember(key, st)
		return serve, nil
	}
	body.Close()
	if g.firstToFind(key, st) {
		if qerr := g.checker.quarantine(ctx, key); qerr != nil {
			f.Action = "quarantine failed: " + qerr.Error()
		} else {
			f.Action = "quarantined"
		}
		g.forget(key)
		if g.onCorrupt != nil {
			g.onCorrupt(f)
		}
	}
	return nil, fmt.Errorf("%s@%s: the stored %s is corrupt (%s); it was taken out of service and will be fetched again on the next request: %w",
		path, version, file, f.Reason, ErrCorrupt)
}

// hashMod reads and hashes a go.mod; data is what was read, to serve when
// body cannot be rewound.
func (g *Guard) hashMod(body io.Reader) (h string, size int64, data []byte, err error) {
	h, size, err = g.checker.hash(teeTo(&data, body), "", "", "mod")
	return h, size, data, err
}

// teeTo returns a reader that appends to *dst what it reads from r.
func teeTo(dst *[]byte, r io.Reader) io.Reader {
	return readerFunc(func(p []byte) (int, error) {
		n, err := r.Read(p)
		*dst = append(*dst, p[:n]...)
		return n, err
	})
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

func rewind(r io.Reader) error {
	if s, ok := r.(io.Seeker); ok {
		_, err := s.Seek(0, io.SeekStart)
		return err
	}
	return nil
}

// withStat returns body rewound when it can seek, else the bytes read
// from it as a reader with the same Stat.
func withStat(body io.ReadCloser, data []byte, key string, st stamp) io.ReadCloser {
	if s, ok := body.(io.Seeker); ok {
		if _, err := s.Seek(0, io.SeekStart); err == nil {
			return body
		}
	}
	body.Close()
	return &memFile{Reader: bytes.NewReader(data), info: storage.FileInfo{FileName: key, FileSize: int64(len(data)), FileModTime: st.mod}}
}

type memFile struct {
	*bytes.Reader
	info storage.FileInfo
}

func (m *memFile) Close() error               { return nil }
func (m *memFile) Stat() (fs.FileInfo, error) { return m.info, nil }

// Verified records body, the stored file key that this process has just
// filled (fetched, verified against its published hash and stored), as
// checked, so that its first hit is not hashed again. Without a Stat it
// records nothing.
func (g *Guard) Verified(key string, body io.Reader) {
	s, ok := body.(statter)
	if !ok {
		return
	}
	if fi, err := s.Stat(); err == nil {
		g.remember(key, stamp{fi.Size(), fi.ModTime()})
	}
}

func (g *Guard) remember(key string, st stamp) {
	if st == (stamp{}) {
		return // no Stat: nothing to recognise the file by; check every time
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.seen) >= g.max {
		clear(g.seen)
	}
	g.seen[key] = st
}

// firstToFind reports whether this check is the first to find the stored
// file key (as of st) corrupt: two requests that opened it before it was
// quarantined both find it, and it is quarantined and reported once.
func (g *Guard) firstToFind(key string, st stamp) bool {
	if st == (stamp{}) {
		return true
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.found[key] == st {
		return false
	}
	if g.found == nil || len(g.found) >= 1024 {
		g.found = make(map[string]stamp)
	}
	g.found[key] = st
	return true
}

func (g *Guard) forget(key string) {
	g.mu.Lock()
	delete(g.seen, key)
	g.mu.Unlock()
}
