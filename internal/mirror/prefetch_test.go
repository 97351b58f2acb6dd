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
	src := newFakeSource()
	src.set("example.com/a/@v/v1.0.0.mod", []byte("module example.com/a\n\nrequire (\n\texample.com/b v1.0.0\n\texample.com/c/v2 v2.1.0 // indirect\n\texample.com/bad v1\n)\n"))
	src.set("example.com/b/@v/v1.0.0.mod", []byte("module example.com/b\n\nrequire example.com/d v1.0.0\n"))
	src.set("example.com/c/v2/@v/v2.1.0.mod", []byte("module example.com/c/v2\n"))
	src.set("example.com/d/@v/v1.0.0.mod", []byte("module example.com/d\n"))
	store := storage.NewMemory()
	m, err := New(Config{Store: store, Upstream: src, Checker: &fakeChecker{}, ScratchDir: t.TempDir(), PrefetchWorkers: workers})
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
// files of its requirements — one level deep, never zips.
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
		t.Errorf("a requirement of a prefetched go.mod was fetched %d times; prefetch is one level deep", n)
	}
	for path := range src.calls {
		if strings.HasSuffix(path, ".zip") || strings.HasSuffix(path, ".info") {
			t.Errorf("prefetch fetched %s; it fetches go.mod files only", path)
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
