package storage_test

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/storage"
	"github.com/modgate/modgate/internal/storage/storagetest"
)

func TestCheckName(t *testing.T) {
	tests := []struct {
		name string
		key  string
		ok   bool
	}{
		{"zip", "example.com/!corp/lib/@v/v1.2.0.zip", true},
		{"list", "example.com/lib/@v/list", true},
		{"latest", "example.com/lib/@latest", true},
		{"sumdb tile", "sumdb/sum.example.org/tile/8/0/x001/234.p/5", true},
		{"dots inside an element", "example.com/a..b/@v/v1.0.0-rc.1..info", true},
		{"one element", "file", true},
		{"unicode", "example.com/ü/@v/list", true},
		{"empty", "", false},
		{"absolute", "/abs", false},
		{"slash", "/", false},
		{"dot", ".", false},
		{"dot dot", "..", false},
		{"parent element", "a/../b", false},
		{"trailing parent", "a/b/..", false},
		{"double slash", "a//b", false},
		{"trailing slash", "a/", false},
		{"leading dot slash", "./a", false},
		{"inner dot", "a/./b", false},
		{"temp directory", ".tmp/x", false},
		{"temp file", "a/.tmp-123", false},
		{"hidden", "a/.hidden", false},
		{"backslash", `a\b`, false},
		{"invalid utf-8", "a/\xff", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := storage.CheckName(tt.key)
			if tt.ok && err != nil {
				t.Errorf("CheckName(%q) = %v, want nil", tt.key, err)
			}
			if !tt.ok && !errors.Is(err, storage.ErrInvalidName) {
				t.Errorf("CheckName(%q) = %v, want an error matching ErrInvalidName", tt.key, err)
			}
		})
	}
}

func TestCheckDir(t *testing.T) {
	tests := []struct {
		name string
		dir  string
		ok   bool
	}{
		{"version directory", "example.com/lib/@v/", true},
		{"one element", "example.com/", true},
		{"empty", "", false},
		{"root", "/", false},
		{"no slash", "example.com/lib/@v", false},
		{"two slashes", "example.com//", false},
		{"parent", "../", false},
		{"hidden", ".tmp/", false},
		{"absolute", "/example.com/", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := storage.CheckDir(tt.dir)
			if tt.ok && err != nil {
				t.Errorf("CheckDir(%q) = %v, want nil", tt.dir, err)
			}
			if !tt.ok && !errors.Is(err, storage.ErrInvalidName) {
				t.Errorf("CheckDir(%q) = %v, want an error matching ErrInvalidName", tt.dir, err)
			}
		})
	}
}

func TestFileInfo(t *testing.T) {
	mod := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	fi := storage.FileInfo{FileName: "example.com/lib/@v/v1.0.0.zip", FileSize: 42, FileModTime: mod}
	if fi.Name() != "v1.0.0.zip" || fi.Size() != 42 || !fi.ModTime().Equal(mod) ||
		fi.IsDir() || !fi.Mode().IsRegular() || fi.Sys() != nil {
		t.Errorf("FileInfo %+v reports Name %q, Size %d, ModTime %v, IsDir %v, Mode %v, Sys %v",
			fi, fi.Name(), fi.Size(), fi.ModTime(), fi.IsDir(), fi.Mode(), fi.Sys())
	}
}

// FuzzCheckName checks that every name CheckName accepts is safe to use as
// a path below a store's root, in particular by the disk store, which
// appends the name to its root without cleaning it.
func FuzzCheckName(f *testing.F) {
	for _, name := range storagetest.HostileNames() {
		f.Add(name)
	}
	for _, name := range []string{
		"example.com/!corp/lib/@v/v1.2.0.zip",
		"sumdb/sum.example.org/lookup/example.com/lib@v1.0.0",
		"a..b/c..",
		"a/\x00b",
		"a/\xff",
		"C:/x",
		"~/x",
	} {
		f.Add(name)
	}
	const root = "/srv/modgate"
	f.Fuzz(func(t *testing.T, name string) {
		if storage.CheckName(name) != nil {
			return
		}
		if !fs.ValidPath(name) {
			t.Errorf("CheckName(%q) = nil, but fs.ValidPath is false", name)
		}
		if !filepath.IsLocal(name) {
			t.Errorf("CheckName(%q) = nil, but filepath.IsLocal is false", name)
		}
		if strings.HasPrefix(name, "/") {
			t.Errorf("CheckName(%q) = nil for an absolute name", name)
		}
		for elem := range strings.SplitSeq(name, "/") {
			if elem == ".." || strings.HasPrefix(elem, ".") {
				t.Errorf("CheckName(%q) = nil, but element %q starts with a dot", name, elem)
			}
		}
		joined := filepath.Join(root, name)
		if rel, err := filepath.Rel(root, joined); err != nil || !filepath.IsLocal(rel) {
			t.Errorf("CheckName(%q) = nil, but filepath.Join(%q, name) = %q is outside the root", name, root, joined)
		}
		if concat := root + string(filepath.Separator) + filepath.FromSlash(name); concat != joined {
			t.Errorf("CheckName(%q) = nil, but appending it to %q gives %q, not the clean %q", name, root, concat, joined)
		}
	})
}
