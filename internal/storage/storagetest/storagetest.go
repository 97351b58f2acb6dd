// Package storagetest is the conformance suite for storage.Store
// implementations. Every backend's tests call Run with a constructor for an
// empty store:
//
//	func TestConformance(t *testing.T) {
//		storagetest.Run(t, func(t *testing.T) storage.Store {
//			s, err := disk.New(t.TempDir())
//			if err != nil {
//				t.Fatal(err)
//			}
//			return s
//		})
//	}
//
// The suite checks the contract written on storage.Store and on the optional
// interfaces the store implements (storage.Lister, storage.Deleter,
// storage.FilePutter), and the Seek and Stat methods of the readers Get
// returns when they have them. Tests of an interface the store does not
// implement are skipped. Backend-specific behaviour (on-disk layout, temp
// file clean-up) is tested by the backend itself.
package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/modgate/modgate/internal/storage"
)

// Run runs the conformance suite as subtests of t. newStore must return a
// new, empty store each time it is called, cleaned up through t.
func Run(t *testing.T, newStore func(t *testing.T) storage.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s storage.Store)
	}{
		{"GetAbsent", testGetAbsent},
		{"RoundTrip", testRoundTrip},
		{"Replace", testReplace},
		{"PutCopies", testPutCopies},
		{"InvalidNames", testInvalidNames},
		{"FailingReader", testFailingReader},
		{"CancelledContext", testCancelledContext},
		{"CancelWhileReading", testCancelWhileReading},
		{"OpenReaderSurvivesReplace", testOpenReaderSurvivesReplace},
		{"ConcurrentReaders", testConcurrentReaders},
		{"List", testList},
		{"Delete", testDelete},
		{"PutFile", testPutFile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, newStore(t))
		})
	}
}

// HostileNames returns keys every store must refuse with
// storage.ErrInvalidName: absolute, unclean, parent-relative, hidden and
// backslashed paths. Backends use the list to check that refusing them
// wrote nothing.
func HostileNames() []string {
	return []string{
		"",
		"/abs",
		"/",
		".",
		"..",
		"../escape",
		"a/../b",
		"a/b/..",
		"a//b",
		"a\x00b",
		"a\nb",
		"a/",
		"./a",
		"a/./b",
		".tmp/x",
		".tmp-123",
		"a/.hidden",
		`a\b`,
		`..\escape`,
	}
}

// errBoom is what failing readers return; Put must pass it through.
var errBoom = errors.New("boom")

const (
	zipName  = "example.com/mod/@v/v1.0.0.zip"
	listName = "example.com/mod/@v/list"
	modDir   = "example.com/mod/@v/"
)

func testGetAbsent(t *testing.T, s storage.Store) {
	mustPut(t, s, listName, []byte("v1.0.0\n"))
	for _, name := range []string{
		zipName,                  // never stored
		"example.com/mod/@v",     // a directory holding a stored file
		"example.com/mod",        // a directory further up
		listName + "/v1.0.0",     // below a stored file
		"example.com/other/@v/x", // unrelated
	} {
		r, err := s.Get(t.Context(), name)
		if err == nil {
			r.Close()
		}
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Get(%q) error = %v, want one matching fs.ErrNotExist", name, err)
		}
	}
}

func testRoundTrip(t *testing.T, s storage.Store) {
	big := Content(5<<20, 1)
	tests := []struct {
		name string
		key  string
		data []byte
		wrap func(io.Reader) io.Reader // how Put sees the data
	}{
		{"empty", "example.com/mod/@v/v1.0.0.info", nil, nil},
		{"small", "example.com/mod/@v/v1.0.0.mod", []byte("module example.com/mod\n"), nil},
		{"one byte at a time", "example.com/mod/@v/list", []byte("v1.0.0\nv1.1.0\n"), iotest.OneByteReader},
		{"data with EOF", "example.com/!upper/@v/v1.0.0.mod", []byte("module example.com/Upper\n"), iotest.DataErrReader},
		{"5 MB", zipName, big, nil},
		{"5 MB in halves", "example.com/mod/@v/v1.1.0.zip", big, iotest.HalfReader},
		{"sumdb tile", "sumdb/sum.example.org/tile/8/0/x001/234.p/5", Content(8192, 2), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r io.Reader = bytes.NewReader(tt.data)
			if tt.wrap != nil {
				r = tt.wrap(r)
			}
			if err := s.Put(t.Context(), tt.key, r); err != nil {
				t.Fatalf("Put(%q) = %v", tt.key, err)
			}
			checkContent(t, s, tt.key, tt.data)
		})
	}
}

func testReplace(t *testing.T, s storage.Store) {
	long := Content(100_000, 3)
	short := []byte("v1.0.0\n")
	mustPut(t, s, listName, long)
	mustPut(t, s, listName, short) // shorter, so a missing truncation shows
	checkContent(t, s, listName, short)
	mustPut(t, s, listName, nil)
	checkContent(t, s, listName, nil)
	checkList(t, s, modDir, []string{"list"})
}

func testPutCopies(t *testing.T, s storage.Store) {
	buf := []byte("module example.com/mod\n")
	want := bytes.Clone(buf)
	mustPut(t, s, listName, buf)
	for i := range buf {
		buf[i] = 'x'
	}
	checkContent(t, s, listName, want)
}

func testInvalidNames(t *testing.T, s storage.Store) {
	for _, name := range HostileNames() {
		if err := s.Put(t.Context(), name, strings.NewReader("evil")); !errors.Is(err, storage.ErrInvalidName) {
			t.Errorf("Put(%q) = %v, want an error matching storage.ErrInvalidName", name, err)
		}
		r, err := s.Get(t.Context(), name)
		if err == nil {
			r.Close()
		}
		if !errors.Is(err, storage.ErrInvalidName) {
			t.Errorf("Get(%q) error = %v, want one matching storage.ErrInvalidName", name, err)
		}
		if d, ok := s.(storage.Deleter); ok {
			if err := d.Delete(t.Context(), name); !errors.Is(err, storage.ErrInvalidName) {
				t.Errorf("Delete(%q) = %v, want an error matching storage.ErrInvalidName", name, err)
			}
		}
		if fp, ok := s.(storage.FilePutter); ok {
			local := writeLocal(t, []byte("evil"))
			if err := fp.PutFile(t.Context(), name, local); !errors.Is(err, storage.ErrInvalidName) {
				t.Errorf("PutFile(%q) = %v, want an error matching storage.ErrInvalidName", name, err)
			}
			if _, err := os.Stat(local); err != nil {
				t.Errorf("after a refused PutFile(%q), the local file is gone: %v", name, err)
			}
		}
	}
	// A store that cleaned the name instead of refusing it would have
	// written under the cleaned name.
	for _, name := range HostileNames() {
		cleaned := strings.TrimLeft(path.Clean(strings.ReplaceAll(name, `\`, "/")), "/")
		if storage.CheckName(cleaned) == nil {
			checkAbsent(t, s, cleaned)
		}
	}
	if l, ok := s.(storage.Lister); ok {
		for _, dir := range []string{"a/", "escape/", "b/"} {
			if names, err := l.List(t.Context(), dir); err != nil || len(names) > 0 {
				t.Errorf("List(%q) = %q, %v, want nothing", dir, names, err)
			}
		}
	}
}

func testFailingReader(t *testing.T, s storage.Store) {
	tests := []struct {
		name   string
		before []byte // content stored before the failing Put; nil means none
		r      io.Reader
	}{
		{"absent before", nil, io.MultiReader(bytes.NewReader(Content(300_000, 4)), iotest.ErrReader(errBoom))},
		{"previous content", []byte("v1.0.0\n"), io.MultiReader(bytes.NewReader(Content(300_000, 5)), iotest.ErrReader(errBoom))},
		{"error with data", []byte("v0.1.0\n"), iotest.DataErrReader(io.MultiReader(strings.NewReader("v9"), iotest.ErrReader(errBoom)))},
		{"fails at once", []byte("v0.2.0\n"), iotest.ErrReader(errBoom)},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := fmt.Sprintf("example.com/fail%d/@v/list", i)
			if tt.before != nil {
				mustPut(t, s, name, tt.before)
			}
			if err := s.Put(t.Context(), name, tt.r); !errors.Is(err, errBoom) {
				t.Errorf("Put(%q, failing reader) = %v, want an error matching %v", name, err, errBoom)
			}
			dir := path.Dir(name) + "/"
			if tt.before != nil {
				checkContent(t, s, name, tt.before)
				checkList(t, s, dir, []string{"list"})
			} else {
				checkAbsent(t, s, name)
				checkList(t, s, dir, nil)
			}
		})
	}
}

func testCancelledContext(t *testing.T, s storage.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()

	if err := s.Put(ctx, zipName, bytes.NewReader(Content(1000, 6))); !errors.Is(err, context.Canceled) {
		t.Errorf("Put(%q) with a cancelled context = %v, want an error matching context.Canceled", zipName, err)
	}
	checkAbsent(t, s, zipName)

	old := []byte("v1.0.0\n")
	mustPut(t, s, listName, old)
	if err := s.Put(ctx, listName, strings.NewReader("v2.0.0\n")); !errors.Is(err, context.Canceled) {
		t.Errorf("Put(%q) with a cancelled context = %v, want an error matching context.Canceled", listName, err)
	}
	checkContent(t, s, listName, old)

	if fp, ok := s.(storage.FilePutter); ok {
		local := writeLocal(t, []byte("new"))
		if err := fp.PutFile(ctx, zipName, local); !errors.Is(err, context.Canceled) {
			t.Errorf("PutFile(%q) with a cancelled context = %v, want an error matching context.Canceled", zipName, err)
		}
		checkAbsent(t, s, zipName)
		if _, err := os.Stat(local); err != nil {
			t.Errorf("after a failed PutFile(%q), the local file is gone: %v", zipName, err)
		}
	}
	checkList(t, s, modDir, []string{"list"})
}

// cancellingReader cancels its context after handing out the first chunk,
// then keeps serving data as if nothing happened.
type cancellingReader struct {
	r      io.Reader
	cancel context.CancelFunc
}

func (c *cancellingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p[:min(len(p), 4096)])
	c.cancel()
	return n, err
}

func testCancelWhileReading(t *testing.T, s storage.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	r := &cancellingReader{r: bytes.NewReader(Content(1<<20, 7)), cancel: cancel}
	if err := s.Put(ctx, zipName, r); err == nil {
		t.Errorf("Put(%q) with a context cancelled while reading = nil, want an error", zipName)
	}
	checkAbsent(t, s, zipName)
	checkList(t, s, modDir, nil)
}

// testOpenReaderSurvivesReplace checks that a reader opened before a Put
// keeps reading the old content to the end. It replaces a mutable name:
// stores shared by replicas keep the first copy of an immutable one (see
// storage.Immutable).
func testOpenReaderSurvivesReplace(t *testing.T, s storage.Store) {
	old, replacement := Content(1<<20, 8), Content(1<<19, 9)
	mustPut(t, s, listName, old)
	r, err := s.Get(t.Context(), listName)
	if err != nil {
		t.Fatalf("Get(%q) = %v", listName, err)
	}
	defer r.Close()
	head := make([]byte, 1000)
	if _, err := io.ReadFull(r, head); err != nil {
		t.Fatalf("reading the head of %q: %v", listName, err)
	}
	mustPut(t, s, listName, replacement)
	rest, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("reading the rest of %q after a replacing Put: %v", listName, err)
	}
	if got := append(head, rest...); !bytes.Equal(got, old) {
		t.Errorf("a reader opened before Put(%q) read %s, want the old content (%d bytes)", listName, describe(got, old), len(old))
	}
	checkContent(t, s, listName, replacement)
}

func testList(t *testing.T, s storage.Store) {
	l, ok := s.(storage.Lister)
	if !ok {
		t.Skip("store does not implement storage.Lister")
	}
	for _, name := range []string{
		"example.com/mod/@v/v1.1.0.mod",
		"example.com/mod/@v/list",
		"example.com/mod/@v/v1.0.0.zip",
		"example.com/mod/@v/v1.0.0.info",
		"example.com/mod/@v/sub/deeper", // in a subdirectory: not listed
		"example.com/mod/@vx",           // shares the prefix without the slash
		"example.com/mod/@v2/v1.0.0.mod",
	} {
		mustPut(t, s, name, []byte(name))
	}
	checkList(t, s, modDir, []string{"list", "v1.0.0.info", "v1.0.0.zip", "v1.1.0.mod"})
	checkList(t, s, "example.com/mod/@v/sub/", []string{"deeper"})
	checkList(t, s, "example.com/missing/@v/", nil)
	checkList(t, s, "example.com/mod/@v/list/", nil) // a file, not a directory

	for _, dir := range []string{"", "example.com/mod/@v", "/example.com/", "../", "a//", ".tmp/", "a/../b/"} {
		if names, err := l.List(t.Context(), dir); !errors.Is(err, storage.ErrInvalidName) {
			t.Errorf("List(%q) = %q, %v, want an error matching storage.ErrInvalidName", dir, names, err)
		}
	}
}

func testDelete(t *testing.T, s storage.Store) {
	d, ok := s.(storage.Deleter)
	if !ok {
		t.Skip("store does not implement storage.Deleter")
	}
	keep := []byte("v1.0.0\n")
	mustPut(t, s, zipName, Content(1000, 10))
	mustPut(t, s, listName, keep)
	if err := d.Delete(t.Context(), zipName); err != nil {
		t.Fatalf("Delete(%q) = %v", zipName, err)
	}
	checkAbsent(t, s, zipName)
	checkContent(t, s, listName, keep)
	checkList(t, s, modDir, []string{"list"})
	for _, name := range []string{
		zipName,                     // already deleted
		"example.com/never/@v/list", // never stored
		"example.com/mod/@v",        // only a directory
		listName + "/below",         // below a file
	} {
		if err := d.Delete(t.Context(), name); err != nil {
			t.Errorf("Delete(%q) of an absent name = %v, want nil", name, err)
		}
	}
	checkContent(t, s, listName, keep)
}

func testPutFile(t *testing.T, s storage.Store) {
	fp, ok := s.(storage.FilePutter)
	if !ok {
		t.Skip("store does not implement storage.FilePutter")
	}
	for _, data := range [][]byte{Content(3<<20, 11), []byte("replaced"), nil} {
		local := writeLocal(t, data)
		if err := fp.PutFile(t.Context(), listName, local); err != nil {
			t.Fatalf("PutFile(%q, %q) = %v", listName, local, err)
		}
		if _, err := os.Lstat(local); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("after PutFile(%q, %q), Lstat of the local file = %v, want fs.ErrNotExist", listName, local, err)
		}
		checkContent(t, s, listName, data)
	}
	checkList(t, s, modDir, []string{"list"})

	missing := filepath.Join(t.TempDir(), "missing")
	if err := fp.PutFile(t.Context(), zipName, missing); err == nil {
		t.Errorf("PutFile(%q, %q) of a missing local file = nil, want an error", zipName, missing)
	}
	checkAbsent(t, s, zipName)
}

// Content returns n deterministic pseudo-random bytes; different seeds give
// different content.
func Content(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, uint64(n)))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}
