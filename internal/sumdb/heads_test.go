package sumdb

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/modgate/modgate/internal/storage"
	"github.com/modgate/modgate/internal/upstream"
)

// memHeads is a HeadCopy in memory.
type memHeads struct {
	mu    sync.Mutex
	saved [][]byte
}

func (h *memHeads) SaveHead(db string, msg []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.saved = append(h.saved, bytes.Clone(msg))
}

func (h *memHeads) LastHead(db string) ([]byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.saved) == 0 {
		return nil, nil
	}
	return h.saved[len(h.saved)-1], nil
}

func (h *memHeads) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.saved)
}

// newHeadsVerifier is e.newVerifier with a HeadCopy and a clock.
func (e *verifierEnv) newHeadsVerifier(t *testing.T, stateDir string, store storage.Store, source upstream.Source, heads HeadCopy, now func() time.Time) (*Verifier, *logBuffer, *atomic.Int64) {
	t.Helper()
	logger, logs := newTestLogger()
	events := new(atomic.Int64)
	v, err := NewVerifier(VerifierConfig{
		DB:              DB{Name: testDBName, Key: e.db.vkey},
		Source:          source,
		Store:           store,
		StateDir:        stateDir,
		Logger:          logger,
		OnSecurityEvent: func(string) { events.Add(1) },
		Heads:           heads,
		Now:             now,
	})
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	t.Cleanup(func() { v.Close() })
	return v, logs, events
}

// treeSize returns the size of the signed tree head msg.
func treeSize(t *testing.T, vkey string, msg []byte) int64 {
	t.Helper()
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(msg, note.VerifierList(verifier))
	if err != nil {
		t.Fatalf("saved head does not verify: %v\n%s", err, msg)
	}
	tree, err := tlog.ParseTree([]byte(n.Text))
	if err != nil {
		t.Fatal(err)
	}
	return tree.N
}

// TestVerifierDeletedStateFork deletes the tree-head file between two
// runs and restarts against a forked database: the head saved in the copy
// (the audit log, in the server) catches the fork; without a copy the fork
// would be trusted afresh. A database that only grew is still accepted.
func TestVerifierDeletedStateFork(t *testing.T) {
	e := newVerifierEnv(t)
	heads := new(memHeads)
	clk := &fakeClock{now: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)}
	v, _, _ := e.newHeadsVerifier(t, e.stateDir, e.store, e.source, heads, clk.Now)
	for _, m := range e.mods[:2] {
		if err := v.CheckMod(t.Context(), m.path, m.version, m.mod); err != nil {
			t.Fatalf("CheckMod(%s@%s) = %v", m.path, m.version, err)
		}
	}
	// The first head is saved at once, the second within the interval
	// waits for Close.
	if heads.count() != 1 {
		t.Errorf("heads saved before Close = %d, want 1 (at most one per interval)", heads.count())
	}
	v.Close()
	last, _ := heads.LastHead(testDBName)
	if heads.count() != 2 || treeSize(t, e.db.vkey, last) != 2 {
		t.Fatalf("heads saved after Close = %d, last of size %d; want 2, size 2", heads.count(), treeSize(t, e.db.vkey, last))
	}

	forks := []struct {
		name   string
		record []string // the fork's records, in order
		check  *testModule
		all    bool // the whole state directory is deleted, not only the tree head
	}{
		// Two records as well, another tree: same size, other hash.
		{"same size", []string{"example.com/Upper@v1.0.0", "example.com/legacy@v2.0.0+incompatible"}, e.mods[2], false},
		// Larger, with another history below the verified size.
		{"larger", []string{"example.com/m@v1.1.0", "example.com/Upper@v1.0.0", "example.com/m@v1.0.0"}, e.mods[3], false},
		// Without the verified partial tiles, the fork cannot prove
		// itself consistent with the recovered head either.
		{"same size, whole state deleted", []string{"example.com/Upper@v1.0.0", "example.com/legacy@v2.0.0+incompatible"}, e.mods[2], true},
		{"larger, whole state deleted", []string{"example.com/m@v1.1.0", "example.com/Upper@v1.0.0", "example.com/m@v1.0.0"}, e.mods[3], true},
	}
	for _, fork := range forks {
		t.Run(fork.name, func(t *testing.T) {
			forked := newTestDB(t, e.db.skey, e.db.vkey, e.mods, fork.record...)
			run := func(heads HeadCopy) (error, *logBuffer, *atomic.Int64) {
				// The tree-head file is deleted; the verified partial
				// tiles stay, and so does the cache (a copy: what the
				// fork serves must not reach the honest run below).
				stateDir := copyDir(t, e.stateDir)
				if err := os.Remove(filepath.Join(stateDir, testDBName, "latest")); err != nil {
					t.Fatal(err)
				}
				if fork.all {
					stateDir = t.TempDir()
				}
				v, logs, events := e.newHeadsVerifier(t, stateDir, copyStore(t, e.store), newHTTPSource(forked.url), heads, clk.Now)
				return v.CheckMod(t.Context(), fork.check.path, fork.check.version, fork.check.mod), logs, events
			}
			// Without the copy, today's behaviour: the fork is trusted.
			if err, _, _ := run(nil); err != nil {
				t.Fatalf("without a saved head, CheckMod against the fork = %v; this test expects the fork to be trusted then", err)
			}
			err, logs, events := run(heads)
			if !errors.Is(err, ErrSecurity) {
				t.Fatalf("CheckMod against a fork after the state was deleted = %v; want ErrSecurity", err)
			}
			if events.Load() == 0 {
				t.Errorf("security event not reported")
			}
			if len(logs.lines("level=ERROR", "misbehaviour")) == 0 || len(logs.lines("level=WARN", "resuming from the copy in the audit log", "size=2")) == 0 {
				t.Errorf("logs lack the recovery and the error:\n%s", logs)
			}
		})
	}

	// The honest database, grown since: accepted, and the state written.
	stateDir := copyDir(t, e.stateDir)
	if err := os.Remove(filepath.Join(stateDir, testDBName, "latest")); err != nil {
		t.Fatal(err)
	}
	v2, _, events := e.newHeadsVerifier(t, stateDir, e.store, e.source, heads, clk.Now)
	m := e.mods[2]
	if err := v2.CheckMod(t.Context(), m.path, m.version, m.mod); err != nil {
		t.Fatalf("CheckMod against the grown database after the state was deleted = %v", err)
	}
	if events.Load() != 0 {
		t.Errorf("security events against the honest database = %d", events.Load())
	}
	if _, err := os.Stat(filepath.Join(stateDir, testDBName, "latest")); err != nil {
		t.Errorf("state not rewritten: %v", err)
	}
	// So is it with the whole state directory gone.
	v3, _, events := e.newHeadsVerifier(t, t.TempDir(), copyStore(t, e.store), e.source, heads, clk.Now)
	m = e.mods[3]
	if err := v3.CheckMod(t.Context(), m.path, m.version, m.mod); err != nil || events.Load() != 0 {
		t.Fatalf("CheckMod against the grown database after the state directory was deleted = %v, %d security events", err, events.Load())
	}
}

// TestVerifierHeadInterval checks that a head advancing often is saved at
// most once per interval, and the pending one once the interval passed.
func TestVerifierHeadInterval(t *testing.T) {
	e := newVerifierEnv(t)
	heads := new(memHeads)
	clk := &fakeClock{now: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)}
	v, _, _ := e.newHeadsVerifier(t, t.TempDir(), storage.NewMemory(), e.source, heads, clk.Now)
	for _, m := range e.mods[:3] {
		if err := v.CheckMod(t.Context(), m.path, m.version, m.mod); err != nil {
			t.Fatal(err)
		}
	}
	if heads.count() != 1 {
		t.Fatalf("heads saved = %d, want 1", heads.count())
	}
	clk.Advance(DefaultHeadInterval)
	m := e.mods[0]
	if err := v.CheckZip(t.Context(), m.path, m.version, zipFile(t, m.zip)); err != nil {
		t.Fatal(err)
	}
	last, _ := heads.LastHead(testDBName)
	if heads.count() != 2 || treeSize(t, e.db.vkey, last) != 3 {
		t.Errorf("after the interval: %d heads saved, the last of size %d; want 2, size 3", heads.count(), treeSize(t, e.db.vkey, last))
	}
}

// TestVerifierCrossChecksCachedTiles deletes the state with no saved copy
// at all: a new head from a forked database is still refused when it
// disagrees with a full tile cached earlier.
func TestVerifierCrossChecksCachedTiles(t *testing.T) {
	// The module's record comes before 300 fillers: full tile 8/0/000 is
	// cached while it is verified.
	record := append([]string{"example.com/m@v1.0.0"}, fillers(300)...)
	e := newVerifierEnv(t, record...)
	m := e.mods[0]
	if err := e.v.CheckMod(t.Context(), m.path, m.version, m.mod); err != nil {
		t.Fatal(err)
	}
	if !storeHas(t, e.store, "sumdb/sum.test/tile/8/0/000") {
		t.Fatal("setup: full tile not cached")
	}

	// The fork has the same records in another order.
	forkRecord := slices.Clone(record)
	slices.Reverse(forkRecord)
	forked := newTestDB(t, e.db.skey, e.db.vkey, e.mods, forkRecord...)
	v, logs, events := e.newHeadsVerifier(t, t.TempDir(), e.store, newHTTPSource(forked.url), nil, nil)
	u := e.mods[2]
	err := v.CheckMod(t.Context(), u.path, u.version, u.mod)
	if !errors.Is(err, ErrSecurity) {
		t.Fatalf("CheckMod against a fork disagreeing with the cached tiles = %v; want ErrSecurity", err)
	}
	if events.Load() != 1 || len(logs.lines("level=ERROR", "the cached tiles disagree with the tree head")) == 0 {
		t.Errorf("security events = %d, logs:\n%s", events.Load(), logs)
	}
	// And it stays refused, for cached modules too.
	if err := v.CheckMod(t.Context(), m.path, m.version, m.mod); !errors.Is(err, ErrSecurity) {
		t.Errorf("second CheckMod = %v; want ErrSecurity", err)
	}

	// A fork head planted in the copy (the audit log is not verified when
	// it is read) is refused against the same cache.
	resp, err := http.Get(forked.url + "/sumdb/" + testDBName + "/latest")
	if err != nil {
		t.Fatal(err)
	}
	forkHead, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	planted := &memHeads{saved: [][]byte{forkHead}}
	v1, logs1, events1 := e.newHeadsVerifier(t, t.TempDir(), e.store, newHTTPSource(forked.url), planted, nil)
	if err := v1.CheckMod(t.Context(), u.path, u.version, u.mod); !errors.Is(err, ErrSecurity) {
		t.Errorf("CheckMod with a forked head planted in the copy = %v; want ErrSecurity", err)
	}
	if events1.Load() != 1 || len(logs1.lines("level=ERROR", "refusing the tree head recovered from the audit log")) == 0 {
		t.Errorf("planted head: security events = %d, logs:\n%s", events1.Load(), logs1)
	}

	// The honest database, with the same cache and no state: accepted.
	v2, _, events2 := e.newHeadsVerifier(t, t.TempDir(), e.store, e.source, nil, nil)
	if err := v2.CheckMod(t.Context(), u.path, u.version, u.mod); err != nil {
		t.Fatalf("CheckMod against the honest database = %v", err)
	}
	if events2.Load() != 0 {
		t.Errorf("security events against the honest database = %d", events2.Load())
	}
}

// copyDir copies the files below dir to a new directory and returns it.
func copyDir(t *testing.T, dir string) string {
	t.Helper()
	to := t.TempDir()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(to, rel)), 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return to
}

// copyStore returns a store that reads from base and writes elsewhere: a
// copy of it for one run.
func copyStore(t *testing.T, base storage.Store) storage.Store {
	return &overlayStore{base: base, top: storage.NewMemory()}
}

type overlayStore struct {
	base storage.Store
	top  *storage.Memory
}

func (s *overlayStore) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	if rc, err := s.top.Get(ctx, name); err == nil {
		return rc, nil
	}
	return s.base.Get(ctx, name)
}

func (s *overlayStore) Put(ctx context.Context, name string, r io.Reader) error {
	return s.top.Put(ctx, name, r)
}

func (s *overlayStore) List(ctx context.Context, dir string) ([]string, error) {
	a, err := s.top.List(ctx, dir)
	if err != nil {
		return nil, err
	}
	b, err := s.base.(storage.Lister).List(ctx, dir)
	if err != nil {
		return nil, err
	}
	names := append(a, b...)
	slices.Sort(names)
	return slices.Compact(names), nil
}
