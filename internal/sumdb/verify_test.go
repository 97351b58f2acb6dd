package sumdb

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/modgate/modgate/internal/storage"
	"github.com/modgate/modgate/internal/upstream"
)

// verifierEnv is a Verifier wired to a test database.
type verifierEnv struct {
	db       *testDB
	mods     []*testModule
	source   *httpSource
	store    storage.Store
	stateDir string
	logs     *logBuffer
	events   *atomic.Int64
	v        *Verifier
}

// newVerifierEnv starts a database knowing the test modules and a Verifier
// for it; record fixes the database's record order (see newTestDB).
func newVerifierEnv(t *testing.T, record ...string) *verifierEnv {
	t.Helper()
	skey, vkey := newTestKey(t)
	mods := testModules(t)
	db := newTestDB(t, skey, vkey, mods, record...)
	e := &verifierEnv{db: db, mods: mods, source: newHTTPSource(db.url), store: storage.NewMemory(), stateDir: t.TempDir()}
	e.v, e.logs, e.events = e.newVerifier(t, e.stateDir, e.store, e.source)
	return e
}

// newVerifier returns another Verifier for the env's database.
func (e *verifierEnv) newVerifier(t *testing.T, stateDir string, store storage.Store, source upstream.Source) (*Verifier, *logBuffer, *atomic.Int64) {
	t.Helper()
	logger, logs := newTestLogger()
	events := new(atomic.Int64)
	v, err := NewVerifier(VerifierConfig{
		DB:              DB{Name: testDBName, Key: e.db.vkey},
		NoSumDB:         []string{"example.com/private", "*.corp.example"},
		Source:          source,
		Store:           store,
		StateDir:        stateDir,
		Logger:          logger,
		OnSecurityEvent: func(string) { events.Add(1) },
	})
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v, logs, events
}

// zipFile writes data to a file and returns its name.
func zipFile(t *testing.T, data []byte) string {
	t.Helper()
	name := filepath.Join(t.TempDir(), "x.zip")
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return name
}

func TestVerifierMatch(t *testing.T) {
	e := newVerifierEnv(t)
	for _, m := range e.mods {
		t.Run(m.path+"@"+m.version, func(t *testing.T) {
			if err := e.v.CheckMod(t.Context(), m.path, m.version, m.mod); err != nil {
				t.Errorf("CheckMod(%s, %s) = %v; want nil", m.path, m.version, err)
			}
			if err := e.v.CheckZip(t.Context(), m.path, m.version, zipFile(t, m.zip)); err != nil {
				t.Errorf("CheckZip(%s, %s) = %v; want nil", m.path, m.version, err)
			}
		})
	}
	// The .mod and .zip checks of one version share one lookup.
	for _, p := range []string{
		"/sumdb/sum.test/lookup/example.com/m@v1.0.0",
		"/sumdb/sum.test/lookup/example.com/!upper@v1.0.0",
		"/sumdb/sum.test/lookup/example.com/legacy@v2.0.0+incompatible",
	} {
		if got := e.db.count(p); got != 1 {
			t.Errorf("upstream requests for %s = %d; want 1", p, got)
		}
	}
	if n := e.events.Load(); n != 0 {
		t.Errorf("security events = %d; want 0", n)
	}
}

func TestVerifierMismatch(t *testing.T) {
	e := newVerifierEnv(t)
	m := e.mods[0]
	other := e.mods[1] // same module path, different content

	tests := []struct {
		name  string
		check func(ctx context.Context) error
		file  string
	}{
		{
			name: "zip",
			check: func(ctx context.Context) error {
				return e.v.CheckZip(ctx, m.path, m.version, zipFile(t, other.zip))
			},
			file: "zip",
		},
		{
			name: "go.mod",
			check: func(ctx context.Context) error {
				return e.v.CheckMod(ctx, m.path, m.version, append(bytes.Clone(m.mod), "// tampered\n"...))
			},
			file: "go.mod",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.events.Load()
			logsBefore := len(e.logs.lines("level=ERROR"))
			err := tt.check(t.Context())
			if !errors.Is(err, ErrMismatch) {
				t.Fatalf("check tampered %s = %v; want ErrMismatch", tt.file, err)
			}
			want := tt.file + " has hash "
			wantDB := " but checksum database sum.test says "
			if msg := err.Error(); !strings.HasPrefix(msg, "example.com/m@v1.0.0: "+want) || !strings.Contains(msg, wantDB) ||
				!strings.HasSuffix(msg, ": refusing to store or serve it (the upstream may be compromised)") {
				t.Errorf("error = %q; want %q...%q...refusing to store or serve it", msg, want, wantDB)
			}
			if errors.Is(err, ErrNotInDB) || errors.Is(err, fs.ErrNotExist) || errors.Is(err, upstream.ErrUnavailable) {
				t.Errorf("error %v also matches another class", err)
			}
			if n := e.events.Load() - before; n != 1 {
				t.Errorf("OnSecurityEvent calls = %d; want 1", n)
			}
			errLines := e.logs.lines("level=ERROR")[logsBefore:]
			if len(errLines) != 1 || !strings.Contains(errLines[0], "module=example.com/m") ||
				!strings.Contains(errLines[0], "version=v1.0.0") || !strings.Contains(errLines[0], "got=") ||
				!strings.Contains(errLines[0], "want=") {
				t.Errorf("error log lines = %q; want one with module, version, got, want", errLines)
			}
		})
	}
}

func TestVerifierNotInDB(t *testing.T) {
	e := newVerifierEnv(t)
	err := e.v.CheckMod(t.Context(), "example.com/m", "v1.9.9", []byte("module example.com/m\n"))
	if !errors.Is(err, ErrNotInDB) {
		t.Fatalf("CheckMod(unknown version) = %v; want ErrNotInDB", err)
	}
	for _, want := range []string{"example.com/m@v1.9.9: not found in checksum database sum.test", "sumdb.nosumdb"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error = %q; want it to contain %q", err, want)
		}
	}
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, upstream.ErrUnavailable) {
		t.Errorf("error %v matches fs.ErrNotExist or ErrUnavailable; want only ErrNotInDB", err)
	}
	// The answer is not remembered: once the database knows the version,
	// the same Verifier verifies it.
	m := newTestModule(t, "example.com/m", "v1.9.9", map[string]string{"go.mod": "module example.com/m\n"})
	e.db.mu.Lock()
	e.db.mods["example.com/m@v1.9.9"] = m
	e.db.mu.Unlock()
	if err := e.v.CheckMod(t.Context(), m.path, m.version, m.mod); err != nil {
		t.Errorf("CheckMod after the version was published = %v; want nil", err)
	}
}

func TestVerifierCovers(t *testing.T) {
	e := newVerifierEnv(t)
	off, err := NewVerifier(VerifierConfig{})
	if err != nil {
		t.Fatalf("NewVerifier(off): %v", err)
	}
	tests := []struct {
		name string
		v    *Verifier
		path string
		want bool
	}{
		{name: "public", v: e.v, path: "example.com/m", want: true},
		{name: "private prefix", v: e.v, path: "example.com/private", want: false},
		{name: "private sub", v: e.v, path: "example.com/private/sub", want: false},
		{name: "not an element prefix", v: e.v, path: "example.com/privatex", want: true},
		{name: "glob", v: e.v, path: "git.corp.example/team/lib", want: false},
		// Looking a case variant up would leak the private name.
		{name: "private in another case", v: e.v, path: "example.com/Private/sub", want: false},
		{name: "glob in another case", v: e.v, path: "git.corp.example/TEAM/lib", want: false},
		{name: "off", v: off, path: "example.com/m", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.v.Covers(tt.path); got != tt.want {
				t.Errorf("Covers(%q) = %v; want %v", tt.path, got, tt.want)
			}
			if tt.want {
				return
			}
			// Uncovered modules are not checked at all: not even the file is read.
			before := e.db.total()
			if err := tt.v.CheckZip(t.Context(), tt.path, "v1.0.0", "/nonexistent/x.zip"); err != nil {
				t.Errorf("CheckZip(%q) = %v; want nil", tt.path, err)
			}
			if err := tt.v.CheckMod(t.Context(), tt.path, "v1.0.0", []byte("garbage")); err != nil {
				t.Errorf("CheckMod(%q) = %v; want nil", tt.path, err)
			}
			if n := e.db.total() - before; n != 0 {
				t.Errorf("database requests = %d; want 0", n)
			}
		})
	}
}

// TestVerifierUnavailable checks that failures to reach the database are
// classified and not remembered: the same Verifier succeeds once it is back.
func TestVerifierUnavailable(t *testing.T) {
	tests := []struct {
		name string
		fail error
	}{
		{name: "unavailable", fail: upstream.ErrUnavailable},
		{name: "timeout", fail: upstream.ErrTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newVerifierEnv(t)
			m := e.mods[0]
			e.source.setFail(tt.fail)
			err := e.v.CheckMod(t.Context(), m.path, m.version, m.mod)
			if !errors.Is(err, tt.fail) {
				t.Fatalf("CheckMod with database down = %v; want %v", err, tt.fail)
			}
			if errors.Is(err, ErrNotInDB) || errors.Is(err, ErrMismatch) || errors.Is(err, fs.ErrNotExist) {
				t.Errorf("error %v matches another class", err)
			}
			if !strings.HasPrefix(err.Error(), "example.com/m@v1.0.0: checksum database sum.test: ") {
				t.Errorf("error = %q; want it to name the module and the database", err)
			}
			e.source.setFail(nil)
			if err := e.v.CheckMod(t.Context(), m.path, m.version, m.mod); err != nil {
				t.Fatalf("CheckMod once the database is back = %v; want nil", err)
			}
			if err := e.v.CheckZip(t.Context(), m.path, m.version, zipFile(t, m.zip)); err != nil {
				t.Fatalf("CheckZip once the database is back = %v; want nil", err)
			}
		})
	}
}

// TestVerifierTileUnavailable makes the lookup succeed but tile fetches fail.
func TestVerifierTileUnavailable(t *testing.T) {
	e := newVerifierEnv(t)
	m := e.mods[0]
	var failTiles atomic.Bool
	failTiles.Store(true)
	src := funcSource(func(ctx context.Context, p string) ([]byte, error) {
		if failTiles.Load() && strings.Contains(p, "/tile/") {
			return nil, upstream.ErrTimeout
		}
		resp, err := e.source.Fetch(ctx, p)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		return io.ReadAll(resp.Body)
	})
	v, _, _ := e.newVerifier(t, t.TempDir(), storage.NewMemory(), src)
	err := v.CheckMod(t.Context(), m.path, m.version, m.mod)
	if !errors.Is(err, upstream.ErrTimeout) {
		t.Fatalf("CheckMod with tiles timing out = %v; want ErrTimeout", err)
	}
	failTiles.Store(false)
	if err := v.CheckMod(t.Context(), m.path, m.version, m.mod); err != nil {
		t.Fatalf("CheckMod once tiles are back = %v; want nil", err)
	}
}

// TestVerifierFork checks that the verified tree head survives a restart
// and that a database with a different history under the same key is
// refused as a security error.
func TestVerifierFork(t *testing.T) {
	e := newVerifierEnv(t)
	for _, m := range e.mods[:2] {
		if err := e.v.CheckMod(t.Context(), m.path, m.version, m.mod); err != nil {
			t.Fatalf("CheckMod(%s@%s) = %v", m.path, m.version, err)
		}
	}
	state, err := os.ReadFile(filepath.Join(e.stateDir, testDBName, "latest"))
	if err != nil {
		t.Fatalf("reading persisted tree head: %v", err)
	}
	verifier, err := note.NewVerifier(e.db.vkey)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(state, note.VerifierList(verifier))
	if err != nil {
		t.Fatalf("persisted tree head does not verify: %v\n%s", err, state)
	}
	tree, err := tlog.ParseTree([]byte(n.Text))
	if err != nil || tree.N != 2 {
		t.Fatalf("persisted tree = %+v, %v; want size 2", tree, err)
	}
	// The partial tile proving that head is kept in the state, and in the
	// Store for clients that read it as a file:// GOPROXY, which also
	// find the database marked supported there.
	if _, err := os.Stat(filepath.Join(e.stateDir, testDBName, "partial", "0")); err != nil {
		t.Errorf("partial tile not kept in the state directory: %v", err)
	}
	for _, key := range []string{"sumdb/sum.test/tile/8/0/000.p/2", "sumdb/sum.test/supported"} {
		if !storeHas(t, e.store, key) {
			t.Errorf("%s not in the Store", key)
		}
	}
	filepath.WalkDir(e.stateDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".") {
			t.Errorf("temporary file %s left in the state directory", p)
		}
		return err
	})

	// A restarted Verifier against the same database carries on.
	again, _, events := e.newVerifier(t, e.stateDir, storage.NewMemory(), e.source)
	m := e.mods[2]
	if err := again.CheckMod(t.Context(), m.path, m.version, m.mod); err != nil {
		t.Fatalf("restarted CheckMod(%s@%s) = %v; want nil", m.path, m.version, err)
	}
	if events.Load() != 0 {
		t.Errorf("security events on the honest database = %d; want 0", events.Load())
	}

	// The same key, another history: the records are in a different order.
	skey := e.db.skey
	forked := newTestDB(t, skey, e.db.vkey, e.mods,
		"example.com/legacy@v2.0.0+incompatible", "example.com/m@v1.1.0", "example.com/m@v1.0.0", "example.com/Upper@v1.0.0")
	restarted, logs, events := e.newVerifier(t, e.stateDir, storage.NewMemory(), newHTTPSource(forked.url))
	m = e.mods[0]
	err = restarted.CheckMod(t.Context(), m.path, m.version, m.mod)
	if !errors.Is(err, ErrSecurity) {
		t.Fatalf("CheckMod against a forked database = %v; want ErrSecurity", err)
	}
	if errors.Is(err, upstream.ErrUnavailable) || errors.Is(err, ErrMismatch) {
		t.Errorf("error %v matches another class", err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error %q spans lines; want one line", err)
	}
	if events.Load() == 0 {
		t.Errorf("OnSecurityEvent not called for a forked database")
	}
	if lines := logs.lines("level=ERROR", "misbehaviour"); len(lines) == 0 {
		t.Errorf("no error log for the forked database; logs:\n%s", logs)
	}
	// It keeps failing: the client that saw the fork is kept.
	if err := restarted.CheckZip(t.Context(), m.path, m.version, zipFile(t, m.zip)); !errors.Is(err, ErrSecurity) {
		t.Errorf("second check against a forked database = %v; want ErrSecurity", err)
	}
}

// TestVerifierSharedCache checks that verified lookups and full tiles land
// in the Store under the keys the Handler serves, and are used from there.
func TestVerifierSharedCache(t *testing.T) {
	// The first module's record is in full tile 8/0/000.
	e := newVerifierEnv(t, append([]string{"example.com/m@v1.0.0"}, fillers(300)...)...)
	m := e.mods[0]
	if err := e.v.CheckMod(t.Context(), m.path, m.version, m.mod); err != nil {
		t.Fatalf("CheckMod = %v", err)
	}
	for _, key := range []string{
		"sumdb/sum.test/lookup/example.com/m@v1.0.0",
		"sumdb/sum.test/tile/8/0/000",
	} {
		if !storeHas(t, e.store, key) {
			t.Errorf("store has no %s after a verified lookup", key)
		}
	}

	// Another Verifier on the same store needs no lookup request.
	before := e.db.count("/sumdb/sum.test/lookup/example.com/m@v1.0.0")
	v2, _, _ := e.newVerifier(t, t.TempDir(), e.store, e.source)
	if err := v2.CheckZip(t.Context(), m.path, m.version, zipFile(t, m.zip)); err != nil {
		t.Fatalf("CheckZip from the cache = %v", err)
	}
	if got := e.db.count("/sumdb/sum.test/lookup/example.com/m@v1.0.0"); got != before {
		t.Errorf("lookup requests = %d; want %d (served from the store)", got, before)
	}
	if got := e.db.count("/sumdb/sum.test/tile/8/0/000"); got != 1 {
		t.Errorf("requests for the full tile = %d; want 1", got)
	}

	// The Handler serves what the Verifier stored without asking upstream.
	h := NewHandler(HandlerConfig{DBs: []string{testDBName}, Source: e.source, Store: e.store})
	fetches := e.source.fetches.Load()
	for _, p := range []string{"lookup/example.com/m@v1.0.0", "tile/8/0/000"} {
		rec := serve(t, h, "GET", "/sumdb/sum.test/"+p)
		if rec.Code != 200 {
			t.Errorf("GET %s = %d %q; want 200", p, rec.Code, rec.Body)
		}
	}
	if got := e.source.fetches.Load(); got != fetches {
		t.Errorf("Handler made %d upstream fetches; want 0", got-fetches)
	}
}

// TestVerifierHealsCache checks that a cache entry that does not verify
// (the Handler stores what upstream sends) is replaced with verified data.
func TestVerifierHealsCache(t *testing.T) {
	e := newVerifierEnv(t)
	m := e.mods[0]
	key := "sumdb/sum.test/lookup/example.com/m@v1.0.0"
	if err := e.store.Put(t.Context(), key, strings.NewReader("garbage\n")); err != nil {
		t.Fatal(err)
	}
	if err := e.v.CheckMod(t.Context(), m.path, m.version, m.mod); err != nil {
		t.Fatalf("CheckMod with a corrupt cache entry = %v; want nil", err)
	}
	rc, err := e.store.Get(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(rc)
	rc.Close()
	if !strings.Contains(string(data), m.path+" "+m.version+" "+m.zipHash) {
		t.Errorf("cache entry after healing = %q; want the database's record", data)
	}
	if e.events.Load() != 0 {
		t.Errorf("security events = %d; want 0 (a bad cache entry is not the database's fault)", e.events.Load())
	}
}

// TestVerifierBadAnswer checks that a database answer that does not verify
// is reported as unavailable and not as anything the caller could trust.
func TestVerifierBadAnswer(t *testing.T) {
	e := newVerifierEnv(t)
	m := e.mods[0]
	src := funcSource(func(ctx context.Context, p string) ([]byte, error) {
		return []byte("this is not a checksum database\n"), nil
	})
	v, _, events := e.newVerifier(t, t.TempDir(), storage.NewMemory(), src)
	err := v.CheckMod(t.Context(), m.path, m.version, m.mod)
	if !errors.Is(err, upstream.ErrUnavailable) {
		t.Fatalf("CheckMod with a garbage answer = %v; want ErrUnavailable", err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error %q spans lines", err)
	}
	if events.Load() != 0 {
		t.Errorf("security events = %d; want 0", events.Load())
	}
}

func TestVerifierReplacesClient(t *testing.T) {
	e := newVerifierEnv(t)
	e.v.maxLookups = 2
	first := e.v.cur.Load()
	m := e.mods[0]
	for range 2 {
		if err := e.v.CheckMod(t.Context(), m.path, m.version, m.mod); err != nil {
			t.Fatalf("CheckMod = %v", err)
		}
	}
	if e.v.cur.Load() == first {
		t.Errorf("client not replaced after %d lookups", e.v.maxLookups)
	}
	if err := e.v.CheckMod(t.Context(), m.path, m.version, m.mod); err != nil {
		t.Fatalf("CheckMod on the new client = %v", err)
	}
}

func TestVerifierConcurrent(t *testing.T) {
	e := newVerifierEnv(t)
	var wg sync.WaitGroup
	for range 8 {
		for _, m := range e.mods {
			wg.Go(func() {
				if err := e.v.CheckMod(t.Context(), m.path, m.version, m.mod); err != nil {
					t.Errorf("CheckMod(%s@%s) = %v", m.path, m.version, err)
				}
			})
		}
	}
	wg.Wait()
	if got := e.db.count("/sumdb/sum.test/lookup/example.com/m@v1.0.0"); got != 1 {
		t.Errorf("lookup requests = %d; want 1", got)
	}
}

func TestVerifierCanceled(t *testing.T) {
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	src := funcSource(func(ctx context.Context, p string) ([]byte, error) {
		<-block
		return nil, upstream.ErrUnavailable
	})
	_, vkey := newTestKey(t)
	v, err := NewVerifier(VerifierConfig{DB: DB{Name: testDBName, Key: vkey}, Source: src})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := v.CheckMod(ctx, "example.com/m", "v1.0.0", nil); !errors.Is(err, context.Canceled) {
		t.Errorf("CheckMod(canceled) = %v; want context.Canceled", err)
	}
}

func TestNewVerifierErrors(t *testing.T) {
	_, vkey := newTestKey(t)
	src := funcSource(func(context.Context, string) ([]byte, error) { return nil, fs.ErrNotExist })
	tests := []struct {
		name string
		cfg  VerifierConfig
		want string
	}{
		{name: "bad key", cfg: VerifierConfig{DB: DB{Name: "sum.test", Key: "sum.test+x"}, Source: src}, want: "invalid verifier key"},
		{name: "name differs from key", cfg: VerifierConfig{DB: DB{Name: "other.test", Key: vkey}, Source: src}, want: `verifier key is for "sum.test"`},
		{name: "no source", cfg: VerifierConfig{DB: DB{Name: "sum.test", Key: vkey}}, want: "no upstream source"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewVerifier(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewVerifier(%+v) = %v; want error containing %q", tt.cfg.DB, err, tt.want)
			}
		})
	}
}

// TestPrefetch: Prefetch starts the lookup before the file is checked, and
// the later checks of the same version reuse it.
func TestPrefetch(t *testing.T) {
	e := newVerifierEnv(t)
	m := e.mods[0]
	lookup := "/sumdb/sum.test/lookup/example.com/m@v1.0.0"
	e.v.Prefetch(m.path, m.version)
	deadline := time.Now().Add(10 * time.Second)
	for e.db.count(lookup) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("Prefetch did not look the version up")
		}
		time.Sleep(time.Millisecond)
	}
	if err := e.v.CheckMod(t.Context(), m.path, m.version, m.mod); err != nil {
		t.Fatalf("CheckMod after Prefetch: %v", err)
	}
	if err := e.v.CheckZip(t.Context(), m.path, m.version, zipFile(t, m.zip)); err != nil {
		t.Fatalf("CheckZip after Prefetch: %v", err)
	}
	if n := e.db.count(lookup); n != 1 {
		t.Errorf("lookups = %d, want 1 (the checks must reuse the prefetched record)", n)
	}
	// Not covered: no lookup at all.
	e.v.Prefetch("example.com/private/x", "v1.0.0")
	e.v.Prefetch(m.path, "not-a-version")
	time.Sleep(20 * time.Millisecond)
	if n := e.db.total(); n > 0 && e.db.count("/sumdb/sum.test/lookup/example.com/private/x@v1.0.0") != 0 {
		t.Error("Prefetch looked up a module the database does not cover")
	}
}
