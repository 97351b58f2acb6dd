package sumdb

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/mod/module"
	xsumdb "golang.org/x/mod/sumdb"
	"golang.org/x/mod/sumdb/dirhash"
	"golang.org/x/mod/sumdb/note"
	modzip "golang.org/x/mod/zip"

	"github.com/modgate/modgate/internal/storage"
	"github.com/modgate/modgate/internal/upstream"

	"github.com/modgate/modgate/internal/testenv"
)

// testDBName is the name of every test checksum database.
const testDBName = "sum.test"

// A testModule is one module version with its real zip and hashes.
type testModule struct {
	path, version    string
	zip, mod         []byte
	zipHash, modHash string
}

// newTestModule builds path@version from files (name -> content) with
// golang.org/x/mod/zip, as the go command would.
func newTestModule(t *testing.T, path, version string, files map[string]string) *testModule {
	t.Helper()
	m := &testModule{path: path, version: version}
	var zfiles []modzip.File
	for name, content := range files {
		zfiles = append(zfiles, memZipFile{name: name, data: []byte(content)})
	}
	m.mod = []byte("module " + path + "\n")
	if mod, ok := files["go.mod"]; ok {
		m.mod = []byte(mod)
	}
	var buf bytes.Buffer
	if err := modzip.Create(&buf, module.Version{Path: path, Version: version}, zfiles); err != nil {
		t.Fatalf("zip.Create(%s@%s): %v", path, version, err)
	}
	m.zip = buf.Bytes()
	var err error
	m.zipHash, err = dirhash.HashZip(m.writeZip(t, m.zip), dirhash.Hash1)
	if err != nil {
		t.Fatalf("HashZip(%s@%s): %v", path, version, err)
	}
	m.modHash, err = dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(m.mod)), nil
	})
	if err != nil {
		t.Fatalf("Hash1(go.mod of %s@%s): %v", path, version, err)
	}
	return m
}

// writeZip writes data to a new file and returns its name.
func (m *testModule) writeZip(t *testing.T, data []byte) string {
	t.Helper()
	name := filepath.Join(t.TempDir(), "m.zip")
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return name
}

// goSum returns the module's two go.sum lines.
func (m *testModule) goSum() string {
	return fmt.Sprintf("%s %s %s\n%s %s/go.mod %s\n", m.path, m.version, m.zipHash, m.path, m.version, m.modHash)
}

// memZipFile is a zip.File held in memory.
type memZipFile struct {
	name string
	data []byte
}

func (f memZipFile) Path() string { return f.name }
func (f memZipFile) Lstat() (fs.FileInfo, error) {
	return storage.FileInfo{FileName: f.name, FileSize: int64(len(f.data))}, nil
}
func (f memZipFile) Open() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(f.data)), nil }

// testModules returns the modules the test databases know.
func testModules(t *testing.T) []*testModule {
	return []*testModule{
		newTestModule(t, "example.com/m", "v1.0.0", map[string]string{
			"go.mod": "module example.com/m\n\ngo 1.21\n",
			"m.go":   "package m\n",
		}),
		newTestModule(t, "example.com/m", "v1.1.0", map[string]string{
			"go.mod": "module example.com/m\n\ngo 1.22\n",
			"m.go":   "package m\n\nfunc New() {}\n",
		}),
		newTestModule(t, "example.com/Upper", "v1.0.0", map[string]string{
			"go.mod": "module example.com/Upper\n",
			"u.go":   "package upper\n",
		}),
		newTestModule(t, "example.com/legacy", "v2.0.0+incompatible", map[string]string{
			"l.go": "package legacy\n",
		}),
	}
}

// A testDB is a checksum database served over HTTP at
// {URL}/sumdb/sum.test/..., the way a proxy that supports it serves it.
type testDB struct {
	skey, vkey string
	server     *xsumdb.TestServer
	url        string

	mu       sync.Mutex
	mods     map[string]*testModule // by path@version
	requests map[string]int         // by URL path
}

// newTestKey returns a new signer and verifier key for sum.test.
func newTestKey(t *testing.T) (skey, vkey string) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, testDBName)
	if err != nil {
		t.Fatal(err)
	}
	return skey, vkey
}

// newTestDB starts a database signed with skey that knows mods. Its records
// are created in the order of the first lookup of each version; record
// fixes that order up front (fillers are synthetic modules).
func newTestDB(t *testing.T, skey, vkey string, mods []*testModule, record ...string) *testDB {
	t.Helper()
	db := &testDB{skey: skey, vkey: vkey, mods: make(map[string]*testModule), requests: make(map[string]int)}
	for _, m := range mods {
		db.mods[m.path+"@"+m.version] = m
	}
	db.server = xsumdb.NewTestServer(skey, db.goSum)
	for _, mv := range record {
		p, v, _ := strings.Cut(mv, "@")
		if _, err := db.server.Lookup(t.Context(), module.Version{Path: p, Version: v}); err != nil {
			t.Fatalf("recording %s in test database: %v", mv, err)
		}
	}
	handler := xsumdb.NewServer(db.server)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		db.mu.Lock()
		db.requests[r.URL.Path]++
		db.mu.Unlock()
		rest, ok := strings.CutPrefix(r.URL.Path, "/sumdb/"+testDBName)
		if !ok {
			http.NotFound(w, r)
			return
		}
		if rest == "/supported" {
			return
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path = rest
		handler.ServeHTTP(w, r2)
	}))
	t.Cleanup(srv.Close)
	db.url = srv.URL
	return db
}

// goSum is the TestServer's callback: the go.sum lines of a known module
// version, made-up lines for example.com/filler/..., or fs.ErrNotExist.
func (db *testDB) goSum(path, vers string) ([]byte, error) {
	if strings.HasPrefix(path, "example.com/filler/") {
		h := sha256.Sum256([]byte(path + "@" + vers))
		line := "h1:" + base64.StdEncoding.EncodeToString(h[:])
		return []byte(fmt.Sprintf("%s %s %s\n%s %s/go.mod %s\n", path, vers, line, path, vers, line)), nil
	}
	db.mu.Lock()
	m, ok := db.mods[path+"@"+vers]
	db.mu.Unlock()
	if !ok {
		// The sumdb server recognises not-found errors with os.IsNotExist,
		// which does not unwrap %w.
		return nil, &fs.PathError{Op: "lookup", Path: path + "@" + vers, Err: fs.ErrNotExist}
	}
	return []byte(m.goSum()), nil
}

// count returns how many requests the database answered for URL path p.
func (db *testDB) count(p string) int {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.requests[p]
}

// total returns how many requests the database answered.
func (db *testDB) total() int {
	db.mu.Lock()
	defer db.mu.Unlock()
	n := 0
	for _, c := range db.requests {
		n += c
	}
	return n
}

// fillers returns n filler module versions for newTestDB's record list.
func fillers(n int) []string {
	var list []string
	for i := range n {
		list = append(list, fmt.Sprintf("example.com/filler/f%d@v1.0.0", i))
	}
	return list
}

// httpSource is a minimal upstream.Source that GETs {base}/{path}, mapping
// 404/410 to fs.ErrNotExist and everything else to the upstream sentinels.
// fail, when set, makes every fetch fail with that error without asking.
type httpSource struct {
	base    string
	fail    atomic.Pointer[error]
	fetches atomic.Int64
}

func newHTTPSource(base string) *httpSource { return &httpSource{base: base} }

func (s *httpSource) String() string { return "test-upstream" }

func (s *httpSource) setFail(err error) {
	if err == nil {
		s.fail.Store(nil)
		return
	}
	s.fail.Store(&err)
}

func (s *httpSource) Fetch(ctx context.Context, p string) (*upstream.Response, error) {
	s.fetches.Add(1)
	if e := s.fail.Load(); e != nil {
		return nil, fmt.Errorf("fetching %s from test-upstream: %w", p, *e)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/"+p, nil)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w: %v", p, upstream.ErrUnavailable, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("fetching %s: %w: %v", p, upstream.ErrTimeout, err)
		}
		return nil, fmt.Errorf("fetching %s: %w: %v", p, upstream.ErrUnavailable, err)
	}
	if resp.StatusCode == http.StatusOK {
		return &upstream.Response{Body: resp.Body, Size: resp.ContentLength, Upstream: s.String()}, nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1000))
	resp.Body.Close()
	reason := strings.TrimSpace(string(body))
	if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone {
		return nil, fmt.Errorf("fetching %s: %s: %w", p, reason, fs.ErrNotExist)
	}
	return nil, fmt.Errorf("fetching %s: %w: status %d: %s", p, upstream.ErrUnavailable, resp.StatusCode, reason)
}

// funcSource is an upstream.Source answering with a function.
type funcSource func(ctx context.Context, p string) ([]byte, error)

func (f funcSource) String() string { return "func-upstream" }

func (f funcSource) Fetch(ctx context.Context, p string) (*upstream.Response, error) {
	data, err := f(ctx, p)
	if err != nil {
		return nil, err
	}
	return &upstream.Response{Body: io.NopCloser(bytes.NewReader(data)), Size: int64(len(data)), Upstream: f.String()}, nil
}

// logBuffer collects log output for assertions.
type logBuffer struct{ testenv.LogBuffer }

// lines returns the log lines that contain all of subs.
func (b *logBuffer) lines(subs ...string) []string {
	var out []string
	for line := range strings.SplitSeq(b.String(), "\n") {
		ok := line != ""
		for _, s := range subs {
			ok = ok && strings.Contains(line, s)
		}
		if ok {
			out = append(out, line)
		}
	}
	return out
}

func newTestLogger() (*slog.Logger, *logBuffer) {
	buf := new(logBuffer)
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// storeHas reports whether key is in store.
func storeHas(t *testing.T, store storage.Store, key string) bool {
	t.Helper()
	rc, err := store.Get(t.Context(), key)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Get(%q): %v", key, err)
		}
		return false
	}
	rc.Close()
	return true
}

// fakeClock is a settable clock for TTL tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
