package mirror

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/upstream"
)

// TestLastAnswersSurviveRestart: every list, latest and query answer, "not
// found" included, is served by a restarted mirror whose upstream is down:
// a remembered "not found" stays a (stale) "not found", never a 502.
func TestLastAnswersSurviveRestart(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	f.src.set("example.com/pseudo/@v/list", nil) // a module with only pseudo-versions
	f.src.set("example.com/a/@v/main.info", []byte(`{"Version":"v0.0.0-20240101000000-abcdefabcdef"}`))
	if _, err := f.m.List(ctx, "example.com/pseudo", "example.com/pseudo", Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Query(ctx, "example.com/a", "example.com/a/@v/main.info", Options{}); err != nil {
		t.Fatal(err)
	}
	missing := []string{"example.com/a/sub/pkg/@v/list", "example.com/a/sub/pkg/@latest", "example.com/pseudo/@latest", "example.com/a/@v/nosuch.info"}
	for _, key := range missing {
		if _, err := answer(f.m, key); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%s online: %v, want not found", key, err)
		}
	}

	// Restart with the upstream down.
	f.src.setDown(true)
	m2, err := New(Config{Store: f.store, Upstream: f.src, ScratchDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	for _, key := range missing {
		_, err := answer(m2, key)
		var stale *StaleMiss
		if !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &stale) || !errors.Is(stale.Cause, upstream.ErrUnavailable) {
			t.Errorf("%s offline after restart: %v, want the remembered not found, marked stale", key, err)
		}
	}
	if a, err := answer(m2, "example.com/pseudo/@v/list"); err != nil || a.Result != Stale || len(a.Data) != 0 {
		t.Errorf("empty list offline after restart = %+v, %v; want it empty and stale", a, err)
	}
	if a, err := answer(m2, "example.com/a/@v/main.info"); err != nil || a.Result != Stale || !strings.Contains(string(a.Data), "abcdefabcdef") {
		t.Errorf("query offline after restart = %+v, %v; want the last answer, stale", a, err)
	}
	// A key never asked has nothing to fall back on.
	if _, err := answer(m2, "example.com/never/@v/list"); !errors.Is(err, upstream.ErrUnavailable) {
		t.Errorf("never asked, offline: %v, want the upstream failure", err)
	}

	// A "not found" that turns into an answer replaces the record, and
	// the other way round.
	f.src.setDown(false)
	f.src.set("example.com/a/sub/pkg/@v/list", []byte("v1.0.0\n"))
	f.clock.Advance(2 * time.Hour) // past the negative TTL
	if a, err := answer(f.m, "example.com/a/sub/pkg/@v/list"); err != nil || string(a.Data) != "v1.0.0\n" {
		t.Fatalf("list after it appeared = %+v, %v", a, err)
	}
	f.src.setDown(true)
	m3, err := New(Config{Store: f.store, Upstream: f.src, ScratchDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer m3.Close()
	if a, err := answer(m3, "example.com/a/sub/pkg/@v/list"); err != nil || string(a.Data) != "v1.0.0\n" {
		t.Errorf("list that appeared, offline after restart = %+v, %v; want v1.0.0", a, err)
	}
}

// TestNegativeTTLDecidesFreshnessNotExistence: a "not found" is trusted for
// NegativeTTL without asking; after it the upstream is asked again, and if
// it is down the "not found" is still the answer.
func TestNegativeTTLDecidesFreshnessNotExistence(t *testing.T) {
	f := newFixture(t)
	key := "example.com/a/sub/@v/list"
	for range 2 {
		if _, err := answer(f.m, key); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("List: %v, want not found", err)
		}
	}
	if n := f.src.count(key); n != 1 {
		t.Errorf("upstream asked %d times within the negative TTL, want 1", n)
	}
	f.clock.Advance(time.Hour - time.Second)
	answer(f.m, key)
	if n := f.src.count(key); n != 1 {
		t.Errorf("upstream asked %d times just before the negative TTL ended, want 1", n)
	}
	f.clock.Advance(2 * time.Second)
	f.src.setDown(true)
	_, err := answer(f.m, key)
	var stale *StaleMiss
	if !errors.As(err, &stale) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after the negative TTL, upstream down: %v, want the stale not found", err)
	}
	if n := f.src.count(key); n != 2 {
		t.Errorf("upstream asked %d times after the negative TTL, want 2", n)
	}
}

// TestRecordsOutsideModuleTree: records never appear in the module tree,
// where a file:// GOPROXY would read them as files.
func TestRecordsOutsideModuleTree(t *testing.T) {
	f := newFixture(t)
	f.src.set("example.com/a/@v/v2.0.0.info", []byte(`{"Version":"v2.0.0+incompatible"}`))
	answer(f.m, "example.com/a/@v/v2.0.0.info")
	answer(f.m, "example.com/b/@v/list")
	for key, want := range map[string]bool{
		"example.com/a/@v/v2.0.0.info":                 false,
		"example.com/b/@v/list":                        false,
		answersPrefix + "example.com/a/@v/v2.0.0.info": true,
		answersPrefix + "example.com/b/@v/list":        true,
	} {
		rc, err := f.store.Get(t.Context(), key)
		if err == nil {
			rc.Close()
		}
		if got := err == nil; got != want {
			t.Errorf("stored %s = %v, want %v", key, got, want)
		}
	}
}

// answer asks m for the mutable key the way the handler does.
func answer(m *Mirror, key string) (*Answer, error) {
	ctx := context.Background()
	switch {
	case strings.HasSuffix(key, "/@v/list"):
		p := strings.TrimSuffix(key, "/@v/list")
		return m.List(ctx, p, p, Options{})
	case strings.HasSuffix(key, "/@latest"):
		p := strings.TrimSuffix(key, "/@latest")
		return m.Latest(ctx, p, p, Options{})
	}
	p := key[:strings.LastIndex(key, "/@v/")]
	return m.Query(ctx, p, key, Options{})
}
