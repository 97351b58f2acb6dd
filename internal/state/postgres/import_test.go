package postgres_test

import (
	"context"
	"crypto/rand"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/modgate/modgate/internal/auth"
	"github.com/modgate/modgate/internal/ledger"
	"github.com/modgate/modgate/internal/policy"
	"github.com/modgate/modgate/internal/state/postgres"
	"github.com/modgate/modgate/internal/sumdb"
)

// singleNode fills a data directory the way one modgate does, through the
// file implementations, and returns the token text and the tree head.
func singleNode(t *testing.T, dir string) (string, []byte) {
	t.Helper()
	ctx := context.Background()
	tokens, err := auth.OpenTokens(filepath.Join(dir, "auth"), auth.TokensOptions{})
	if err != nil {
		t.Fatal(err)
	}
	scopes, _ := auth.ParseScopes([]string{"read"})
	text, _, err := tokens.Create("ci", scopes, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := ledger.Open(ledger.Config{Dir: filepath.Join(dir, "ledger"), Patterns: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.CheckMod(ctx, "corp.example.com/lib", "v1.0.0", []byte("module corp.example.com/lib\n")); err != nil {
		t.Fatal(err)
	}
	l.Close()
	skey, _, _ := note.GenerateKey(rand.Reader, "sum.test")
	signer, _ := note.NewSigner(skey)
	head, err := note.Sign(&note.Note{Text: string(tlog.FormatTree(tlog.Tree{N: 42}))}, signer)
	if err != nil {
		t.Fatal(err)
	}
	if err := sumdb.NewFileHeadStore(filepath.Join(dir, "sumdb")).SwapHead(ctx, "sum.test", nil, head); err != nil {
		t.Fatal(err)
	}
	ages, err := policy.OpenAges(filepath.Join(dir, "policy"), policy.PublishInfo, nil)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ages.ObserveList("example.com/lib", []string{"v1.0.0"}, t0)
	ages.ObserveList("example.com/lib", []string{"v1.0.0", "v1.1.0"}, t0.Add(time.Hour))
	ages.Close()
	lic := policy.FileLicenseStore(filepath.Join(dir, "policy", "licenses"))
	if err := lic.PutLicense(ctx, module.Version{Path: "example.com/Lib", Version: "v1.0.0"}, policy.License{IDs: []string{"MIT"}, Files: []string{"LICENSE"}}); err != nil {
		t.Fatal(err)
	}
	return text, head
}

// TestImportDataDir moves a single modgate's state into the database: the
// token authenticates, the ledger refuses other content, the tree head,
// first-seen times and licences are there; a second import adds nothing;
// a data directory whose ledger contradicts the database is reported.
func TestImportDataDir(t *testing.T) {
	db, _ := migrated(t)
	ctx := t.Context()
	dir := t.TempDir()
	text, head := singleNode(t, dir)

	n, err := db.ImportDataDir(ctx, dir)
	if err != nil {
		t.Fatalf("ImportDataDir: %v", err)
	}
	if n.Tokens != 1 || n.LedgerRecords != 1 || n.TreeHeads != 1 || n.Versions != 2 || n.Licenses != 1 {
		t.Errorf("imported %v; want 1 token, 1 ledger record, 1 tree head, 2 versions, 1 licence", n)
	}
	tokens, _ := auth.OpenTokens("", auth.TokensOptions{Store: db.Tokens()})
	if _, err := tokens.Authenticate(text); err != nil {
		t.Errorf("imported token: %v", err)
	}
	l, _ := ledger.Open(ledger.Config{Patterns: []string{"*"}, Backend: db.Ledger()})
	if err := l.CheckMod(ctx, "corp.example.com/lib", "v1.0.0", []byte("module corp.example.com/lib // moved\n")); !errors.Is(err, ledger.ErrMoved) {
		t.Errorf("imported ledger, other content: %v; want ErrMoved", err)
	}
	if got, _ := db.Heads().ReadHead(ctx, "sum.test"); string(got) != string(head) {
		t.Errorf("imported tree head = %q", got)
	}
	facts, _ := db.Ages().ModuleFacts(ctx, "example.com/lib")
	if f := facts["v1.1.0"]; f.FirstSeen.IsZero() {
		t.Errorf("imported ages: v1.1.0 %+v; want its first-seen time", f)
	}
	if _, ok, _ := db.Licenses().GetLicense(ctx, module.Version{Path: "example.com/Lib", Version: "v1.0.0"}); !ok {
		t.Errorf("imported licence missing")
	}

	again, err := db.ImportDataDir(ctx, dir)
	if err != nil || again != (postgres.Imported{}) {
		t.Errorf("second import = %v, %v; want nothing new", again, err)
	}

	// Another single node that saw other content for the same version.
	other := t.TempDir()
	lo, _ := ledger.Open(ledger.Config{Dir: filepath.Join(other, "ledger"), Patterns: []string{"*"}})
	lo.CheckMod(ctx, "corp.example.com/lib", "v1.0.0", []byte("module corp.example.com/lib // other\n"))
	lo.Close()
	if _, err := db.ImportDataDir(ctx, other); err == nil || !strings.Contains(err.Error(), "corp.example.com/lib v1.0.0/go.mod") {
		t.Errorf("import of a contradicting ledger = %v; want an error naming the record", err)
	}
}
