package mirror

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/mod/module"
	modzip "golang.org/x/mod/zip"

	"github.com/modgate/modgate/internal/storage"
	"github.com/modgate/modgate/internal/testenv"
	"github.com/modgate/modgate/internal/upstream"
)

// fakeSource serves fixed files by protocol path and counts requests.
type fakeSource struct {
	mu      sync.Mutex
	files   map[string][]byte
	errs    map[string]error
	down    bool
	gate    chan struct{} // when non-nil, Fetch waits for it (or ctx)
	calls   map[string]int
	started chan string
}

func newFakeSource() *fakeSource {
	return &fakeSource{files: map[string][]byte{}, errs: map[string]error{}, calls: map[string]int{}}
}

func (s *fakeSource) String() string { return "fake" }

func (s *fakeSource) Fetch(ctx context.Context, path string) (*upstream.Response, error) {
	s.mu.Lock()
	s.calls[path]++
	gate, down, data, ok, err := s.gate, s.down, s.files[path], false, s.errs[path]
	_, ok = s.files[path]
	started := s.started
	s.mu.Unlock()
	if started != nil {
		started <- path
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	switch {
	case down:
		return nil, fmt.Errorf("fake down: %w", upstream.ErrUnavailable)
	case err != nil:
		return nil, err
	case !ok:
		return nil, fmt.Errorf("fake: %s: %w", path, fs.ErrNotExist)
	}
	return &upstream.Response{Body: io.NopCloser(bytes.NewReader(data)), Size: int64(len(data)), Upstream: "fake"}, nil
}

func (s *fakeSource) set(path string, data []byte) {
	s.mu.Lock()
	s.files[path] = data
	s.mu.Unlock()
}

func (s *fakeSource) setDown(down bool) {
	s.mu.Lock()
	s.down = down
	s.mu.Unlock()
}

func (s *fakeSource) count(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[path]
}

// countSuffix returns the fetches of paths ending in suffix.
func (s *fakeSource) countSuffix(suffix string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for p, c := range s.calls {
		if strings.HasSuffix(p, suffix) {
			n += c
		}
	}
	return n
}

// fakeChecker accepts everything except the hashes it is told are wrong.
type fakeChecker struct {
	mu  sync.Mutex
	bad map[string]bool // "path@version mod|zip"
}

func (c *fakeChecker) Covers(string) bool { return true }

func (c *fakeChecker) CheckMod(_ context.Context, path, version string, _ []byte) error {
	return c.check(path, version, "mod")
}

func (c *fakeChecker) CheckZip(_ context.Context, path, version, _ string) error {
	return c.check(path, version, "zip")
}

func (c *fakeChecker) check(path, version, kind string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bad[path+"@"+version+" "+kind] {
		return fmt.Errorf("%s@%s: %s hash mismatch", path, version, kind)
	}
	return nil
}

func (c *fakeChecker) setBad(key string, bad bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bad == nil {
		c.bad = map[string]bool{}
	}
	c.bad[key] = bad
}

type fixture struct {
	m     *Mirror
	src   *fakeSource
	store *storage.Memory
	check *fakeChecker
	clock *testenv.Clock
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	src := newFakeSource()
	store := storage.NewMemory()
	check := &fakeChecker{}
	clock := testenv.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	m, err := New(Config{
		Store:       store,
		Upstream:    src,
		Checker:     check,
		ScratchDir:  t.TempDir() + "/scratch",
		ListTTL:     time.Hour,
		NegativeTTL: time.Hour,
		Now:         clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return &fixture{m: m, src: src, store: store, check: check, clock: clock}
}

// addVersion puts a module version's three files on the fake upstream.
func (f *fixture) addVersion(t *testing.T, path, version string) {
	t.Helper()
	esc, _ := module.EscapePath(path)
	base := esc + "/@v/" + version
	f.src.set(base+".info", fmt.Appendf(nil, `{"Version":%q,"Time":"2024-01-01T00:00:00Z"}`, version))
	f.src.set(base+".mod", []byte("module "+path+"\n"))
	f.src.set(base+".zip", makeZip(t, path, version))
}

func makeZip(t *testing.T, path, version string) []byte {
	t.Helper()
	var buf bytes.Buffer
	files := []modzip.File{memFile{"go.mod", "module " + path + "\n"}, memFile{"a.go", "package a\n"}}
	if err := modzip.Create(&buf, module.Version{Path: path, Version: version}, files); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type memFile struct{ name, data string }

func (f memFile) Path() string { return f.name }
func (f memFile) Lstat() (fs.FileInfo, error) {
	return storage.FileInfo{FileName: f.name, FileSize: int64(len(f.data))}, nil
}
func (f memFile) Open() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(f.data)), nil }

func readAll(t *testing.T, f *File) string {
	t.Helper()
	defer f.Body.Close()
	b, err := io.ReadAll(f.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestFileMissThenHit(t *testing.T) {
	f := newFixture(t)
	f.addVersion(t, "example.com/a", "v1.0.0")
	ctx := t.Context()
	for i, want := range []Result{Miss, Hit} {
		got, err := f.m.File(ctx, "example.com/a", "v1.0.0", "example.com/a/@v/v1.0.0.mod", Options{})
		if err != nil {
			t.Fatalf("File #%d: %v", i, err)
		}
		if got.Result != want {
			t.Errorf("File #%d result = %s, want %s", i, got.Result, want)
		}
		if body := readAll(t, got); body != "module example.com/a\n" {
			t.Errorf("File #%d body = %q", i, body)
		}
	}
	if n := f.src.count("example.com/a/@v/v1.0.0.mod"); n != 1 {
		t.Errorf("upstream .mod fetches = %d, want 1", n)
	}
	// A .mod request must not pull the zip.
	if n := f.src.count("example.com/a/@v/v1.0.0.zip"); n != 0 {
		t.Errorf("upstream .zip fetches = %d, want 0", n)
	}
}

func TestZipVerifiedAndStored(t *testing.T) {
	f := newFixture(t)
	f.addVersion(t, "example.com/a", "v1.0.0")
	got, err := f.m.File(t.Context(), "example.com/a", "v1.0.0", "example.com/a/@v/v1.0.0.zip", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, got); body != string(makeZip(t, "example.com/a", "v1.0.0")) {
		t.Error("served zip differs from upstream zip")
	}
}

func TestVerificationFailureNotStoredNotCached(t *testing.T) {
	f := newFixture(t)
	f.addVersion(t, "example.com/a", "v1.0.0")
	f.check.setBad("example.com/a@v1.0.0 zip", true)
	key := "example.com/a/@v/v1.0.0.zip"
	_, err := f.m.File(t.Context(), "example.com/a", "v1.0.0", key, Options{})
	if !errors.Is(err, ErrVerification) {
		t.Fatalf("File with tampered zip: err = %v, want ErrVerification", err)
	}
	if _, err := f.store.Get(t.Context(), key); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("tampered zip was stored (Get err = %v)", err)
	}
	// The upstream is repaired: the next request fetches again and succeeds.
	f.check.setBad("example.com/a@v1.0.0 zip", false)
	if _, err := f.m.File(t.Context(), "example.com/a", "v1.0.0", key, Options{}); err != nil {
		t.Fatalf("File after repair: %v", err)
	}
	if n := f.src.count(key); n != 2 {
		t.Errorf("upstream fetches = %d, want 2 (failure must not be cached)", n)
	}
}

func TestInvalidZipRefused(t *testing.T) {
	f := newFixture(t)
	f.src.set("example.com/a/@v/v1.0.0.zip", []byte("not a zip"))
	_, err := f.m.File(t.Context(), "example.com/a", "v1.0.0", "example.com/a/@v/v1.0.0.zip", Options{})
	if !errors.Is(err, ErrVerification) {
		t.Fatalf("err = %v, want ErrVerification", err)
	}
}

func TestInfoForOtherVersionRefused(t *testing.T) {
	f := newFixture(t)
	f.src.set("example.com/a/@v/v1.0.0.info", []byte(`{"Version":"v1.0.1"}`))
	_, err := f.m.File(t.Context(), "example.com/a", "v1.0.0", "example.com/a/@v/v1.0.0.info", Options{})
	if !errors.Is(err, ErrVerification) {
		t.Fatalf("err = %v, want ErrVerification", err)
	}
}

func TestNegativeCache(t *testing.T) {
	f := newFixture(t)
	key := "example.com/a/@v/v9.0.0.info"
	for range 3 {
		_, err := f.m.File(t.Context(), "example.com/a", "v9.0.0", key, Options{})
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("err = %v, want fs.ErrNotExist", err)
		}
	}
	if n := f.src.count(key); n != 1 {
		t.Errorf("upstream fetches = %d, want 1 (misses are remembered)", n)
	}
}

func TestUpstreamFailureNotCached(t *testing.T) {
	f := newFixture(t)
	f.addVersion(t, "example.com/a", "v1.0.0")
	f.src.setDown(true)
	key := "example.com/a/@v/v1.0.0.info"
	if _, err := f.m.File(t.Context(), "example.com/a", "v1.0.0", key, Options{}); !errors.Is(err, upstream.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	f.src.setDown(false)
	if _, err := f.m.File(t.Context(), "example.com/a", "v1.0.0", key, Options{}); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}

func TestNoFetch(t *testing.T) {
	f := newFixture(t)
	f.addVersion(t, "example.com/a", "v1.0.0")
	key := "example.com/a/@v/v1.0.0.info"
	if _, err := f.m.File(t.Context(), "example.com/a", "v1.0.0", key, Options{NoFetch: true}); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("NoFetch on cold cache: err = %v, want fs.ErrNotExist", err)
	}
	if n := f.src.count(key); n != 0 {
		t.Fatalf("NoFetch reached the upstream %d times", n)
	}
	if _, err := f.m.File(t.Context(), "example.com/a", "v1.0.0", key, Options{}); err != nil {
		t.Fatal(err)
	}
	got, err := f.m.File(t.Context(), "example.com/a", "v1.0.0", key, Options{NoFetch: true})
	if err != nil {
		t.Fatalf("NoFetch on warm cache: %v", err)
	}
	got.Body.Close()
}

func TestSingleFlight(t *testing.T) {
	f := newFixture(t)
	f.addVersion(t, "example.com/a", "v1.0.0")
	gate := make(chan struct{})
	f.src.gate = gate
	key := "example.com/a/@v/v1.0.0.zip"
	const clients = 50
	var wg sync.WaitGroup
	var failures atomic.Int32
	for range clients {
		wg.Go(func() {
			got, err := f.m.File(t.Context(), "example.com/a", "v1.0.0", key, Options{})
			if err != nil {
				failures.Add(1)
				return
			}
			got.Body.Close()
		})
	}
	// Let the requests pile up on the one flight, then release it.
	for f.m.FillsInFlight() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	close(gate)
	wg.Wait()
	if failures.Load() != 0 {
		t.Errorf("%d of %d requests failed", failures.Load(), clients)
	}
	if n := f.src.count(key); n != 1 {
		t.Errorf("upstream fetches = %d for %d concurrent requests, want 1", n, clients)
	}
}

func TestFillCancelledWhenAllWaitersLeave(t *testing.T) {
	f := newFixture(t)
	f.addVersion(t, "example.com/a", "v1.0.0")
	f.src.gate = make(chan struct{}) // never opens: only cancellation ends the fetch
	key := "example.com/a/@v/v1.0.0.zip"
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() {
		_, err := f.m.File(ctx, "example.com/a", "v1.0.0", key, Options{})
		done <- err
	}()
	for f.m.FillsInFlight() == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for f.m.FillsInFlight() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the fill kept running after its only client left")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestListMergesAndServesStale(t *testing.T) {
	f := newFixture(t)
	f.m.cfg.ListTTL = 0 // every request refreshes
	f.addVersion(t, "example.com/a", "v1.0.0")
	f.src.set("example.com/a/@v/list", []byte("v1.1.0\nv1.0.0\n"))
	ctx := t.Context()
	// Store v0.9.0 as if fetched earlier: the list must keep it although the
	// upstream no longer lists it.
	if err := f.store.Put(ctx, "example.com/a/@v/v0.9.0.mod", strings.NewReader("module example.com/a\n")); err != nil {
		t.Fatal(err)
	}
	a, err := f.m.List(ctx, "example.com/a", "example.com/a", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(a.Data), "v0.9.0\nv1.0.0\nv1.1.0\n"; got != want {
		t.Errorf("list = %q, want %q", got, want)
	}
	f.src.setDown(true)
	a, err = f.m.List(ctx, "example.com/a", "example.com/a", Options{})
	if err != nil {
		t.Fatalf("list with upstream down: %v", err)
	}
	if a.Result != Stale || !strings.Contains(string(a.Data), "v1.1.0") {
		t.Errorf("list with upstream down = %s %q, want stale copy", a.Result, a.Data)
	}
}

func TestListStaleAfterRestartFromStore(t *testing.T) {
	f := newFixture(t)
	f.m.cfg.ListTTL = 0
	f.src.set("example.com/a/@v/list", []byte("v1.0.0\n"))
	if _, err := f.m.List(t.Context(), "example.com/a", "example.com/a", Options{}); err != nil {
		t.Fatal(err)
	}
	// A new Mirror on the same store has nothing in memory.
	m2, err := New(Config{Store: f.store, Upstream: f.src, ScratchDir: t.TempDir(), ListTTL: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	f.src.setDown(true)
	a, err := m2.List(t.Context(), "example.com/a", "example.com/a", Options{})
	if err != nil {
		t.Fatalf("list after restart with upstream down: %v", err)
	}
	if a.Result != Stale || string(a.Data) != "v1.0.0\n" {
		t.Errorf("got %s %q, want stale v1.0.0", a.Result, a.Data)
	}
}

func TestListNotFoundUpstreamKeepsStoredVersions(t *testing.T) {
	f := newFixture(t)
	if _, err := f.m.List(t.Context(), "example.com/gone", "example.com/gone", Options{}); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("unknown module list: err = %v, want fs.ErrNotExist", err)
	}
	f2 := newFixture(t)
	f2.store.Put(t.Context(), "example.com/a/@v/v1.0.0.info", strings.NewReader(`{"Version":"v1.0.0"}`))
	a, err := f2.m.List(t.Context(), "example.com/a", "example.com/a", Options{})
	if err != nil {
		t.Fatalf("list with upstream 404 and a stored version: %v", err)
	}
	if string(a.Data) != "v1.0.0\n" {
		t.Errorf("list = %q, want the stored version", a.Data)
	}
}

func TestLatestAndQueryValidated(t *testing.T) {
	f := newFixture(t)
	f.src.set("example.com/a/@latest", []byte(`{"Version":"v1.2.0","Time":"2024-01-01T00:00:00Z"}`))
	f.src.set("example.com/a/@v/main.info", []byte(`{"Version":"v0.0.0-20240101000000-abcdefabcdef"}`))
	f.src.set("example.com/a/@v/bad.info", []byte(`{"Version":"main"}`))
	ctx := t.Context()
	if a, err := f.m.Latest(ctx, "example.com/a", "example.com/a", Options{}); err != nil || !strings.Contains(string(a.Data), "v1.2.0") {
		t.Errorf("Latest = %v, %v", a, err)
	}
	if _, err := f.m.Query(ctx, "example.com/a", "example.com/a/@v/main.info", Options{}); err != nil {
		t.Errorf("Query(main): %v", err)
	}
	if _, err := f.m.Query(ctx, "example.com/a", "example.com/a/@v/bad.info", Options{}); !errors.Is(err, ErrVerification) {
		t.Errorf("Query(bad) err = %v, want ErrVerification", err)
	}
}

func TestNoProxyUsesDirect(t *testing.T) {
	src, direct := newFakeSource(), newFakeSource()
	m, err := New(Config{Store: storage.NewMemory(), Upstream: src, Direct: direct, NoProxy: []string{"corp.example/*"}, ScratchDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	m.File(t.Context(), "corp.example/secret", "v1.0.0", "corp.example/secret/@v/v1.0.0.info", Options{})
	if n := src.count("corp.example/secret/@v/v1.0.0.info"); n != 0 {
		t.Errorf("a NoProxy module was requested from the proxy upstream %d times", n)
	}
	if n := direct.count("corp.example/secret/@v/v1.0.0.info"); n != 1 {
		t.Errorf("direct fetches = %d, want 1", n)
	}
}

// TestListRefreshedInBackground: a list near the end of its TTL is served
// at once and refreshed behind the client's back, so a popular list never
// expires in front of a client.
func TestListRefreshedInBackground(t *testing.T) {
	f := newFixture(t)
	f.m.cfg.ListTTL = 2 * time.Second
	key := "example.com/a/@v/list"
	f.src.set(key, []byte("v1.0.0\n"))
	if _, err := f.m.List(t.Context(), "example.com/a", "example.com/a", Options{}); err != nil {
		t.Fatal(err)
	}
	f.src.set(key, []byte("v1.0.0\nv1.1.0\n"))
	f.clock.Advance(1600 * time.Millisecond) // past 3/4 of the TTL (1.5s), before its end

	a, err := f.m.List(t.Context(), "example.com/a", "example.com/a", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if a.Result != Hit || string(a.Data) != "v1.0.0\n" {
		t.Fatalf("list near the end of its TTL = %s %q, want the cached copy at once", a.Result, a.Data)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		a, err = f.m.List(t.Context(), "example.com/a", "example.com/a", Options{})
		if err != nil {
			t.Fatal(err)
		}
		if string(a.Data) == "v1.0.0\nv1.1.0\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the background refresh never updated the list")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if a.Result != Hit {
		t.Errorf("refreshed list served as %s, want a hit (no client waited for the upstream)", a.Result)
	}
	if n := f.src.count(key); n != 2 {
		t.Errorf("upstream list fetches = %d, want 2 (one fill, one background refresh)", n)
	}
}

// TestNoProxyNeedsDirect: without a Direct source, NoProxy modules would
// go to the proxy upstream; New refuses that configuration.
func TestNoProxyNeedsDirect(t *testing.T) {
	_, err := New(Config{Store: storage.NewMemory(), Upstream: newFakeSource(), NoProxy: []string{"corp.example"}, ScratchDir: t.TempDir()})
	if err == nil {
		t.Fatal("New with NoProxy and no Direct source succeeded")
	}
}
