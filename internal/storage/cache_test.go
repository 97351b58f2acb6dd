package storage_test

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"strings"
	"testing"

	"github.com/modgate/modgate/internal/storage"
	"github.com/modgate/modgate/internal/storage/storagetest"
)

func TestCacheConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		return storage.NewCache(storage.NewMemory(), 1<<20, 64<<10)
	})
}

// countingStore counts Gets that reach it.
type countingStore struct {
	storage.Store
	gets int
}

func (s *countingStore) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	s.gets++
	return s.Store.Get(ctx, name)
}

func read(t *testing.T, s storage.Store, name string) string {
	t.Helper()
	rc, err := s.Get(t.Context(), name)
	if err != nil {
		t.Fatalf("Get(%q): %v", name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCacheServesSmallFilesFromMemory(t *testing.T) {
	inner := &countingStore{Store: storage.NewMemory()}
	c := storage.NewCache(inner, 100, 10)
	ctx := t.Context()
	c.Put(ctx, "a/small", strings.NewReader("0123456789"))
	c.Put(ctx, "a/large", strings.NewReader("0123456789X"))
	for range 3 {
		if got := read(t, c, "a/small"); got != "0123456789" {
			t.Fatalf("small = %q", got)
		}
		if got := read(t, c, "a/large"); got != "0123456789X" {
			t.Fatalf("large = %q", got)
		}
	}
	if inner.gets != 1+3 {
		t.Errorf("inner Gets = %d, want 4 (small file once, large file every time)", inner.gets)
	}
	// A Put replaces the cached copy.
	c.Put(ctx, "a/small", strings.NewReader("new"))
	if got := read(t, c, "a/small"); got != "new" {
		t.Errorf("after Put, small = %q, want new", got)
	}
}

func TestCacheEvictsLeastRecentlyUsed(t *testing.T) {
	inner := &countingStore{Store: storage.NewMemory()}
	c := storage.NewCache(inner, 25, 10)
	ctx := t.Context()
	for _, n := range []string{"a", "b", "c"} {
		c.Put(ctx, "x/"+n, bytes.NewReader(bytes.Repeat([]byte(n), 10)))
		read(t, c, "x/"+n) // a, b cached; c evicts a (30 > 25)
	}
	if files, size := c.Len(); files != 2 || size != 20 {
		t.Errorf("Len = %d files, %d bytes; want 2, 20", files, size)
	}
	before := inner.gets
	read(t, c, "x/c")
	read(t, c, "x/b")
	if inner.gets != before {
		t.Errorf("recently used files were not served from memory")
	}
	read(t, c, "x/a")
	if inner.gets != before+1 {
		t.Errorf("evicted file did not go to the inner store")
	}
}

func TestCacheDisabled(t *testing.T) {
	inner := &countingStore{Store: storage.NewMemory()}
	c := storage.NewCache(inner, 0, 10)
	c.Put(t.Context(), "a/b", strings.NewReader("x"))
	read(t, c, "a/b")
	read(t, c, "a/b")
	if inner.gets != 2 {
		t.Errorf("disabled cache: inner Gets = %d, want 2", inner.gets)
	}
}

// racingStore lets a test run a write in the middle of a Get.
type racingStore struct {
	storage.Store
	during func()
}

func (s *racingStore) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	rc, err := s.Store.Get(ctx, name) // reads the old content
	if s.during != nil {
		f := s.during
		s.during = nil
		f()
	}
	return rc, err
}

// TestCacheGetRacingPut: a Get that read the old content while a Put
// completed must not cache it, or the old content would be served after
// the Put.
func TestCacheGetRacingPut(t *testing.T) {
	inner := &racingStore{Store: storage.NewMemory()}
	c := storage.NewCache(inner, 1<<20, 1<<10)
	ctx := t.Context()
	c.Put(ctx, "m/@v/list", strings.NewReader("v1.0.0\n"))
	inner.during = func() { c.Put(ctx, "m/@v/list", strings.NewReader("v1.0.0\nv1.1.0\n")) }
	if got := read(t, c, "m/@v/list"); got != "v1.0.0\n" {
		t.Fatalf("racing Get = %q, want the old content it read", got)
	}
	if got := read(t, c, "m/@v/list"); got != "v1.0.0\nv1.1.0\n" {
		t.Errorf("Get after the Put = %q, want the new content", got)
	}
}

// TestCacheStatAllocs: Stat of a file served from memory, asked several
// times per cache hit, allocates nothing.
func TestCacheStatAllocs(t *testing.T) {
	c := storage.NewCache(storage.NewMemory(), 1<<20, 64<<10)
	if err := c.Put(t.Context(), "example.com/m/@v/v1.0.0.mod", strings.NewReader("module example.com/m\n")); err != nil {
		t.Fatal(err)
	}
	rc, err := c.Get(t.Context(), "example.com/m/@v/v1.0.0.mod")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	st := rc.(interface{ Stat() (fs.FileInfo, error) })
	if fi, err := st.Stat(); err != nil || fi.Size() != int64(len("module example.com/m\n")) || fi.Name() != "v1.0.0.mod" {
		t.Fatalf("Stat() = %v, %v", fi, err)
	}
	if n := testing.AllocsPerRun(100, func() { st.Stat() }); n != 0 {
		t.Errorf("Stat allocates %v times, want 0", n)
	}
}
