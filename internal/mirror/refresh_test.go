package mirror

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
)

func TestRefreshShowsNewVersionAtOnce(t *testing.T) {
	f := newFixture(t) // list TTL of an hour: only Refresh can make v1.1.0 visible
	ctx := t.Context()
	f.addVersion(t, "example.com/a", "v1.0.0")
	f.src.set("example.com/a/@v/list", []byte("v1.0.0\n"))
	if _, err := f.m.List(ctx, "example.com/a", "example.com/a", Options{}); err != nil {
		t.Fatal(err)
	}
	f.addVersion(t, "example.com/a", "v1.1.0")
	f.src.set("example.com/a/@v/list", []byte("v1.0.0\nv1.1.0\n"))
	// A query answer cached before the push must be refreshed too.
	f.src.set("example.com/a/@v/main.info", []byte(`{"Version":"v1.0.0","Time":"2024-01-01T00:00:00Z"}`))
	if _, err := f.m.Query(ctx, "example.com/a", "example.com/a/@v/main.info", Options{}); err != nil {
		t.Fatal(err)
	}
	f.src.set("example.com/a/@v/main.info", []byte(`{"Version":"v1.1.0","Time":"2024-01-02T00:00:00Z"}`))

	added, err := f.m.Refresh(ctx, "example.com/a")
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if !slices.Equal(added, []string{"v1.1.0"}) {
		t.Errorf("Refresh added %v, want [v1.1.0]", added)
	}
	if err := f.m.Prefetch(ctx, "example.com/a", "v1.1.0"); err != nil {
		t.Fatal(err)
	}
	for _, ext := range []string{".info", ".mod", ".zip"} {
		if _, err := f.store.Get(ctx, "example.com/a/@v/v1.1.0"+ext); err != nil {
			t.Errorf("v1.1.0%s not prefetched: %v", ext, err)
		}
	}
	a, err := f.m.List(ctx, "example.com/a", "example.com/a", Options{})
	if err != nil || string(a.Data) != "v1.0.0\nv1.1.0\n" {
		t.Errorf("List after Refresh = %q, %v; want both versions", a.Data, err)
	}
	q, err := f.m.Query(ctx, "example.com/a", "example.com/a/@v/main.info", Options{})
	if err != nil || string(q.Data) != `{"Version":"v1.1.0","Time":"2024-01-02T00:00:00Z"}` {
		t.Errorf("Query after Refresh = %q, %v; want the new commit", q.Data, err)
	}
}

func TestRefreshKeepsStaleListWhenUpstreamDown(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	f.src.set("example.com/a/@v/list", []byte("v1.0.0\n"))
	if _, err := f.m.List(ctx, "example.com/a", "example.com/a", Options{}); err != nil {
		t.Fatal(err)
	}
	f.src.setDown(true)
	if _, err := f.m.Refresh(ctx, "example.com/a"); err == nil {
		t.Fatal("Refresh with the upstream down = nil error")
	}
	a, err := f.m.List(ctx, "example.com/a", "example.com/a", Options{})
	if err != nil || a.Result != Stale || string(a.Data) != "v1.0.0\n" {
		t.Errorf("List after failed Refresh = %+v, %v; want the stale list", a, err)
	}
}

func TestRecheckRunsCheckerWithoutStoring(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	f.addVersion(t, "example.com/a", "v1.0.0")
	if err := f.m.Prefetch(ctx, "example.com/a", "v1.0.0"); err != nil {
		t.Fatal(err)
	}
	stored := readAll(t, mustFile(t, f, "example.com/a/@v/v1.0.0.zip"))
	if err := f.m.Recheck(ctx, "example.com/a", "v1.0.0"); err != nil {
		t.Fatalf("Recheck of unchanged version: %v", err)
	}
	// The upstream now serves other content for the same version (a moved tag).
	f.src.set("example.com/a/@v/v1.0.0.zip", makeZip(t, "example.com/a", "v1.0.0")[:100])
	f.check.setBad("example.com/a@v1.0.0 zip", true)
	err := f.m.Recheck(ctx, "example.com/a", "v1.0.0")
	if !errors.Is(err, ErrVerification) {
		t.Fatalf("Recheck after the content changed = %v, want ErrVerification", err)
	}
	if got := readAll(t, mustFile(t, f, "example.com/a/@v/v1.0.0.zip")); got != stored {
		t.Error("Recheck changed the stored zip")
	}
}

func mustFile(t *testing.T, f *fixture, key string) *File {
	t.Helper()
	file, err := f.m.File(t.Context(), "example.com/a", "v1.0.0", key, Options{NoFetch: true})
	if err != nil {
		t.Fatal(err)
	}
	return file
}

type coverChecker struct {
	fakeChecker
	prefix string
	calls  []string
	mu     sync.Mutex
}

func (c *coverChecker) Covers(path string) bool {
	return len(path) >= len(c.prefix) && path[:len(c.prefix)] == c.prefix
}
func (c *coverChecker) CheckMod(ctx context.Context, path, version string, data []byte) error {
	c.mu.Lock()
	c.calls = append(c.calls, path)
	c.mu.Unlock()
	return c.fakeChecker.CheckMod(ctx, path, version, data)
}

func TestCheckFirst(t *testing.T) {
	private := &coverChecker{prefix: "corp.example.com/"}
	public := &coverChecker{prefix: ""}
	c := CheckFirst(nil, private, public)
	ctx := t.Context()
	for _, p := range []string{"corp.example.com/x", "example.com/y"} {
		if !c.Covers(p) {
			t.Errorf("Covers(%q) = false", p)
		}
		if err := c.CheckMod(ctx, p, "v1.0.0", nil); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(private.calls, []string{"corp.example.com/x"}) || !slices.Equal(public.calls, []string{"example.com/y"}) {
		t.Errorf("private checked %v, public checked %v; want one module each", private.calls, public.calls)
	}
	if CheckFirst(private).Covers("example.com/y") {
		t.Error("a path no checker covers is reported as covered")
	}
}

func TestOnListSeesUpstreamVersions(t *testing.T) {
	f := newFixture(t)
	var got []string
	f.m.cfg.OnList = func(path string, versions []string) { got = append(got, path+" "+versions[len(versions)-1]) }
	f.src.set("example.com/a/@v/list", []byte("v1.0.0\nv1.2.0\n"))
	if _, err := f.m.List(t.Context(), "example.com/a", "example.com/a", Options{}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"example.com/a v1.2.0"}) {
		t.Errorf("OnList calls = %v", got)
	}
}
