package disk

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/modgate/modgate/internal/storage"
	"github.com/modgate/modgate/internal/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		return newStore(t)
	})
}

// newStore returns a store in a new directory of its own, so that tests can
// look at the directory around it.
func newStore(t *testing.T) *Store {
	t.Helper()
	root := filepath.Join(t.TempDir(), "store")
	s, err := New(root)
	if err != nil {
		t.Fatalf("New(%q) = %v", root, err)
	}
	return s
}

// tree lists everything below dir, sorted, as slash paths relative to dir:
// directories end in "/", symbolic links in "@".
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var entries []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		switch {
		case d.IsDir():
			rel += "/"
		case d.Type()&fs.ModeSymlink != 0:
			rel += "@"
		}
		entries = append(entries, rel)
		return nil
	})
	if err != nil {
		t.Fatalf("walking %s: %v", dir, err)
	}
	return entries
}

func checkTree(t *testing.T, dir string, want []string) {
	t.Helper()
	if diff := cmp.Diff(want, tree(t, dir), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("files below %s mismatch (-want +got):\n%s", dir, diff)
	}
}

// writeFile writes a file with the given age, creating its directory.
func writeFile(t *testing.T, p string, data string, age time.Duration) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	mtime := time.Now().Add(-age)
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

func TestNew(t *testing.T) {
	root := filepath.Join(t.TempDir(), "a", "b")
	s, err := New(root + "/")
	if err != nil {
		t.Fatalf("New(%q) = %v", root+"/", err)
	}
	if s.Root() != root {
		t.Errorf("New(%q).Root() = %q, want %q", root+"/", s.Root(), root)
	}
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		t.Fatalf("after New(%q), Stat(%q) = %v, %v, want a directory", root, root, fi, err)
	}

	// An existing root keeps its content.
	writeFile(t, filepath.Join(root, "example.com/m/@v/list"), "v1.0.0\n", 0)
	s2, err := New(root)
	if err != nil {
		t.Fatalf("New(%q) of an existing root = %v", root, err)
	}
	r, err := s2.Get(t.Context(), "example.com/m/@v/list")
	if err != nil {
		t.Fatalf("Get of a file already in the root = %v", err)
	}
	r.Close()

	file := filepath.Join(root, "example.com/m/@v/list")
	if _, err := New(file); err == nil {
		t.Errorf("New(%q) of a regular file = nil error, want one", file)
	}
}

func TestLayout(t *testing.T) {
	s := newStore(t)
	files := map[string]string{
		"example.com/!corp/lib/@v/v1.2.0.zip":         "zip",
		"example.com/!corp/lib/@v/v1.2.0.mod":         "module example.com/Corp/lib\n",
		"example.com/!corp/lib/@v/list":               "v1.2.0\n",
		"sumdb/sum.example.org/tile/8/0/x001/234.p/5": "tile",
	}
	for name, data := range files {
		if err := s.Put(t.Context(), name, strings.NewReader(data)); err != nil {
			t.Fatalf("Put(%q) = %v", name, err)
		}
	}
	checkTree(t, s.Root(), []string{
		"example.com/",
		"example.com/!corp/",
		"example.com/!corp/lib/",
		"example.com/!corp/lib/@v/",
		"example.com/!corp/lib/@v/list",
		"example.com/!corp/lib/@v/v1.2.0.mod",
		"example.com/!corp/lib/@v/v1.2.0.zip",
		"sumdb/",
		"sumdb/sum.example.org/",
		"sumdb/sum.example.org/tile/",
		"sumdb/sum.example.org/tile/8/",
		"sumdb/sum.example.org/tile/8/0/",
		"sumdb/sum.example.org/tile/8/0/x001/",
		"sumdb/sum.example.org/tile/8/0/x001/234.p/",
		"sumdb/sum.example.org/tile/8/0/x001/234.p/5",
	})
	for name, want := range files {
		p := filepath.Join(s.Root(), filepath.FromSlash(name))
		got, err := os.ReadFile(p)
		if err != nil || string(got) != want {
			t.Errorf("ReadFile(%q) = %q, %v, want %q", p, got, err, want)
		}
		if fi, err := os.Stat(p); err != nil || fi.Mode()&^0o644 != 0 {
			t.Errorf("Stat(%q) = %v, %v, want a regular file with mode at most 0o644", p, fi.Mode(), err)
		}
	}

	local := filepath.Join(t.TempDir(), "local.zip")
	if err := os.WriteFile(local, []byte("zip"), 0o600); err != nil {
		t.Fatal(err)
	}
	name := "example.com/!corp/lib/@v/v1.3.0.zip"
	if err := s.PutFile(t.Context(), name, local); err != nil {
		t.Fatalf("PutFile(%q, %q) = %v", name, local, err)
	}
	p := filepath.Join(s.Root(), filepath.FromSlash(name))
	if fi, err := os.Stat(p); err != nil || fi.Mode() != 0o644 {
		t.Errorf("after PutFile(%q) of a 0o600 file, Stat(%q) = %v, %v, want mode 0o644", name, p, fi.Mode(), err)
	}
}

func TestTempFiles(t *testing.T) {
	s := newStore(t)
	root := s.Root()
	outside := t.TempDir()
	writeFile(t, filepath.Join(outside, ".tmp-outside"), "x", time.Hour)
	if err := s.Put(t.Context(), "example.com/m/@v/list", strings.NewReader("v1.0.0\n")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(root, "example.com/m/@v/.tmp-crashed"), "partial", 2*time.Minute)
	writeFile(t, filepath.Join(root, "example.com/m/@v/.tmp-writing"), "partial", 0)
	writeFile(t, filepath.Join(root, ".tmp-top"), "partial", time.Hour)
	writeFile(t, filepath.Join(root, ".git/.tmp-operator"), "kept", time.Hour)
	if err := os.MkdirAll(filepath.Join(root, "example.com/.tmp-dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "example.com/link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, ".tmp-outside"), filepath.Join(root, "example.com/.tmp-link")); err != nil {
		t.Fatal(err)
	}

	if _, err := s.Get(t.Context(), "example.com/m/@v/.tmp-crashed"); !errors.Is(err, storage.ErrInvalidName) {
		t.Errorf("Get of a temporary file: error = %v, want one matching storage.ErrInvalidName", err)
	}
	names, err := s.List(t.Context(), "example.com/m/@v/")
	if err != nil || !cmp.Equal(names, []string{"list"}) {
		t.Errorf("List(%q) = %q, %v, want [list]", "example.com/m/@v/", names, err)
	}

	removed, err := s.CleanTemp()
	if err != nil || removed != 2 {
		t.Errorf("CleanTemp() = %d, %v, want 2, nil", removed, err)
	}
	checkTree(t, root, []string{
		".git/",
		".git/.tmp-operator",
		"example.com/",
		"example.com/.tmp-dir/",
		"example.com/.tmp-link@",
		"example.com/link@",
		"example.com/m/",
		"example.com/m/@v/",
		"example.com/m/@v/.tmp-writing",
		"example.com/m/@v/list",
	})
	checkTree(t, outside, []string{".tmp-outside"})
}

// TestFailedPutLeavesNothing checks what List cannot: that a failed Put
// removes its temporary file.
func TestFailedPutLeavesNothing(t *testing.T) {
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		r    io.Reader
	}{
		{"reader fails", t.Context(), io.MultiReader(strings.NewReader("partial"), iotest.ErrReader(errors.New("boom")))},
		{"reader times out", t.Context(), iotest.TimeoutReader(strings.NewReader("partial"))},
		{"cancelled", cancelled, strings.NewReader("data")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			name := "example.com/m/@v/v1.0.0.zip"
			if err := s.Put(tt.ctx, name, tt.r); err == nil {
				t.Fatalf("Put(%q) = nil, want an error", name)
			}
			for _, entry := range tree(t, s.Root()) {
				if !strings.HasSuffix(entry, "/") {
					t.Errorf("after a failed Put(%q), %s is in the store", name, entry)
				}
			}
		})
	}
}

// TestInvalidNamesWriteNothing checks that refused names leave no trace
// inside or around the root.
func TestInvalidNamesWriteNothing(t *testing.T) {
	s := newStore(t)
	local := filepath.Join(t.TempDir(), "local")
	// The conformance suite checks the errors; this test checks the disk.
	for _, name := range storagetest.HostileNames() {
		_ = s.Put(t.Context(), name, strings.NewReader("evil"))
		if err := os.WriteFile(local, []byte("evil"), 0o644); err != nil {
			t.Fatal(err)
		}
		_ = s.PutFile(t.Context(), name, local)
		_ = s.Delete(t.Context(), name)
	}
	checkTree(t, filepath.Dir(s.Root()), []string{"store/"})
}

// TestPutBelowFile checks a Put that cannot create its directory because a
// file is in the way, which fails even for root.
func TestPutBelowFile(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	if err := s.Put(ctx, "example.com/m", strings.NewReader("file")); err != nil {
		t.Fatal(err)
	}
	name := "example.com/m/@v/list"
	if err := s.Put(ctx, name, strings.NewReader("v1.0.0\n")); err == nil {
		t.Errorf("Put(%q) below a regular file = nil, want an error", name)
	}
	local := filepath.Join(t.TempDir(), "local")
	if err := os.WriteFile(local, []byte("v1.0.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.PutFile(ctx, name, local); err == nil {
		t.Errorf("PutFile(%q) below a regular file = nil, want an error", name)
	}
	if _, err := os.Stat(local); err != nil {
		t.Errorf("after a failed PutFile, Stat of the local file = %v", err)
	}
	if _, err := s.Get(ctx, name); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Get(%q) below a regular file: error = %v, want one matching fs.ErrNotExist", name, err)
	}
	checkTree(t, s.Root(), []string{"example.com/", "example.com/m"})
}

// TestPutReadOnlyDirectory needs a user that file permissions apply to.
func TestPutReadOnlyDirectory(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores directory permissions; TestPutBelowFile covers a failing create")
	}
	s := newStore(t)
	dir := filepath.Join(s.Root(), "example.com/m/@v")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o755) })
	name := "example.com/m/@v/list"
	if err := s.Put(t.Context(), name, strings.NewReader("v1.0.0\n")); err == nil {
		t.Errorf("Put(%q) into a read-only directory = nil, want an error", name)
	}
	checkTree(t, s.Root(), []string{"example.com/", "example.com/m/", "example.com/m/@v/"})
}

func TestPutOverDirectory(t *testing.T) {
	s := newStore(t)
	name := "example.com/m/@v/v1.0.0.zip"
	if err := os.MkdirAll(filepath.Join(s.Root(), name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(t.Context(), name, strings.NewReader("zip")); err == nil {
		t.Errorf("Put(%q) over a directory = nil, want an error", name)
	}
	if err := s.Delete(t.Context(), name); err != nil {
		t.Errorf("Delete(%q) of a directory = %v, want nil", name, err)
	}
	checkTree(t, s.Root(), []string{"example.com/", "example.com/m/", "example.com/m/@v/", "example.com/m/@v/v1.0.0.zip/"})
}

func TestGetNotRegular(t *testing.T) {
	s := newStore(t)
	dir := filepath.Join(s.Root(), "example.com/m/@v")
	if err := os.MkdirAll(filepath.Join(dir, "v1.0.0.zip"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "v1.0.0.mod"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"example.com/m/@v/v1.0.0.zip", "example.com/m/@v/v1.0.0.mod"} {
		// A FIFO must not block Get; the test would time out.
		r, err := s.Get(t.Context(), name)
		if err == nil {
			r.Close()
		}
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Get(%q) of a non-regular file: error = %v, want one matching fs.ErrNotExist", name, err)
		}
	}
	names, err := s.List(t.Context(), "example.com/m/@v/")
	if err != nil || len(names) != 0 {
		t.Errorf("List of a directory holding no regular files = %q, %v, want nothing", names, err)
	}

	long := "example.com/" + strings.Repeat("x", 300)
	if _, err := s.Get(t.Context(), long); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Get of a name longer than the file system allows: error = %v, want one matching fs.ErrNotExist", err)
	}
}

func TestPutFileAcrossFileSystems(t *testing.T) {
	s := newStore(t)
	var renames int
	s.rename = func(oldpath, newpath string) error {
		renames++
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: syscall.EXDEV}
	}
	local := filepath.Join(t.TempDir(), "local")
	want := storagetest.Content(1<<20, 1)
	if err := os.WriteFile(local, want, 0o600); err != nil {
		t.Fatal(err)
	}
	name := "example.com/m/@v/v1.0.0.zip"
	if err := s.PutFile(t.Context(), name, local); err != nil {
		t.Fatalf("PutFile(%q, %q) across file systems = %v", name, local, err)
	}
	if renames == 0 {
		t.Fatal("PutFile did not try to rename")
	}
	if _, err := os.Lstat(local); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after PutFile across file systems, Lstat of the local file = %v, want fs.ErrNotExist", err)
	}
	got, err := os.ReadFile(filepath.Join(s.Root(), name))
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("after PutFile across file systems, the stored file has %d bytes (%v), want the %d bytes of the local file",
			len(got), err, len(want))
	}
	checkTree(t, s.Root(), []string{"example.com/", "example.com/m/", "example.com/m/@v/", "example.com/m/@v/v1.0.0.zip"})
}

// BenchmarkGet measures the cache-hit path: Get, Stat and reading a
// typical .mod-sized file, against the same work done directly with
// os.Open as a static file server would.
func BenchmarkGet(b *testing.B) {
	s, err := New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	name := "example.com/!corp/lib/@v/v1.2.0.mod"
	data := storagetest.Content(4096, 1)
	if err := s.Put(b.Context(), name, bytes.NewReader(data)); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 8192)
	serve := func(b *testing.B, f io.ReadCloser) {
		if _, err := f.(interface{ Stat() (fs.FileInfo, error) }).Stat(); err != nil {
			b.Fatal(err)
		}
		if n, err := io.ReadFull(f, buf[:len(data)]); err != nil || n != len(data) {
			b.Fatalf("read %d bytes, %v", n, err)
		}
		f.Close()
	}

	b.Run("store", func(b *testing.B) {
		b.ReportAllocs()
		ctx := b.Context()
		for b.Loop() {
			f, err := s.Get(ctx, name)
			if err != nil {
				b.Fatal(err)
			}
			serve(b, f)
		}
	})
	b.Run("os.Open", func(b *testing.B) {
		b.ReportAllocs()
		p := filepath.Join(s.Root(), name)
		for b.Loop() {
			f, err := os.Open(p)
			if err != nil {
				b.Fatal(err)
			}
			serve(b, f)
		}
	})
}
