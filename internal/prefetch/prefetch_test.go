package prefetch

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/mod/module"
)

func write(t *testing.T, name, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestReadGoSum: a go.sum line names the .mod, or all three files; a
// malformed line or version is an error naming the line.
func TestReadGoSum(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "go.sum")
	write(t, good, "example.com/a v1.0.0 h1:x=\nexample.com/a v1.0.0/go.mod h1:y=\n\nexample.com/b v1.1.0/go.mod h1:z=\n")
	files, err := readGoSum(good)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		got = append(got, f.m.Path+"@"+f.m.Version+f.ext)
	}
	want := []string{"example.com/a@v1.0.0.info", "example.com/a@v1.0.0.mod", "example.com/a@v1.0.0.zip", "example.com/a@v1.0.0.mod", "example.com/b@v1.1.0.mod"}
	if !slices.Equal(got, want) {
		t.Errorf("readGoSum = %v, want %v", got, want)
	}
	for _, bad := range []string{"example.com/a v1.0.0\n", "example.com/a master h1:x=\n", "Example.com/../x v1.0.0 h1:x=\n"} {
		name := filepath.Join(t.TempDir(), "go.sum")
		write(t, name, bad)
		if _, err := readGoSum(name); err == nil || !strings.Contains(err.Error(), ":1:") {
			t.Errorf("readGoSum(%q) = %v, want an error naming line 1", bad, err)
		}
	}
}

// TestFindProjects: every go.mod and go.sum below a directory, except in
// vendor, testdata and hidden directories.
func TestFindProjects(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"go.mod", "go.sum", "tools/go.mod", "vendor/x/go.mod", "testdata/y/go.mod", ".git/go.mod", "_old/go.mod"} {
		write(t, filepath.Join(dir, f), "module x\n")
	}
	mods, sums, err := FindProjects(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{filepath.Join(dir, "go.mod"), filepath.Join(dir, "tools", "go.mod")}; !slices.Equal(mods, want) {
		t.Errorf("go.mod files = %v, want %v", mods, want)
	}
	if want := []string{filepath.Join(dir, "go.sum")}; !slices.Equal(sums, want) {
		t.Errorf("go.sum files = %v, want %v", sums, want)
	}
}

// TestFileURL: module paths and versions are escaped as the protocol says.
func TestFileURL(t *testing.T) {
	c := &Client{Base: "http://127.0.0.1:1"}
	got, err := c.fileURL(module.Version{Path: "example.com/Upper", Version: "v2.0.0+incompatible"}, ".zip")
	if want := "http://127.0.0.1:1/example.com/!upper/@v/v2.0.0+incompatible.zip"; err != nil || got != want {
		t.Errorf("fileURL = %q, %v; want %q", got, err, want)
	}
	if _, err := c.fileURL(module.Version{Path: "example.com/x", Version: "v1.0.0/../../y"}, ".zip"); err == nil {
		t.Errorf("fileURL accepted a version with a path in it")
	}
}
