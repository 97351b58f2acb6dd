package mirror

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/storage"
)

func newPrefetchFixture(t *testing.T, workers int) (*Mirror, *fakeSource, *storage.Memory) {
	t.Helper()
	return newPrefetchFixtureWith(t, Config{PrefetchWorkers: workers, PrefetchDepth: 1})
}

func newPrefetchFixtureWith(t *testing.T, cfg Config) (*Mirror, *fakeSource, *storage.Memory) {
	t.Helper()
	src := newFakeSource()
	src.set("example.com/a/@v/v1.0.0.mod", []byte("module example.com/a\n\nrequire (\n\texample.com/b v1.0.0\n\texample.com/c/v2 v2.1.0 // indirect\n\texample.com/bad v1\n)\n"))
	src.set("example.com/b/@v/v1.0.0.mod", []byte("module example.com/b\n\nrequire example.com/d v1.0.0\n"))
	src.set("example.com/c/v2/@v/v2.1.0.mod", []byte("module example.com/c/v2\n"))
	src.set("example.com/d/@v/v1.0.0.mod", []byte("module example.com/d\nrequire example.com/e v1.0.0\n"))
	src.set("example.com/e/@v/v1.0.0.mod", []byte("module example.com/e\n"))
	store := storage.NewMemory()
	cfg.Store, cfg.Upstream, cfg.Checker, cfg.ScratchDir = store, src, &fakeChecker{}, t.TempDir()
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m, src, store
}

func waitStored(t *testing.T, store *storage.Memory, keys ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, key := range keys {
		for {
			rc, err := store.Get(t.Context(), key)
			if err == nil {
				rc.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s was never prefetched", key)
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// TestPrefetchRequirements: a client's go.mod fill prefetches the go.mod
// files of its requirements — PrefetchDepth (here 1) levels deep, never
// zips.
func TestPrefetchRequirements(t *testing.T) {
	m, src, store := newPrefetchFixture(t, 2)
	f, err := m.File(t.Context(), "example.com/a", "v1.0.0", "example.com/a/@v/v1.0.0.mod", Options{})
	if err != nil {
		t.Fatal(err)
	}
	f.Body.Close()
	waitStored(t, store, "example.com/b/@v/v1.0.0.mod", "example.com/c/v2/@v/v2.1.0.mod")

	// The client then asks for them: served from the store, no second fetch.
	f, err = m.File(t.Context(), "example.com/b", "v1.0.0", "example.com/b/@v/v1.0.0.mod", Options{})
	if err != nil {
		t.Fatal(err)
	}
	f.Body.Close()
	if f.Result != Hit || src.count("example.com/b/@v/v1.0.0.mod") != 1 {
		t.Errorf("prefetched go.mod: result %s after %d fetches, want a hit after 1", f.Result, src.count("example.com/b/@v/v1.0.0.mod"))
	}
	m.Close() // drain the workers before looking at what they did
	if n := src.count("example.com/d/@v/v1.0.0.mod"); n != 0 {
		t.Errorf("a requirement of a prefetched go.mod was fetched %d times; prefetch is one level deep here", n)
	}
	for path := range src.calls {
		if strings.HasSuffix(path, ".zip") {
			t.Errorf("prefetch fetched %s; it fetches go.mod and .info files only", path)
		}
	}
}

func TestPrefetchDisabled(t *testing.T) {
	m, src, store := newPrefetchFixture(t, 0)
	f, err := m.File(t.Context(), "example.com/a", "v1.0.0", "example.com/a/@v/v1.0.0.mod", Options{})
	if err != nil {
		t.Fatal(err)
	}
	f.Body.Close()
	time.Sleep(50 * time.Millisecond)
	if _, err := store.Get(t.Context(), "example.com/b/@v/v1.0.0.mod"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("with prefetch off, a requirement was stored (err %v)", err)
	}
	if n := src.count("example.com/b/@v/v1.0.0.mod"); n != 0 {
		t.Errorf("with prefetch off, a requirement was fetched %d times", n)
	}
}

// TestPrefetchDepth: with PrefetchDepth 2 the walk goes one level further
// and stops there, also through a go.mod that was already stored.
func TestPrefetchDepth(t *testing.T) {
	m, src, store := newPrefetchFixtureWith(t, Config{PrefetchWorkers: 2, PrefetchDepth: 2})
	// b is stored already: its requirements are still walked.
	if err := store.Put(t.Context(), "example.com/b/@v/v1.0.0.mod", strings.NewReader("module example.com/b\n\nrequire example.com/d v1.0.0\n")); err != nil {
		t.Fatal(err)
	}
	f, err := m.File(t.Context(), "example.com/a", "v1.0.0", "example.com/a/@v/v1.0.0.mod", Options{})
	if err != nil {
		t.Fatal(err)
	}
	f.Body.Close()
	waitStored(t, store, "example.com/c/v2/@v/v2.1.0.mod", "example.com/d/@v/v1.0.0.mod")
	m.Close()
	if n := src.count("example.com/b/@v/v1.0.0.mod"); n != 0 {
		t.Errorf("a stored go.mod was fetched %d times", n)
	}
	if n := src.count("example.com/e/@v/v1.0.0.mod"); n != 0 {
		t.Errorf("the third level was fetched %d times; depth is 2", n)
	}
}

// TestZipAhead: ZipAhead after a client's .info starts the fill of the
// version's zip, once; the client's zip request then joins it or finds it
// stored. ZipAheadWorkers 0 turns it off. (Which .info requests call it
// is the server's business: TestZipAheadFollowsPolicy.)
func TestZipAhead(t *testing.T) {
	for _, workers := range []int{0, 2} {
		m, src, store := newPrefetchFixtureWith(t, Config{ZipAheadWorkers: workers})
		src.set("example.com/z/@v/v1.0.0.info", []byte(`{"Version":"v1.0.0"}`))
		src.set("example.com/z/@v/v1.0.0.mod", []byte("module example.com/z\n"))
		src.set("example.com/z/@v/v1.0.0.zip", makeZip(t, "example.com/z", "v1.0.0"))
		for range 3 {
			f, err := m.File(t.Context(), "example.com/z", "v1.0.0", "example.com/z/@v/v1.0.0.info", Options{})
			if err != nil {
				t.Fatal(err)
			}
			f.Body.Close()
			m.ZipAhead("example.com/z", "v1.0.0", "example.com/z/@v/v1.0.0.info")
		}
		if workers == 0 {
			m.Close()
			if n := src.count("example.com/z/@v/v1.0.0.zip"); n != 0 {
				t.Errorf("zip-ahead off: the zip was fetched %d times", n)
			}
			continue
		}
		waitStored(t, store, "example.com/z/@v/v1.0.0.zip")
		f, err := m.File(t.Context(), "example.com/z", "v1.0.0", "example.com/z/@v/v1.0.0.zip", Options{})
		if err != nil {
			t.Fatal(err)
		}
		f.Body.Close()
		m.Close()
		if f.Result != Hit || src.count("example.com/z/@v/v1.0.0.zip") != 1 {
			t.Errorf("zip after its .info: result %s after %d fetches, want a hit after 1", f.Result, src.count("example.com/z/@v/v1.0.0.zip"))
		}
	}
}
