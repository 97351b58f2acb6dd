package mirror

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/storage"
	"github.com/modgate/modgate/internal/testenv"
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

// TestZipAhead: a client whose zip requests follow the order of the .info
// files it was given (go mod download) gets the next zips filled ahead of
// it, aheadStart of them after two zips in a row; a refused zip (allow) is
// never fetched, .info requests alone fetch nothing, another client's
// list is its own, and ZipAheadWorkers 0 turns it off.
func TestZipAhead(t *testing.T) {
	for _, workers := range []int{0, 2} {
		m, src, store := newPrefetchFixtureWith(t, Config{ZipAheadWorkers: workers})
		// The list: m0 m1 m2 denied m3 m4 m5 m6 m7 m8 m9.
		var list []string
		for i := range 10 {
			list = append(list, fmt.Sprintf("m%d", i))
		}
		list = slices.Insert(list, 3, "denied")
		for _, p := range append(list, "other") {
			path := "example.com/" + p
			src.set(path+"/@v/v1.0.0.info", []byte(`{"Version":"v1.0.0"}`))
			src.set(path+"/@v/v1.0.0.mod", []byte("module "+path+"\n"))
			src.set(path+"/@v/v1.0.0.zip", makeZip(t, path, "v1.0.0"))
		}
		allow := denyZip("example.com/denied")
		a, b := Client{"10.0.0.1", "ci"}, Client{"10.0.0.1", "alice"}
		zipKey := func(p string) string { return "example.com/" + p + "/@v/v1.0.0.zip" }
		info := func(client Client, p string) {
			t.Helper()
			key := "example.com/" + p + "/@v/v1.0.0.info"
			f, err := m.File(t.Context(), "example.com/"+p, "v1.0.0", key, Options{})
			if err != nil {
				t.Fatal(err)
			}
			f.Body.Close()
			m.InfoServed(client, "example.com/"+p, "v1.0.0", key)
		}
		info(b, "other")
		for _, p := range list {
			info(a, p)
		}
		m.ZipRequested(b, zipKey("other"), allow)
		m.ZipRequested(a, zipKey("m0"), allow) // one zip: no order yet
		time.Sleep(20 * time.Millisecond)
		if n := src.countSuffix(".zip"); n != 0 {
			t.Fatalf("%d zips fetched before a client followed its list", n)
		}
		m.ZipRequested(a, zipKey("m1"), allow) // in order: the next 4 (m2 denied m3 m4)
		if workers == 0 {
			m.Close()
			if n := src.countSuffix(".zip"); n != 0 {
				t.Errorf("zip-ahead off: %d zips fetched", n)
			}
			continue
		}
		waitStored(t, store, zipKey("m2"), zipKey("m3"), zipKey("m4"))
		f, err := m.File(t.Context(), "example.com/m2", "v1.0.0", zipKey("m2"), Options{})
		if err != nil {
			t.Fatal(err)
		}
		f.Body.Close()
		if f.Result != Hit {
			t.Errorf("zip after zip-ahead: %s, want a hit", f.Result)
		}
		m.Close()
		for _, p := range []string{"denied", "m5", "m9", "other"} {
			if n := src.count(zipKey(p)); n != 0 {
				t.Errorf("the zip of example.com/%s was fetched %d times", p, n)
			}
		}
		if n := src.count(zipKey("m2")); n != 1 {
			t.Errorf("the zip of example.com/m2 was fetched %d times, want 1", n)
		}
	}
}

// denyZip is a ZipPolicy refusing the zips of one module.
type denyZip string

func (d denyZip) AllowZip(path, version string) bool { return path != string(d) }

// TestZipAheadBounded: what zip-ahead remembers is bounded for all clients
// together, and a client quiet for sessionWindow starts a new list.
func TestZipAheadBounded(t *testing.T) {
	clock := testenv.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	m, _, _ := newPrefetchFixtureWith(t, Config{ZipAheadWorkers: 1, Now: clock.Now})
	for i := range sessionTotal + 100 {
		c := Client{Addr: fmt.Sprintf("10.0.%d.%d", i/sessionInfos, i%250), Identity: "anonymous"}
		p := fmt.Sprintf("example.com/m%d", i)
		m.InfoServed(c, p, "v1.0.0", p+"/@v/v1.0.0.info")
	}
	m.sessMu.Lock()
	n, clients := m.sessCount, len(m.sessions)
	m.sessMu.Unlock()
	if n > sessionTotal || clients > sessionClients {
		t.Errorf("remembered %d .info files for %d clients; the bounds are %d and %d", n, clients, sessionTotal, sessionClients)
	}
	// Quiet clients are forgotten to make room.
	clock.Advance(sessionWindow + time.Second)
	c := Client{Addr: "10.9.9.9"}
	m.InfoServed(c, "example.com/new", "v1.0.0", "example.com/new/@v/v1.0.0.info")
	m.sessMu.Lock()
	_, ok := m.sessions[c].pos["example.com/new/@v/v1.0.0.zip"]
	m.sessMu.Unlock()
	if !ok {
		t.Error("after the other clients went quiet, a new client's .info was not remembered")
	}
}
