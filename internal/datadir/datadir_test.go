package datadir

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/auth"
	"github.com/modgate/modgate/internal/ledger"
	"github.com/modgate/modgate/internal/storage"
	"github.com/modgate/modgate/internal/sumdb"
)

// memTokens is a TokenStore in memory.
type memTokens struct {
	mu   sync.Mutex
	recs map[string]auth.TokenRecord
}

func (m *memTokens) Get(_ context.Context, id string) (auth.TokenRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.recs[id]
	if !ok {
		return r, fs.ErrNotExist
	}
	return r, nil
}

func (m *memTokens) List(context.Context) ([]auth.TokenRecord, error) { return nil, nil }

func (m *memTokens) Insert(_ context.Context, rec auth.TokenRecord) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.recs {
		if r.ID == rec.ID || r.Name == rec.Name {
			return auth.ErrNameTaken
		}
	}
	m.recs[rec.ID] = rec
	return nil
}

func (m *memTokens) Delete(context.Context, string) (auth.TokenRecord, error) {
	return auth.TokenRecord{}, errors.ErrUnsupported
}

// memLedger is a ledger Backend in memory.
type memLedger struct{ recs map[string]ledger.Record }

func (m *memLedger) Lookup(_ context.Context, k string) (ledger.Record, bool, error) {
	r, ok := m.recs[k]
	return r, ok, nil
}

func (m *memLedger) Record(_ context.Context, k string, rec ledger.Record) (ledger.Record, bool, error) {
	if r, ok := m.recs[k]; ok {
		return r, false, nil
	}
	m.recs[k] = rec
	return rec, true, nil
}

func (m *memLedger) Close() error { return nil }

func head(size string) string {
	return "go.sum database tree\n" + size + "\nf8Xz5tNrPMhZ9p4p9VbN3PEMp9lZP9m3Yd2CtjzqbnI=\n\n— sum.test abc\n"
}

// singleNode writes a data directory like a single modgate's.
func singleNode(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	write := func(name, content string) {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("modules/example.com/hello/@v/v1.0.0.mod", "module example.com/hello\n")
	write("modules/example.com/hello/@v/v1.0.0.zip", "zip bytes")
	write("modules/example.com/hello/@v/list", "v1.0.0\n")
	write("modules/example.com/hello/@v/.tmp-123", "an interrupted write")
	write("ledger/ledger.sum", "corp.example.com/lib v1.0.0 h1:aaaa= 2026-01-02T03:04:05Z\n"+
		"corp.example.com/lib v1.0.0/go.mod h1:bbbb= 2026-01-02T03:04:05Z\n")
	write("sumdb/sum.test/latest", head("7"))
	tokens, err := auth.OpenTokens(filepath.Join(dir, "auth"), auth.TokensOptions{})
	if err != nil {
		t.Fatal(err)
	}
	scopes, _ := auth.ParseScopes([]string{"read"})
	if _, _, err := tokens.Create("ci", scopes, time.Time{}); err != nil {
		t.Fatal(err)
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

// TestImport: everything is copied once; a second run copies nothing; the
// source is left as it was; temporary files are not copied.
func TestImport(t *testing.T) {
	src := singleNode(t)
	store := storage.NewMemory()
	tokens := &memTokens{recs: map[string]auth.TokenRecord{}}
	led := &memLedger{recs: map[string]ledger.Record{}}
	heads := sumdb.NewFileHeadStore(t.TempDir())
	tgt := Target{Store: store, Tokens: tokens, Ledger: led, Heads: heads}
	r, err := Import(t.Context(), src, tgt)
	if err != nil {
		t.Fatal(err)
	}
	if r.Files != 3 || r.Tokens != 1 || r.Ledger != 2 || r.Heads != 1 || len(r.Conflicts) != 0 {
		t.Errorf("first import: %+v", r)
	}
	if got := read(t, store, "example.com/hello/@v/v1.0.0.zip"); got != "zip bytes" {
		t.Errorf("zip = %q", got)
	}
	if h, _ := heads.ReadHead(t.Context(), "sum.test"); string(h) != head("7") {
		t.Errorf("head = %q", h)
	}
	if _, err := os.Stat(filepath.Join(src, "modules/example.com/hello/@v/.tmp-123")); err != nil {
		t.Errorf("the source changed: %v", err)
	}
	r, err = Import(t.Context(), src, tgt)
	if err != nil {
		t.Fatal(err)
	}
	if r.Files != 0 || r.FilesSkipped != 3 || r.TokensSkipped != 1 || r.LedgerSkipped != 2 || r.HeadsSkipped != 1 {
		t.Errorf("second import: %+v, want everything skipped", r)
	}
}

// TestImportConflicts: what the destination holds with other content is
// named and left alone, everything else is still copied, and a larger
// tree head is never replaced by a smaller one.
func TestImportConflicts(t *testing.T) {
	src := singleNode(t)
	ctx := t.Context()
	store := storage.NewMemory()
	store.Put(ctx, "example.com/hello/@v/v1.0.0.mod", strings.NewReader("module evil\n"))
	store.Put(ctx, "example.com/hello/@v/list", strings.NewReader("v1.0.0\nv1.1.0\n"))
	tokens := &memTokens{recs: map[string]auth.TokenRecord{"x": {Token: auth.Token{ID: "x", Name: "ci"}, SecretHash: "00"}}}
	led := &memLedger{recs: map[string]ledger.Record{"corp.example.com/lib v1.0.0": {Hash: "h1:other="}}}
	heads := sumdb.NewFileHeadStore(t.TempDir())
	if err := heads.SwapHead(ctx, "sum.test", nil, []byte(head("9"))); err != nil {
		t.Fatal(err)
	}
	r, err := Import(ctx, src, Target{Store: store, Tokens: tokens, Ledger: led, Heads: heads})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("Import = %v, want ErrConflict", err)
	}
	want := []string{
		"module file example.com/hello/@v/v1.0.0.mod",
		`token "ci" (another token has its name or id)`,
		"ledger corp.example.com/lib v1.0.0: h1:aaaa= here, h1:other= in the cluster",
	}
	if strings.Join(r.Conflicts, "\n") != strings.Join(want, "\n") {
		t.Errorf("conflicts:\n%s\nwant\n%s", strings.Join(r.Conflicts, "\n"), strings.Join(want, "\n"))
	}
	if got := read(t, store, "example.com/hello/@v/v1.0.0.mod"); got != "module evil\n" {
		t.Errorf("a conflicting file was replaced: %q", got)
	}
	if got := read(t, store, "example.com/hello/@v/list"); got != "v1.0.0\nv1.1.0\n" {
		t.Errorf("the cluster's list was replaced: %q", got)
	}
	if r.Files != 1 || r.Ledger != 1 || r.HeadsSkipped != 1 {
		t.Errorf("report %+v: want the zip and the go.mod record copied, the larger head kept", r)
	}
	if h, _ := heads.ReadHead(ctx, "sum.test"); string(h) != head("9") {
		t.Errorf("the tree head moved backwards: %q", h)
	}
	if _, err := Import(ctx, filepath.Join(src, "missing"), Target{Store: store}); err == nil {
		t.Error("Import of a missing directory succeeded")
	}
}
