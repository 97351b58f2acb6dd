package bundle

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb"
	"golang.org/x/mod/sumdb/note"
)

// A Checker verifies go.sum hashes against one checksum database with
// golang.org/x/mod/sumdb.Client: every answer is proved with tiles against
// a signed tree head. Where the lookups and tiles come from is the
// caller's (a bundle's files, or the database over HTTP).
type Checker struct {
	client *sumdb.Client
	ops    *checkerOps
}

// NewChecker returns a Checker for the database named by gosumdb (a
// verifier key, as in GOSUMDB). remote reads a database path ("/lookup/..."
// or "/tile/..."); a missing file is an error matching fs.ErrNotExist.
// onCache, if not nil, hears every lookup and tile the client has verified
// or used, under its cache name ("{name}/lookup/...", "{name}/tile/..."),
// which is the store key without "sumdb/".
func NewChecker(gosumdb string, remote func(path string) ([]byte, error), onCache func(file string, data []byte)) (*Checker, error) {
	key, _, _ := strings.Cut(strings.TrimSpace(gosumdb), " ")
	v, err := note.NewVerifier(key)
	if err != nil {
		return nil, fmt.Errorf("checksum database %q: %w", gosumdb, err)
	}
	ops := &checkerOps{name: v.Name(), key: key, remote: remote, onCache: onCache,
		config: make(map[string][]byte), cache: make(map[string][]byte)}
	return &Checker{client: sumdb.NewClient(ops), ops: ops}, nil
}

// Name returns the database's name.
func (c *Checker) Name() string { return c.ops.name }

// Check reports whether the database records h1 for m's file (ext ".mod" or
// ".zip"). A module the database does not have is an error matching
// fs.ErrNotExist.
func (c *Checker) Check(m module.Version, ext, h1 string) error {
	v := m.Version
	if ext == ".mod" {
		v += "/go.mod" // Lookup returns only the lines for v
	}
	lines, err := c.client.Lookup(m.Path, v)
	pending := c.ops.takePending()
	if err != nil {
		return err
	}
	want := m.Path + " " + v + " " + h1
	for _, l := range lines {
		if l == want {
			// What the client read to prove it (lookups, partial tiles)
			// is verified now; hand it on, like the cache files.
			if c.ops.onCache != nil {
				for _, f := range pending {
					c.ops.onCache(f.name, f.data)
				}
			}
			return nil
		}
	}
	return fmt.Errorf("%s@%s%s: hash %s is not what checksum database %s records", m.Path, m.Version, ext, h1, c.ops.name)
}

type checkerOps struct {
	name, key string
	remote    func(string) ([]byte, error)
	onCache   func(string, []byte)

	mu      sync.Mutex
	config  map[string][]byte
	cache   map[string][]byte
	pending []cacheFile // remote reads since the last takePending
}

type cacheFile struct {
	name string
	data []byte
}

func (o *checkerOps) ReadRemote(path string) ([]byte, error) {
	data, err := o.remote(path)
	if err == nil {
		o.mu.Lock()
		o.pending = append(o.pending, cacheFile{o.name + path, data})
		o.mu.Unlock()
	}
	return data, err
}

func (o *checkerOps) takePending() []cacheFile {
	o.mu.Lock()
	defer o.mu.Unlock()
	p := o.pending
	o.pending = nil
	return p
}

func (o *checkerOps) ReadConfig(file string) ([]byte, error) {
	if file == "key" {
		return []byte(o.key), nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.config[file], nil // an empty latest is a fresh client
}

func (o *checkerOps) WriteConfig(file string, old, new []byte) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !bytes.Equal(o.config[file], old) {
		return sumdb.ErrWriteConflict
	}
	o.config[file] = new
	return nil
}

func (o *checkerOps) ReadCache(file string) ([]byte, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if d, ok := o.cache[file]; ok {
		return d, nil
	}
	return nil, fs.ErrNotExist
}

func (o *checkerOps) WriteCache(file string, data []byte) {
	o.mu.Lock()
	o.cache[file] = data
	o.mu.Unlock()
	if o.onCache != nil {
		o.onCache(file, data)
	}
}

func (o *checkerOps) Log(string) {}

func (o *checkerOps) SecurityError(msg string) {
	fmt.Fprintln(os.Stderr, "checksum database security error:", msg)
}

// bundleRemote serves database paths from a bundle's staged files.
func bundleRemote(name string, local map[string]string) func(string) ([]byte, error) {
	return func(p string) ([]byte, error) {
		f, ok := local["modules/sumdb/"+name+p]
		if !ok {
			return nil, fmt.Errorf("%s%s: not in the bundle: %w", name, p, fs.ErrNotExist)
		}
		return os.ReadFile(f)
	}
}

// verifyAgainstSumDB checks every .mod and .zip of m whose lookup the
// bundle carries against the database, offline. It returns how many it
// proved.
func verifyAgainstSumDB(gosumdb string, m *Manifest, local map[string]string) (int, error) {
	var c *Checker
	c, err := NewChecker(gosumdb, func(p string) ([]byte, error) { return bundleRemote(c.Name(), local)(p) }, nil)
	if err != nil {
		return 0, err
	}
	name := c.Name()
	n := 0
	for _, e := range m.Entries {
		mv, ext, ok := moduleOf(e.Name)
		if !ok {
			continue
		}
		ep, _ := module.EscapePath(mv.Path)
		ev, _ := module.EscapeVersion(mv.Version)
		if _, ok := local["modules/sumdb/"+name+"/lookup/"+ep+"@"+ev]; !ok {
			continue // not covered by the database (a private module)
		}
		if err := c.Check(mv, ext, e.H1); err != nil {
			return n, fmt.Errorf("%w: %s: %v", ErrRejected, e.Name, err)
		}
		n++
	}
	return n, nil
}
