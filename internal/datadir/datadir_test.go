package datadir

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modgate/modgate/internal/storage"
)

// singleNode writes the module store of a single modgate's data directory.
func singleNode(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range map[string]string{
		"modules/example.com/hello/@v/v1.0.0.mod":                "module example.com/hello\n",
		"modules/example.com/hello/@v/v1.0.0.zip":                "zip bytes",
		"modules/example.com/hello/@v/list":                      "v1.0.0\n",
		"modules/example.com/hello/@v/.tmp-123":                  "an interrupted write",
		"modules/sumdb/sum.test/lookup/example.com/hello@v1.0.0": "lookup",
	} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func read(t *testing.T, s storage.Store, name string) string {
	t.Helper()
	rc, err := s.Get(context.Background(), name)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	return string(b)
}

// TestImport: every stored file is copied once, temporary files never; a
// second run copies nothing; the source is left as it was.
func TestImport(t *testing.T) {
	src := singleNode(t)
	store := storage.NewMemory()
	r, err := Import(t.Context(), src, Target{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	if r.Files != 4 || len(r.Conflicts) != 0 {
		t.Errorf("first import: %+v, want 4 files", r)
	}
	if got := read(t, store, "example.com/hello/@v/v1.0.0.zip"); got != "zip bytes" {
		t.Errorf("zip = %q", got)
	}
	if got := read(t, store, "sumdb/sum.test/lookup/example.com/hello@v1.0.0"); got != "lookup" {
		t.Errorf("lookup = %q", got)
	}
	if _, err := os.Stat(filepath.Join(src, "modules/example.com/hello/@v/.tmp-123")); err != nil {
		t.Errorf("the source changed: %v", err)
	}
	r, err = Import(t.Context(), src, Target{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	if r.Files != 0 || r.FilesSkipped != 4 {
		t.Errorf("second import: %+v, want everything skipped", r)
	}
}

// TestImportConflicts: an immutable file the destination holds with other
// bytes is named and left alone, a list there is kept, and everything else
// is still copied.
func TestImportConflicts(t *testing.T) {
	src := singleNode(t)
	ctx := t.Context()
	store := storage.NewMemory()
	store.Put(ctx, "example.com/hello/@v/v1.0.0.mod", strings.NewReader("module evil\n"))
	store.Put(ctx, "example.com/hello/@v/list", strings.NewReader("v1.0.0\nv1.1.0\n"))
	r, err := Import(ctx, src, Target{Store: store})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("Import = %v, want ErrConflict", err)
	}
	if want := []string{"module file example.com/hello/@v/v1.0.0.mod"}; strings.Join(r.Conflicts, "\n") != strings.Join(want, "\n") {
		t.Errorf("conflicts %q, want %q", r.Conflicts, want)
	}
	if got := read(t, store, "example.com/hello/@v/v1.0.0.mod"); got != "module evil\n" {
		t.Errorf("a conflicting file was replaced: %q", got)
	}
	if got := read(t, store, "example.com/hello/@v/list"); got != "v1.0.0\nv1.1.0\n" {
		t.Errorf("the cluster's list was replaced: %q", got)
	}
	if r.Files != 2 || r.FilesSkipped != 1 {
		t.Errorf("report %+v: want the zip and the lookup copied, the list kept", r)
	}
	if _, err := Import(ctx, filepath.Join(src, "missing"), Target{Store: store}); err == nil {
		t.Error("Import of a missing directory succeeded")
	}
}
