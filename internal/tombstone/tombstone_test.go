package tombstone

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/storage"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name, arg, path, version string
		ok                       bool
	}{
		{"module", "example.com/m", "example.com/m", "", true},
		{"version", "example.com/m@v1.2.3", "example.com/m", "v1.2.3", true},
		{"pseudo", "example.com/m@v0.0.0-20240101000000-abcdefabcdef", "example.com/m", "v0.0.0-20240101000000-abcdefabcdef", true},
		{"incompatible", "example.com/m@v2.0.0+incompatible", "example.com/m", "v2.0.0+incompatible", true},
		{"case", "example.com/M@v1.0.0", "example.com/M", "v1.0.0", true},
		{"query", "example.com/m@latest", "", "", false},
		{"branch", "example.com/m@master", "", "", false},
		{"short", "example.com/m@v1.2", "", "", false},
		{"empty version", "example.com/m@", "", "", false},
		{"wrong major", "example.com/m@v2.0.0", "", "", false},
		{"bad path", "../etc@v1.0.0", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, v, err := Parse(tt.arg)
			if (err == nil) != tt.ok || p != tt.path || v != tt.version {
				t.Errorf("Parse(%q) = %q, %q, %v; want %q, %q, ok=%v", tt.arg, p, v, err, tt.path, tt.version, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Errorf("Parse(%q) error %v does not match ErrInvalid", tt.arg, err)
			}
		})
	}
}

func TestPurgeAndCheck(t *testing.T) {
	ctx := t.Context()
	store := storage.NewMemory()
	put := func(k, v string) { store.Put(ctx, k, bytes.NewReader([]byte(v))) }
	for _, ext := range []string{"info", "mod", "zip"} {
		put("example.com/m/@v/v1.0.0."+ext, "x")
		put("example.com/m/@v/v1.1.0."+ext, "x")
	}
	put("example.com/m/@v/list", "v1.0.0\nv1.1.0\n")
	put("example.com/m/@latest", `{"Version":"v1.1.0"}`)
	set := New(store)

	res, err := Purge(ctx, store, set, Request{Module: "example.com/m", Version: "v1.1.0", Reason: "takedown"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Removed) != 4 || !res.Tombstoned || len(res.ListsUpdated) != 1 {
		t.Errorf("Purge = %+v, want 3 files and @latest removed, the list rewritten", res)
	}
	rc, _ := store.Get(ctx, "example.com/m/@v/list")
	list, _ := io.ReadAll(rc)
	if string(list) != "v1.0.0\n" {
		t.Errorf("stored list = %q", list)
	}
	for _, tc := range []struct {
		path, version string
		purged        bool
	}{
		{"example.com/m", "v1.1.0", true},
		{"example.com/M", "v1.1.0", true}, // case variants share tombstones
		{"Example.com/m", "v1.1.0", true},
		{"example.com/m", "v1.0.0", false},
		{"example.com/m", "v1.1.1-0.20240101000000-abcdefabcdef", false}, // another version: documented
		{"example.com/m/sub", "v1.1.0", false},
	} {
		err := set.Check(ctx, tc.path, tc.version)
		if got := errors.Is(err, ErrPurged); got != tc.purged {
			t.Errorf("Check(%s@%s) = %v, want purged %v", tc.path, tc.version, err, tc.purged)
		}
	}
	purged, err := set.Filter(ctx, "example.com/M")
	if err != nil || !purged("v1.1.0") || purged("v1.0.0") {
		t.Errorf("Filter: err %v, v1.1.0 %v, v1.0.0 %v", err, purged("v1.1.0"), purged("v1.0.0"))
	}

	// A whole module: every version, and the module itself.
	if _, err := Purge(ctx, store, set, Request{Module: "example.com/m"}); err != nil {
		t.Fatal(err)
	}
	if err := set.Check(ctx, "example.com/m", "v9.9.9"); !errors.Is(err, ErrPurged) {
		t.Errorf("after a module purge, Check(v9.9.9) = %v", err)
	}
	if err := set.CheckModule(ctx, "EXAMPLE.com/m"); !errors.Is(err, ErrPurged) {
		t.Errorf("CheckModule = %v", err)
	}
	if _, err := store.Get(ctx, "example.com/m/@v/v1.0.0.zip"); err == nil {
		t.Error("module purge left a zip")
	}

	// Lifting: --allow-refetch removes the tombstone.
	res, err = Purge(ctx, store, set, Request{Module: "example.com/m", AllowRefetch: true})
	if err != nil || !res.Unburied {
		t.Errorf("allow-refetch: %+v, %v", res, err)
	}
	if err := set.Check(ctx, "example.com/m", "v1.0.0"); err != nil {
		t.Errorf("after lifting the module tombstone: %v", err)
	}
	// Bad input changes nothing.
	if _, err := Purge(ctx, store, set, Request{Module: "example.com/m", Version: "latest"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Purge of a query = %v, want ErrInvalid", err)
	}
}

// downStore is a store that can go down: every call then fails with
// storage.ErrUnavailable, as an unreachable object store does.
type downStore struct {
	*storage.Memory
	down bool
}

func (d *downStore) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	if d.down {
		return nil, fmt.Errorf("getting %s: %w", name, storage.ErrUnavailable)
	}
	return d.Memory.Get(ctx, name)
}

func (d *downStore) List(ctx context.Context, dir string) ([]string, error) {
	if d.down {
		return nil, fmt.Errorf("listing %s: %w", dir, storage.ErrUnavailable)
	}
	return d.Memory.List(ctx, dir)
}

// TestCheckWhileStoreDown: with the store unreachable, a tombstone listed
// before the outage still refuses, a module never listed is served (its
// files may still be in a replica's local cache), and nothing fails with
// the store's error.
func TestCheckWhileStoreDown(t *testing.T) {
	ctx := t.Context()
	store := &downStore{Memory: storage.NewMemory()}
	set := New(store)
	for _, req := range []Request{{Module: "example.com/m", Version: "v1.1.0"}, {Module: "example.com/gone"}} {
		if _, err := Purge(ctx, store, set, req); err != nil {
			t.Fatal(err)
		}
	}
	// Seen once while the store answers.
	for _, p := range []string{"example.com/m", "example.com/gone"} {
		if _, err := set.Filter(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	store.down = true
	for _, tc := range []struct {
		path, version string
		purged        bool
	}{
		{"example.com/m", "v1.1.0", true},
		{"example.com/M", "v1.1.0", true},
		{"example.com/m", "v1.0.0", false},
		{"example.com/gone", "v1.0.0", true},
		{"example.com/never-listed", "v1.0.0", false},
	} {
		err := set.Check(ctx, tc.path, tc.version)
		if got := errors.Is(err, ErrPurged); got != tc.purged || (err != nil && !got) {
			t.Errorf("Check(%s@%s) with the store down = %v, want purged %v", tc.path, tc.version, err, tc.purged)
		}
	}
	if err := set.CheckModule(ctx, "example.com/gone"); !errors.Is(err, ErrPurged) {
		t.Errorf("CheckModule(example.com/gone) with the store down = %v, want purged", err)
	}
}

// countingStore counts listings, as an object store's round trips.
type countingStore struct {
	*storage.Memory
	lists int
}

func (c *countingStore) List(ctx context.Context, dir string) ([]string, error) {
	c.lists++
	return c.Memory.List(ctx, dir)
}

// TestCachedSet: a Set from NewCached lists a module once per freshness
// window, sees another process's purge once the window has passed, and
// its own purges at once.
func TestCachedSet(t *testing.T) {
	ctx := t.Context()
	store := &countingStore{Memory: storage.NewMemory()}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	set := NewCached(store, 2*time.Second)
	set.now = func() time.Time { return now }
	other := New(store) // another replica, or the command line

	for range 10 {
		if err := set.Check(ctx, "example.com/m", "v1.0.0"); err != nil {
			t.Fatal(err)
		}
	}
	if store.lists != 1 {
		t.Errorf("10 checks within the window listed %d times, want 1", store.lists)
	}
	if _, err := Purge(ctx, store, other, Request{Module: "example.com/m", Version: "v1.0.0"}); err != nil {
		t.Fatal(err)
	}
	if err := set.Check(ctx, "example.com/m", "v1.0.0"); err != nil {
		t.Errorf("Check within the window of another's purge = %v, want the listing reused", err)
	}
	now = now.Add(2 * time.Second)
	if err := set.Check(ctx, "example.com/m", "v1.0.0"); !errors.Is(err, ErrPurged) {
		t.Errorf("Check after the window = %v, want purged", err)
	}
	// Its own purge and lift are seen at once.
	if _, err := Purge(ctx, store, set, Request{Module: "example.com/m", Version: "v1.0.0", AllowRefetch: true}); err != nil {
		t.Fatal(err)
	}
	if err := set.Check(ctx, "example.com/m", "v1.0.0"); err != nil {
		t.Errorf("Check after this Set lifted the purge = %v, want nil", err)
	}
	if _, err := Purge(ctx, store, set, Request{Module: "example.com/m"}); err != nil {
		t.Fatal(err)
	}
	if err := set.Check(ctx, "example.com/m", "v2.0.0"); !errors.Is(err, ErrPurged) {
		t.Errorf("Check after this Set purged the module = %v, want purged", err)
	}
}
