package storage_test

import (
	"io"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/storage"
	"github.com/modgate/modgate/internal/storage/storagetest"
)

func TestMemoryConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		return storage.NewMemory()
	})
}

func TestMemoryStat(t *testing.T) {
	m := storage.NewMemory()
	name := "example.com/lib/@v/v1.0.0.mod"
	before := time.Now()
	if err := m.Put(t.Context(), name, strings.NewReader("module example.com/lib\n")); err != nil {
		t.Fatalf("Put(%q) = %v", name, err)
	}
	r, err := m.Get(t.Context(), name)
	if err != nil {
		t.Fatalf("Get(%q) = %v", name, err)
	}
	defer r.Close()
	fi, err := r.(interface{ Stat() (fs.FileInfo, error) }).Stat()
	if err != nil {
		t.Fatalf("Get(%q): Stat() = %v", name, err)
	}
	if fi.Name() != "v1.0.0.mod" || fi.Size() != 23 || fi.ModTime().Before(before) || fi.IsDir() {
		t.Errorf("Get(%q): Stat() = name %q, size %d, mod time %v, dir %v; want v1.0.0.mod, 23, not before %v, false",
			name, fi.Name(), fi.Size(), fi.ModTime(), fi.IsDir(), before)
	}

	// A reader keeps its content after a Delete, like an open file.
	if err := m.Delete(t.Context(), name); err != nil {
		t.Fatalf("Delete(%q) = %v", name, err)
	}
	if got, err := io.ReadAll(r); err != nil || string(got) != "module example.com/lib\n" {
		t.Errorf("reading a reader opened before Delete = %q, %v, want the content", got, err)
	}
}
