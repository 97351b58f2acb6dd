package integrity

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"golang.org/x/mod/sumdb/dirhash"

	"github.com/modgate/modgate/internal/storage"
	"github.com/modgate/modgate/internal/storage/disk"
)

// fakeSource knows the hashes of some versions and covers every path.
type fakeSource struct {
	mod, zip map[string]string // "path@version" → h1
	err      error
}

func (s *fakeSource) Covers(string) bool { return true }

func (s *fakeSource) Expected(_ context.Context, path, version string) (string, string, error) {
	if s.err != nil {
		return "", "", s.err
	}
	k := path + "@" + version
	m, z := s.mod[k], s.zip[k]
	if m == "" && z == "" {
		return "", "", errors.New("not known")
	}
	return m, z, nil
}

// testModule stores the go.mod and zip of path@version and records their
// hashes in src.
func testModule(t testing.TB, store storage.Store, src *fakeSource, path, version string) {
	t.Helper()
	ctx := t.Context()
	gomod := []byte("module " + path + "\n\ngo 1.21\n")
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, body := range map[string][]byte{"go.mod": gomod, "a.go": []byte("package a\n")} {
		w, _ := zw.Create(path + "@" + version + "/" + name)
		w.Write(body)
	}
	zw.Close()
	modKey, _ := FileKey(path, version, "mod")
	zipKey, _ := FileKey(path, version, "zip")
	if err := store.Put(ctx, modKey, bytes.NewReader(gomod)); err != nil {
		t.Fatal(err)
	}
	if err := store.Put(ctx, zipKey, bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	mh, _ := HashMod(gomod)
	tmp := t.TempDir() + "/z.zip"
	if err := writeFile(tmp, buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	zh, err := dirhash.HashZip(tmp, dirhash.Hash1)
	if err != nil {
		t.Fatal(err)
	}
	src.mod[path+"@"+version], src.zip[path+"@"+version] = mh, zh
}

func corrupt(t *testing.T, store storage.Store, key string) {
	t.Helper()
	rc, err := store.Get(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(rc)
	rc.Close()
	data[len(data)/2] ^= 1
	if err := store.Put(t.Context(), key, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
}

func newFixture(t *testing.T) (*storage.Memory, *fakeSource, *Checker) {
	store := storage.NewMemory()
	src := &fakeSource{mod: map[string]string{}, zip: map[string]string{}}
	for i := range 3 {
		testModule(t, store, src, fmt.Sprintf("example.com/m%d", i), "v1.0.0")
	}
	return store, src, &Checker{Store: store, Sources: []Source{src}, ScratchDir: t.TempDir()}
}

func TestRun(t *testing.T) {
	store, src, c := newFixture(t)
	ctx := t.Context()
	store.Put(ctx, "sumdb/db/lookup/x", bytes.NewReader([]byte("not a module file")))
	store.Put(ctx, "example.com/m0/@v/v1.0.0.info", bytes.NewReader([]byte("{}")))
	corrupt(t, store, "example.com/m0/@v/v1.0.0.zip")
	corrupt(t, store, "example.com/m1/@v/v1.0.0.mod")
	delete(src.mod, "example.com/m2@v1.0.0") // the zip hash alone is known

	sum, findings, err := c.Run(ctx, RunOptions{Recorded: func(fn func(path, version, file string)) {
		fn("example.com/gone", "v1.0.0", "zip")
		fn("example.com/m2", "v1.0.0", "zip") // stored: not missing
	}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Status{}
	for _, f := range findings {
		got[f.Key] = f.Status
	}
	want := map[string]Status{
		"example.com/m0/@v/v1.0.0.zip":   Corrupt,
		"example.com/m1/@v/v1.0.0.mod":   Corrupt,
		"example.com/m2/@v/v1.0.0.mod":   Unverifiable,
		"example.com/gone/@v/v1.0.0.zip": Missing,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("findings = %v, want %v", got, want)
	}
	if sum.Files != 7 || sum.OK != 3 || !sum.Problems() {
		t.Errorf("summary = %+v, want 7 files, 3 ok", sum)
	}
	// Nothing moved without --quarantine.
	if _, err := store.Get(ctx, "example.com/m0/@v/v1.0.0.zip"); err != nil {
		t.Errorf("a plain run moved a file: %v", err)
	}

	// Quarantine moves the corrupt files aside, keeping their bytes.
	sum, _, _ = c.Run(ctx, RunOptions{Quarantine: true})
	if sum.Quarantined != 2 {
		t.Errorf("quarantined %d, want 2", sum.Quarantined)
	}
	if _, err := store.Get(ctx, "quarantine/example.com/m0/@v/v1.0.0.zip"); err != nil {
		t.Errorf("corrupt zip not in quarantine: %v", err)
	}
	if _, err := store.Get(ctx, "example.com/m0/@v/v1.0.0.zip"); err == nil {
		t.Error("corrupt zip still in place")
	}
}

func TestRunRepair(t *testing.T) {
	store, src, c := newFixture(t)
	ctx := t.Context()
	good, _ := store.Get(ctx, "example.com/m1/@v/v1.0.0.mod")
	goodMod, _ := io.ReadAll(good)
	corrupt(t, store, "example.com/m1/@v/v1.0.0.mod")
	var repaired []string
	sum, findings, err := c.Run(ctx, RunOptions{Repair: func(ctx context.Context, path, version, key string) error {
		repaired = append(repaired, key)
		return store.Put(ctx, key, bytes.NewReader(goodMod))
	}})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Repaired != 1 || sum.Problems() || len(repaired) != 1 || findings[0].Action != "repaired" {
		t.Errorf("repair: summary %+v, findings %+v, repaired %q", sum, findings, repaired)
	}
	// A repair that brings back bad bytes is not a repair.
	corrupt(t, store, "example.com/m1/@v/v1.0.0.mod")
	_ = src
	sum, findings, _ = c.Run(ctx, RunOptions{Repair: func(ctx context.Context, path, version, key string) error {
		return store.Put(ctx, key, bytes.NewReader([]byte("module evil\n")))
	}})
	if sum.Repaired != 0 || !sum.Problems() || len(findings) != 1 || findings[0].Action == "repaired" {
		t.Errorf("bad repair: summary %+v, findings %+v", sum, findings)
	}
}

func TestGuard(t *testing.T) {
	store, src, c := newFixture(t)
	ctx := t.Context()
	var found []Finding
	g := NewGuard(GuardConfig{Checker: c, OnCorrupt: func(f Finding) { found = append(found, f) }})
	hit := func(path, key string) ([]byte, error) {
		rc, err := store.Get(ctx, key)
		if err != nil {
			return nil, err
		}
		body, err := g.CheckHit(ctx, path, "v1.0.0", key, rc)
		if err != nil {
			return nil, err
		}
		defer body.Close()
		return io.ReadAll(body)
	}
	for _, key := range []string{"example.com/m0/@v/v1.0.0.mod", "example.com/m0/@v/v1.0.0.zip"} {
		want, _ := store.Get(ctx, key)
		wantData, _ := io.ReadAll(want)
		got, err := hit("example.com/m0", key)
		if err != nil || !bytes.Equal(got, wantData) {
			t.Errorf("good %s: %v, body equal %v", key, err, bytes.Equal(got, wantData))
		}
	}
	// A corrupt file is refused and quarantined; the next hit finds none.
	for _, key := range []string{"example.com/m1/@v/v1.0.0.mod", "example.com/m1/@v/v1.0.0.zip"} {
		corrupt(t, store, key)
		if _, err := hit("example.com/m1", key); !errors.Is(err, ErrCorrupt) {
			t.Errorf("corrupt %s: err = %v, want ErrCorrupt", key, err)
		}
		if _, err := store.Get(ctx, QuarantinePrefix+key); err != nil {
			t.Errorf("%s not quarantined: %v", key, err)
		}
		if _, err := hit("example.com/m1", key); err == nil {
			t.Errorf("%s still served after quarantine", key)
		}
	}
	if len(found) != 2 {
		t.Errorf("OnCorrupt called %d times, want 2", len(found))
	}
	// A file that cannot be verified now is served, and checked again on
	// its next hit.
	corrupt(t, store, "example.com/m2/@v/v1.0.0.mod")
	src.err = errors.New("database down")
	if _, err := hit("example.com/m2", "example.com/m2/@v/v1.0.0.mod"); err != nil {
		t.Errorf("unverifiable file refused: %v", err)
	}
	src.err = nil
	if _, err := hit("example.com/m2", "example.com/m2/@v/v1.0.0.mod"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("after the database answered again: err = %v, want ErrCorrupt", err)
	}
	src.err = errors.New("database down")
	// A file verified once is not hashed again while its stamp holds:
	// with the source failing, a good file is still served.
	if _, err := hit("example.com/m0", "example.com/m0/@v/v1.0.0.zip"); err != nil {
		t.Errorf("verified file refused on a later hit: %v", err)
	}
}

// TestGuardVerified: a file this process has just filled is recorded as
// checked, so its first hit costs a Stat, not a second hash. The proof: a
// file whose published hash disagrees (as if the fill had verified other
// bytes) is served, where an unrecorded one is refused; a change of size
// or time is checked again.
func TestGuardVerified(t *testing.T) {
	store, err := disk.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	src := &fakeSource{mod: map[string]string{}, zip: map[string]string{}}
	testModule(t, storage.Store(store), src, "example.com/m", "v1.0.0")
	c := &Checker{Store: store, Sources: []Source{src}, ScratchDir: t.TempDir()}
	g := NewGuard(GuardConfig{Checker: c})
	ctx := t.Context()
	key, _ := FileKey("example.com/m", "v1.0.0", "zip")
	src.zip["example.com/m@v1.0.0"] = "h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	hit := func() error {
		rc, err := store.Get(ctx, key)
		if err != nil {
			return err
		}
		body, err := g.CheckHit(ctx, "example.com/m", "v1.0.0", key, rc)
		if err == nil {
			body.Close()
		}
		return err
	}
	rc, err := store.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	g.Verified(key, rc)
	rc.Close()
	if err := hit(); err != nil {
		t.Fatalf("hit after Verified was hashed again: %v", err)
	}
	g.forget(key)
	if err := hit(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("hit without Verified: err %v, want ErrCorrupt", err)
	}
}
