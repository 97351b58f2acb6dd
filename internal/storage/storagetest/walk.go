package storagetest

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/modgate/modgate/internal/storage"
)

// testWalk checks storage.Walker: every name under a prefix at any depth,
// nothing outside it, a missing prefix walks nothing, fn's error stops
// the walk, and a bad prefix is refused.
func testWalk(t *testing.T, s storage.Store) {
	w, ok := s.(storage.Walker)
	if !ok {
		t.Skip("store does not implement storage.Walker")
	}
	ctx := t.Context()
	names := []string{"a.example/m/@v/v1.0.0.mod", "a.example/m/@v/v1.0.0.zip", "a.example/m/sub/@v/list", "b.example/x/@latest", "sumdb/db/lookup/x"}
	for _, n := range names {
		if err := s.Put(ctx, n, strings.NewReader(n)); err != nil {
			t.Fatal(err)
		}
	}
	walk := func(prefix string) []string {
		t.Helper()
		var got []string
		if err := w.Walk(ctx, prefix, func(n string) error { got = append(got, n); return nil }); err != nil {
			t.Fatalf("Walk(%q): %v", prefix, err)
		}
		slices.Sort(got)
		return got
	}
	if got := walk(""); !slices.Equal(got, names) {
		t.Errorf("Walk(\"\") = %q, want %q", got, names)
	}
	if got, want := walk("a.example/m/"), names[:3]; !slices.Equal(got, want) {
		t.Errorf("Walk(a.example/m/) = %q, want %q", got, want)
	}
	if got := walk("none.example/"); len(got) != 0 {
		t.Errorf("Walk of a missing prefix = %q, want nothing", got)
	}
	stop := errors.New("stop")
	n := 0
	if err := w.Walk(ctx, "", func(string) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Errorf("Walk with fn failing: err %v after %d calls, want stop after 1", err, n)
	}
	if err := w.Walk(ctx, "../", func(string) error { return nil }); !errors.Is(err, storage.ErrInvalidName) {
		t.Errorf("Walk(../) = %v, want ErrInvalidName", err)
	}
}
