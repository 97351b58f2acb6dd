// Package tombstone records module versions an operator purged (a legal
// takedown, a malicious release), so that modgate does not fetch them
// again, and removes their files (Purge).
//
// A tombstone is a small JSON record in the store itself, under the prefix
// "tombstones/" (a first path element without a dot, which never collides
// with a module path), so that every replica sharing the store, and a
// server whose data directory `modgate purge` changed from the command
// line, sees it at its next request: the mirror reads the tombstone keys
// of a module on every request for one of its files (one listing of an
// absent directory on a disk store: about 2.5 µs) and on every list,
// latest and query answer, unless the store holds no tombstone at all
// (asked at most once a millisecond; see none.go for why a purge from the
// command line is still seen at the next request).
//
// # What a tombstone covers
//
//   - Case: tombstones are keyed by the lower-cased module path, so a
//     purge of example.com/m@v1.2.3 also refuses Example.com/M@v1.2.3 (a
//     case variant is the same repository to a code host).
//   - Versions: a version tombstone covers exactly that version string.
//     A pseudo-version of the same commit, or "+incompatible" spellings
//     of another version, are other versions with their own files: purge
//     them by name, or purge the whole module. Queries (a branch, a
//     commit, @latest) that resolve to a purged version are refused too,
//     so `go get m@<commit of the purged tag>` finds nothing.
//   - A module tombstone (MODULE without @VERSION) covers every version of
//     the module, pseudo-versions and versions published later included.
//
// A purged version answers 410 Gone with "purged by operator". Note that
// the go command falls through to its next GOPROXY entry on 410 (as on
// 404): a client with GOPROXY=<modgate>,direct then fetches the version
// from its origin. To forbid a version to clients, use a policy rule
// (403, which stops the go command); purge removes it from the mirror.
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
	"sync"
	"time"

	"golang.org/x/mod/module"

	"github.com/modgate/modgate/internal/storage"
)

// ErrPurged reports a module version an operator purged. 410.
var ErrPurged = errors.New("purged by operator")

// Prefix is the store prefix of tombstones.
const Prefix = "tombstones/"

// A Tombstone records one purge. Version is "" for a whole module.
type Tombstone struct {
	Module  string    `json:"module"`
	Version string    `json:"version,omitempty"`
	Reason  string    `json:"reason,omitempty"`
	By      string    `json:"by,omitempty"`
	At      time.Time `json:"at"`
}

// A PurgedError is the error for a request of a purged version.
type PurgedError struct {
	Path, Version string
	T             Tombstone
}

func (e *PurgedError) Error() string {
	what := e.Path
	if e.Version != "" {
		what += "@" + e.Version
	}
	msg := what + ": purged by operator"
	if e.T.Version == "" {
		msg = fmt.Sprintf("%s: purged by operator (every version of %s)", what, e.T.Module)
	}
	if e.T.Reason != "" {
		msg += ": " + e.T.Reason
	}
	return msg
}

func (e *PurgedError) Unwrap() error { return ErrPurged }

// A Set reads and writes tombstones in a store. A Set from New reads the
// store on every check, so changes by other processes are seen at once; one
// from NewCached reuses a module's listing for a short while (see there).
// Give it the store itself, not a memory cache in front of it.
//
// When the store is unavailable (storage.ErrUnavailable: an object store
// that is down), a check answers from the last listing this Set read for
// the module, and a module it never listed counts as having none: files
// still in a replica's local cache keep being served through an outage,
// and a purge made during it is enforced once the store answers again.
type Set struct {
	store storage.Store
	fresh time.Duration // how long a listing answers without asking again
	now   func() time.Time
	sleep func(time.Duration)

	mu   sync.Mutex
	seen map[string]listing // lower-cased module path → its last listing

	noneState // whether the store holds any tombstone (none.go)
}

// A listing is one module's tombstone names, as read at a time.
type listing struct {
	names []string
	at    time.Time
}

// maxSeen bounds the listings a Set remembers.
const maxSeen = 1 << 14

// New returns the Set of tombstones in store, read on every check.
func New(store storage.Store) *Set { return &Set{store: store, now: time.Now, sleep: time.Sleep} }

// NewCached returns a Set that answers a module's checks from its last
// listing for up to fresh, for a store where a listing is a network round
// trip (an object store): a cache hit then costs no request to the store,
// and a purge made elsewhere (another replica, the command line) takes
// effect within fresh. Purges through this Set take effect at once.
func NewCached(store storage.Store, fresh time.Duration) *Set {
	return &Set{store: store, fresh: fresh, now: time.Now, sleep: time.Sleep}
}

// remember records path's listing; lastSeen returns it, and recent returns
// it only while it is fresh.
func (s *Set) remember(path string, names []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen == nil || len(s.seen) >= maxSeen {
		s.seen = make(map[string]listing)
	}
	s.seen[strings.ToLower(path)] = listing{names: names, at: s.now()}
}

func (s *Set) lastSeen(path string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen[strings.ToLower(path)].names
}

func (s *Set) recent(path string) ([]string, bool) {
	if s.fresh <= 0 {
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.seen[strings.ToLower(path)]
	return l.names, ok && s.now().Sub(l.at) < s.fresh
}

// forget drops path's listing, after this Set changed its tombstones.
func (s *Set) forget(path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.seen, strings.ToLower(path))
}

// moduleDir returns the tombstone directory of path: lower-cased, so case
// variants share it. Lower-case paths need no escaping.
func moduleDir(path string) string {
	return Prefix + strings.ToLower(path) + "/"
}

// Every tombstone of a module lives in one directory, so that one listing
// (on a disk store, one failed open in the common case of none) answers
// for the module and all its versions: "{dir}@v/{escaped version}" for a
// version, and "{dir}@v/@all" for the whole module ("@all" is no escaped
// version: those start with "v").
const allVersions = "@all"

func versionsDir(path string) string { return moduleDir(path) + "@v/" }

func moduleKey(path string) string { return versionsDir(path) + allVersions }

func versionKey(path, version string) (string, error) {
	esc, err := module.EscapeVersion(version)
	if err != nil {
		return "", err
	}
	return versionsDir(path) + esc, nil
}

// names lists the tombstones of path: escaped versions and allVersions.
// A store that cannot list is read key by key instead (nil, false).
func (s *Set) names(ctx context.Context, path string) ([]string, bool, error) {
	l, ok := s.store.(storage.Lister)
	if !ok {
		return nil, false, nil
	}
	if names, ok := s.recent(path); ok {
		return names, true, nil
	}
	if s.none(ctx) {
		return nil, true, nil
	}
	names, err := l.List(ctx, versionsDir(path))
	if errors.Is(err, storage.ErrUnavailable) {
		return s.lastSeen(path), true, nil
	}
	if err != nil {
		return nil, true, fmt.Errorf("reading tombstones of %s: %w", path, err)
	}
	s.remember(path, names)
	return names, true, nil
}

// Check returns nil when path@version may be served, a *PurgedError
// (matching ErrPurged) when it was purged, or the store's error.
func (s *Set) Check(ctx context.Context, path, version string) error {
	if s.none(ctx) {
		return nil
	}
	names, listed, err := s.names(ctx, path)
	if err != nil {
		return err
	}
	esc, escErr := module.EscapeVersion(version)
	keys := []string{moduleKey(path)}
	if escErr == nil {
		keys = append(keys, versionsDir(path)+esc)
	}
	if listed {
		keys = keys[:0]
		for _, n := range names {
			if n == allVersions || (escErr == nil && n == esc) {
				keys = append(keys, versionsDir(path)+n)
			}
		}
	}
	for _, key := range keys {
		t, err := s.read(ctx, key)
		if err == nil {
			return &PurgedError{Path: path, Version: version, T: t}
		}
		if errors.Is(err, storage.ErrUnavailable) && listed {
			// Listed before the outage: the tombstone stands.
			return &PurgedError{Path: path, Version: version, T: Tombstone{Reason: "(purged; the store is unavailable, so the tombstone could not be read)"}}
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("reading tombstone %s: %w", key, err)
		}
	}
	return nil
}

// CheckModule returns a *PurgedError when the whole module path was
// purged, nil when it was not, or the store's error.
func (s *Set) CheckModule(ctx context.Context, path string) error {
	if names, ok := s.recent(path); ok && !slices.Contains(names, allVersions) {
		return nil
	}
	if s.none(ctx) {
		return nil
	}
	t, err := s.read(ctx, moduleKey(path))
	if err == nil {
		if seen := s.lastSeen(path); !slices.Contains(seen, allVersions) {
			s.remember(path, append(slices.Clone(seen), allVersions))
		}
		return &PurgedError{Path: path, T: t}
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if errors.Is(err, storage.ErrUnavailable) {
		if slices.Contains(s.lastSeen(path), allVersions) {
			return &PurgedError{Path: path, T: Tombstone{Reason: "(purged; the store is unavailable, so the tombstone could not be read)"}}
		}
		return nil
	}
	return fmt.Errorf("reading tombstones of %s: %w", path, err)
}

// Filter returns a function reporting whether a version of path is
// purged, for filtering a version list: one directory listing, whatever
// the list's length.
func (s *Set) Filter(ctx context.Context, path string) (func(version string) bool, error) {
	if err := s.CheckModule(ctx, path); errors.Is(err, ErrPurged) {
		return func(string) bool { return true }, nil
	} else if err != nil {
		return nil, err
	}
	names, _, err := s.names(ctx, path)
	if err != nil {
		return nil, err
	}
	purged := make(map[string]bool, len(names))
	for _, n := range names {
		if v, err := module.UnescapeVersion(n); err == nil {
			purged[v] = true
		}
	}
	return func(v string) bool { return purged[v] }, nil
}

// Add writes t. It replaces a tombstone of the same module and version.
func (s *Set) Add(ctx context.Context, t Tombstone) error {
	key := moduleKey(t.Module)
	if t.Version != "" {
		var err error
		if key, err = versionKey(t.Module, t.Version); err != nil {
			return err
		}
	}
	data, err := json.Marshal(t)
	if err != nil {
		return err
	}
	if err := s.store.Put(ctx, key, bytes.NewReader(data)); err != nil {
		return fmt.Errorf("writing tombstone for %s: %w", t.Module, err)
	}
	s.forget(t.Module)
	s.tombstoneWritten()
	return nil
}

// Remove deletes the tombstone of path@version (version "" for the
// module's). It reports whether there was one.
func (s *Set) Remove(ctx context.Context, path, version string) (bool, error) {
	key := moduleKey(path)
	if version != "" {
		var err error
		if key, err = versionKey(path, version); err != nil {
			return false, err
		}
	}
	if _, err := s.read(ctx, key); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	d, ok := s.store.(storage.Deleter)
	if !ok {
		return false, errors.New("the store cannot delete files")
	}
	err := d.Delete(ctx, key)
	s.forget(path)
	return true, err
}

func (s *Set) read(ctx context.Context, key string) (Tombstone, error) {
	rc, err := s.store.Get(ctx, key)
	if err != nil {
		return Tombstone{}, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, 64<<10))
	if err != nil {
		return Tombstone{}, err
	}
	var t Tombstone
	if err := json.Unmarshal(data, &t); err != nil {
		// A damaged tombstone still stands: refusing is the safe side.
		return Tombstone{Reason: "(unreadable tombstone " + key + ")"}, nil
	}
	return t, nil
}

// nowUTC is when a tombstone is written, to the second.
func nowUTC() time.Time { return time.Now().UTC().Truncate(time.Second) }

// Key returns the store key of the tombstone of path@version (version ""
// for the whole module).
func Key(path, version string) (string, error) {
	if version == "" {
		return moduleKey(path), nil
	}
	return versionKey(path, version)
}

// All returns every tombstone by its key. The store must be a
// storage.Walker; otherwise All returns nothing.
func (s *Set) All(ctx context.Context) (map[string]Tombstone, error) {
	w, ok := s.store.(storage.Walker)
	if !ok {
		return nil, nil
	}
	all := make(map[string]Tombstone)
	err := w.Walk(ctx, Prefix, func(key string) error {
		t, err := s.read(ctx, key)
		if err == nil {
			all[key] = t
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	})
	return all, err
}
