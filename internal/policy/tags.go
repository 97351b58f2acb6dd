package policy

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
)

// InfoFiles is where a TagIndex reads a module's tagged versions and
// their .info files: the server's mirror (which stores every .info it
// serves), or the module cache for `modgate check`. Both methods must be
// safe for concurrent use; errors matching fs.ErrNotExist mean absent.
type InfoFiles interface {
	// Versions returns the module's version list, as @v/list does.
	Versions(module string) ([]string, error)
	// Info returns the .info file of module@version.
	Info(module, version string) ([]byte, error)
}

// Bounds of a TagIndex: how many .info files one lookup reads, how many
// at once, and how many version-to-commit facts it keeps in memory.
const (
	maxInfoReads      = 1000
	parallelInfoReads = 8
	maxTagEntries     = 1 << 17
)

// A TagIndex is a TagSource that derives the commit of every tagged
// version from its .info file: the go command's Origin.Hash, which
// upstream proxies send for versions they fetched from a VCS and which
// modgate's Git sources always write. Because the facts come from stored
// .info files (immutable once stored), nothing needs saving: after a
// restart the index is rebuilt from the same files on first use. It keeps
// what it read in memory (bounded; when full it starts over, costing one
// read each).
//
// The mapping is as good as the .info files: an upstream that omits
// Origin leaves its pseudo-versions unmapped (refused by default under a
// module a rule names by version), and one that lies about it can map a
// commit to a wrong tag, but never hide a tag that really points at it
// when that tag's .info is honest (every tag at the commit is found, and
// a rule refuses the pseudo-version when it refuses any of them).
type TagIndex struct {
	src InfoFiles

	mu     sync.Mutex
	hashes map[string]string // "module@version" -> lower-case commit hash, "" for none
}

// NewTagIndex returns a TagIndex reading from src.
func NewTagIndex(src InfoFiles) *TagIndex {
	return &TagIndex{src: src, hashes: make(map[string]string)}
}

// Tags implements TagSource: the tagged versions in module's list whose
// .info Origin.Hash starts with rev. An error is returned only when
// nothing was found and the list or some .info could not be read.
func (x *TagIndex) Tags(mod, rev string) ([]string, error) {
	rev = strings.ToLower(rev)
	if len(rev) < 7 {
		return nil, fmt.Errorf("revision %q is too short to name a commit", rev)
	}
	versions, err := x.src.Versions(mod)
	if err != nil {
		return nil, fmt.Errorf("listing the versions of %s: %w", mod, err)
	}
	// Newest first: a pseudo-version's commit is usually a recent one, and
	// the read bound then drops the oldest tags.
	semver.Sort(versions)
	var tags, unread []string
	for i := len(versions) - 1; i >= 0; i-- {
		v := versions[i]
		if !semver.IsValid(v) || module.IsPseudoVersion(v) {
			continue
		}
		tags = append(tags, v)
		if _, ok := x.cached(mod, v); !ok {
			unread = append(unread, v)
		}
	}
	var firstErr error
	if len(unread) > maxInfoReads {
		firstErr = fmt.Errorf("%s has more than %d tags not read yet; only the newest were read", mod, maxInfoReads)
		unread = unread[:maxInfoReads]
	}
	if err := x.read(mod, unread); err != nil && firstErr == nil {
		firstErr = err
	}
	var found []string
	for _, v := range tags {
		if hash, ok := x.cached(mod, v); ok && hash != "" && strings.HasPrefix(hash, rev) {
			found = append(found, v)
		}
	}
	if len(found) == 0 && firstErr != nil {
		return nil, firstErr
	}
	return found, nil
}

// read reads the .info files of versions, a few at a time (the first
// lookup for a module with many tags would otherwise wait for each in
// turn), and remembers their commits. It returns the first error; the
// versions it could not read are not remembered and are tried again next
// time.
func (x *TagIndex) read(mod string, versions []string) error {
	var (
		wg       sync.WaitGroup
		sem      = make(chan struct{}, parallelInfoReads)
		errMu    sync.Mutex
		firstErr error
	)
	for _, v := range versions {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			data, err := x.src.Info(mod, v)
			if err != nil {
				errMu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("reading %s@%s .info: %w", mod, v, err)
				}
				errMu.Unlock()
				return
			}
			x.remember(mod, v, originHash(data))
		}()
	}
	wg.Wait()
	return firstErr
}

func (x *TagIndex) cached(mod, version string) (string, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	h, ok := x.hashes[mod+"@"+version]
	return h, ok
}

func (x *TagIndex) remember(mod, version, hash string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if len(x.hashes) >= maxTagEntries {
		clear(x.hashes)
	}
	x.hashes[mod+"@"+version] = hash
}

// originHash returns the lower-case commit hash of a .info file's Origin,
// or "" when it has none (or what it has is not a commit hash).
func originHash(data []byte) string {
	var in struct {
		Origin *struct{ Hash string }
	}
	if json.Unmarshal(data, &in) != nil || in.Origin == nil {
		return ""
	}
	h := strings.ToLower(in.Origin.Hash)
	// A Git commit is 40 hex digits (SHA-1) or 64 (SHA-256).
	if (len(h) != 40 && len(h) != 64) || strings.Trim(h, "0123456789abcdef") != "" {
		return ""
	}
	return h
}
