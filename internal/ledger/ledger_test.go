package ledger

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/testenv"
)

// moved is one OnMoved call.
type moved struct{ module, version, file, recorded, got string }

// testLedger opens a ledger on dir covering corp.example.com and the
// fixtures' example.com, and collects OnMoved calls.
func testLedger(t *testing.T, dir string) (*Ledger, *[]moved) {
	t.Helper()
	var mu sync.Mutex
	calls := new([]moved)
	l, err := Open(Config{
		Dir:      dir,
		Patterns: []string{"corp.example.com", "example.com"},
		OnMoved: func(module, version, file, recorded, got string) {
			mu.Lock()
			defer mu.Unlock()
			*calls = append(*calls, moved{module, version, file, recorded, got})
		},
	})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l, calls
}

// writeZip writes data to a file in a new temporary directory.
func writeZip(t *testing.T, data []byte) string {
	t.Helper()
	name := filepath.Join(t.TempDir(), "m.zip")
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return name
}

// fixture returns the testenv fixture path@version.
func fixture(t *testing.T, path, version string) *testenv.Module {
	t.Helper()
	for _, m := range testenv.Fixtures(t) {
		if m.Path == path && m.Version == version {
			return m
		}
	}
	t.Fatalf("no fixture %s@%s", path, version)
	return nil
}

func TestCheckModRecordsThenCompares(t *testing.T) {
	l, calls := testLedger(t, t.TempDir())
	ctx := t.Context()
	const path, version = "corp.example.com/auth", "v1.2.0"
	orig := []byte("module corp.example.com/auth\n\ngo 1.22\n")
	changed := []byte("module corp.example.com/auth\n\ngo 1.23\n")

	if err := l.CheckMod(ctx, path, version, orig); err != nil {
		t.Fatalf("first CheckMod = %v, want nil", err)
	}
	if err := l.CheckMod(ctx, path, version, orig); err != nil {
		t.Fatalf("CheckMod of the same go.mod = %v, want nil", err)
	}
	wantOld, _ := hashMod(orig)
	wantNew, _ := hashMod(changed)
	err := l.CheckMod(ctx, path, version, changed)
	if !errors.Is(err, ErrMoved) {
		t.Fatalf("CheckMod of a changed go.mod = %v, want ErrMoved", err)
	}
	msg := err.Error()
	for _, want := range []string{
		"corp.example.com/auth@v1.2.0: go.mod hash " + wantNew + " differs from " + wantOld + " recorded on ",
		"the tag was moved on the Git server; modgate keeps serving the recorded version",
		"Publish a new version instead of moving a tag.",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
	if len(*calls) != 1 || (*calls)[0] != (moved{path, version, "go.mod", wantOld, wantNew}) {
		t.Errorf("OnMoved calls = %+v, want one for go.mod %s -> %s", *calls, wantOld, wantNew)
	}
	// The recorded hash stays; the refused one is not recorded.
	if mod, zip, ok := l.Lookup(path, version); !ok || mod != wantOld || zip != "" {
		t.Errorf("Lookup = %q, %q, %v, want %q, \"\", true", mod, zip, ok, wantOld)
	}
	// Another version of the same module is independent.
	if err := l.CheckMod(ctx, path, "v1.2.1", changed); err != nil {
		t.Errorf("CheckMod of another version = %v, want nil", err)
	}
}

func TestCheckZipRecordsThenCompares(t *testing.T) {
	m := fixture(t, "example.com/hello", "v1.0.0")
	l, calls := testLedger(t, t.TempDir())
	ctx := t.Context()

	if err := l.CheckZip(ctx, m.Path, m.Version, writeZip(t, m.Zip)); err != nil {
		t.Fatalf("first CheckZip = %v, want nil", err)
	}
	if err := l.CheckZip(ctx, m.Path, m.Version, writeZip(t, m.Zip)); err != nil {
		t.Fatalf("CheckZip of the same zip = %v, want nil", err)
	}
	err := l.CheckZip(ctx, m.Path, m.Version, writeZip(t, m.TamperedZip()))
	var me *MovedError
	if !errors.As(err, &me) || !errors.Is(err, ErrMoved) {
		t.Fatalf("CheckZip of a changed zip = %v, want a *MovedError", err)
	}
	if me.File != "zip" || me.Recorded != m.ZipHash || me.Got == m.ZipHash || !strings.HasPrefix(me.Got, "h1:") {
		t.Errorf("MovedError = %+v, want File zip, Recorded %s and another Got", me, m.ZipHash)
	}
	if !strings.Contains(err.Error(), "zip hash "+me.Got+" differs from "+m.ZipHash) {
		t.Errorf("error %q does not name both hashes", err)
	}
	if len(*calls) != 1 || (*calls)[0].file != "zip" {
		t.Errorf("OnMoved calls = %+v, want one for the zip", *calls)
	}
}

func TestMovedErrorMessage(t *testing.T) {
	err := &MovedError{
		Path: "corp.example.com/x", Version: "v1.0.0", File: "zip",
		Recorded: "h1:OLD", Got: "h1:NEW", Since: time.Date(2025, 3, 1, 10, 4, 5, 0, time.UTC),
	}
	want := "corp.example.com/x@v1.0.0: zip hash h1:NEW differs from h1:OLD recorded on 2025-03-01T10:04:05Z: " +
		"the tag was moved on the Git server; modgate keeps serving the recorded version. " +
		"Publish a new version instead of moving a tag."
	if got := err.Error(); got != want {
		t.Errorf("Error() =\n%s\nwant\n%s", got, want)
	}
	if !errors.Is(fmt.Errorf("filling: %w", err), ErrMoved) {
		t.Error("a wrapped MovedError does not match ErrMoved")
	}
}

// TestHashesAgreeWithGoCommand checks that the recorded hashes are the go.sum
// hashes of the fixtures, which testenv checks against the go command itself
// (TestGoAgreesOnHashes), and that the ledger's first three fields are go.sum
// lines.
func TestHashesAgreeWithGoCommand(t *testing.T) {
	dir := t.TempDir()
	l, _ := testLedger(t, dir)
	var goSum strings.Builder
	for _, m := range testenv.Fixtures(t) {
		if err := l.CheckMod(t.Context(), m.Path, m.Version, m.Mod); err != nil {
			t.Fatalf("CheckMod(%s) = %v", m, err)
		}
		if err := l.CheckZip(t.Context(), m.Path, m.Version, writeZip(t, m.Zip)); err != nil {
			t.Fatalf("CheckZip(%s) = %v", m, err)
		}
		mod, zip, ok := l.Lookup(m.Path, m.Version)
		if !ok || mod != m.ModHash || zip != m.ZipHash {
			t.Errorf("Lookup(%s) = %q, %q, %v, want %q, %q, true", m, mod, zip, ok, m.ModHash, m.ZipHash)
		}
		goSum.WriteString(m.GoSum())
	}
	data, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		fields := strings.Fields(line)
		if len(fields) != 4 {
			t.Fatalf("ledger line %q has %d fields, want 4", line, len(fields))
		}
		got = append(got, strings.Join(fields[:3], " "))
	}
	want := strings.Split(strings.TrimSpace(goSum.String()), "\n")
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("ledger as go.sum:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestZipGoModMustMatchRecordedMod covers a tag moved between the go.mod
// fetch and the zip fetch.
func TestZipGoModMustMatchRecordedMod(t *testing.T) {
	build := func(goMod string) *testenv.Module {
		m, err := testenv.ParseModule([]byte("module corp.example.com/auth\nversion v1.0.0\n-- go.mod --\n" + goMod + "-- auth.go --\npackage auth\n"))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	old := build("module corp.example.com/auth\n\ngo 1.21\n")
	moved := build("module corp.example.com/auth\n\ngo 1.22\n")
	l, calls := testLedger(t, t.TempDir())

	if err := l.CheckMod(t.Context(), old.Path, old.Version, old.Mod); err != nil {
		t.Fatal(err)
	}
	err := l.CheckZip(t.Context(), moved.Path, moved.Version, writeZip(t, moved.Zip))
	var me *MovedError
	if !errors.As(err, &me) || me.File != "go.mod in zip" || me.Recorded != old.ModHash || me.Got != moved.ModHash {
		t.Fatalf("CheckZip of a zip from the moved tag = %v (%+v), want a MovedError for go.mod in zip %s -> %s",
			err, me, old.ModHash, moved.ModHash)
	}
	if _, zip, _ := l.Lookup(old.Path, old.Version); zip != "" {
		t.Errorf("refused zip was recorded as %s", zip)
	}
	if len(*calls) != 1 {
		t.Errorf("OnMoved called %d times, want 1", len(*calls))
	}
	// The zip of the recorded go.mod is still accepted.
	if err := l.CheckZip(t.Context(), old.Path, old.Version, writeZip(t, old.Zip)); err != nil {
		t.Errorf("CheckZip of the original zip = %v, want nil", err)
	}
}

func TestSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	m := fixture(t, "example.com/hello", "v1.1.0")
	l, _ := testLedger(t, dir)
	if err := l.CheckMod(t.Context(), m.Path, m.Version, m.Mod); err != nil {
		t.Fatal(err)
	}
	if err := l.CheckZip(t.Context(), m.Path, m.Version, writeZip(t, m.Zip)); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.CheckMod(t.Context(), m.Path, "v9.0.0", m.Mod); err == nil {
		t.Error("CheckMod recorded after Close")
	}

	l2, calls := testLedger(t, dir)
	if mod, zip, ok := l2.Lookup(m.Path, m.Version); !ok || mod != m.ModHash || zip != m.ZipHash {
		t.Errorf("after reopen Lookup = %q, %q, %v, want %q, %q, true", mod, zip, ok, m.ModHash, m.ZipHash)
	}
	if err := l2.CheckMod(t.Context(), m.Path, m.Version, m.TamperedMod()); !errors.Is(err, ErrMoved) {
		t.Errorf("after reopen CheckMod of a changed go.mod = %v, want ErrMoved", err)
	}
	if err := l2.CheckZip(t.Context(), m.Path, m.Version, writeZip(t, m.TamperedZip())); !errors.Is(err, ErrMoved) {
		t.Errorf("after reopen CheckZip of a changed zip = %v, want ErrMoved", err)
	}
	if len(*calls) != 2 {
		t.Errorf("OnMoved called %d times, want 2", len(*calls))
	}
}

func TestTornLastLine(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, FileName)
	good := "corp.example.com/a v1.0.0/go.mod h1:AAAA= 2025-01-01T00:00:00Z\n"
	torn := "corp.example.com/a v1.0.0 h1:BB"
	if err := os.WriteFile(name, []byte(good+torn), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	l, err := Open(Config{Dir: dir, Patterns: []string{"corp.example.com"}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatalf("Open with a torn last line = %v, want success", err)
	}
	defer l.Close()
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "torn last line") {
		t.Errorf("no warning about the torn line in the log:\n%s", logs.String())
	}
	if mod, zip, ok := l.Lookup("corp.example.com/a", "v1.0.0"); !ok || mod != "h1:AAAA=" || zip != "" {
		t.Errorf("Lookup = %q, %q, %v, want the complete line only", mod, zip, ok)
	}
	// The next record starts on a line of its own.
	zipPath := writeZip(t, fixtureZip(t, "corp.example.com/a", "v1.0.0"))
	if err := l.CheckZip(t.Context(), "corp.example.com/a", "v1.0.0", zipPath); err != nil {
		t.Fatal(err)
	}
	l.Close()
	data, _ := os.ReadFile(name)
	lines := strings.Split(string(data), "\n")
	if len(lines) != 3 || lines[0]+"\n" != good || lines[2] != "" || !strings.HasPrefix(lines[1], "corp.example.com/a v1.0.0 h1:") {
		t.Errorf("ledger after the append:\n%s", data)
	}
	if _, err := Open(Config{Dir: dir}); err != nil {
		t.Errorf("reopening after the append: %v", err)
	}
}

// fixtureZip returns the zip of a small module path@version.
func fixtureZip(t *testing.T, path, version string) []byte {
	t.Helper()
	m, err := testenv.ParseModule([]byte("module " + path + "\nversion " + version + "\n-- a.go --\npackage a\n"))
	if err != nil {
		t.Fatal(err)
	}
	return m.Zip
}

func TestMalformedLedger(t *testing.T) {
	const ok = "corp.example.com/a v1.0.0 h1:AAAA= 2025-01-01T00:00:00Z\n"
	tests := []struct {
		name    string
		content string
		wantErr string // "" means Open succeeds
	}{
		{"empty", "", ""},
		{"comments and blank lines", "# accepted by ops, ticket 12\n\n" + ok, ""},
		{"duplicate line", ok + ok, ""},
		{"three fields", ok + "corp.example.com/a v1.0.1 h1:AAAA=\n", FileName + ":2: malformed record"},
		{"not h1", "corp.example.com/a v1.0.0 h2:AAAA= 2025-01-01T00:00:00Z\n", FileName + ":1: malformed record"},
		{"bad version", "corp.example.com/a 1.0 h1:AAAA= 2025-01-01T00:00:00Z\n" + ok, ":1: malformed record"},
		{"bad time", ok + "# x\ncorp.example.com/a v1.0.1 h1:AAAA= yesterday\n", ":3: malformed record"},
		{"conflicting records", ok + "corp.example.com/a v1.0.0 h1:BBBB= 2025-01-02T00:00:00Z\n", ":2: corp.example.com/a v1.0.0 recorded again"},
		{"torn line after a bad one", "garbage\n" + "corp.example", ":1: malformed record"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, FileName), []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			l, err := Open(Config{Dir: dir})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Open = %v, want success", err)
				}
				l.Close()
				return
			}
			if err == nil {
				l.Close()
				t.Fatalf("Open succeeded, want an error containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Open = %v, want an error containing %q", err, tt.wantErr)
			}
			// A refused ledger is left as it was, torn line included.
			if data, _ := os.ReadFile(filepath.Join(dir, FileName)); string(data) != tt.content {
				t.Errorf("Open changed the refused ledger to %q", data)
			}
		})
	}
}

// TestConcurrentChecks runs checks of one version with two different go.mod
// files at once: exactly one hash is recorded, every check agreeing with it
// succeeds and every other one is refused.
func TestConcurrentChecks(t *testing.T) {
	dir := t.TempDir()
	l, _ := testLedger(t, dir)
	const path, version = "corp.example.com/race", "v1.0.0"
	variants := [][]byte{[]byte("module corp.example.com/race\n"), []byte("module corp.example.com/race\n\ngo 1.22\n")}
	const perVariant = 16
	errs := make([][]error, len(variants))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for v := range variants {
		errs[v] = make([]error, perVariant)
		for i := range perVariant {
			wg.Go(func() {
				<-start
				errs[v][i] = l.CheckMod(t.Context(), path, version, variants[v])
			})
		}
	}
	close(start)
	wg.Wait()

	mod, _, _ := l.Lookup(path, version)
	for v, data := range variants {
		h, _ := hashMod(data)
		for i, err := range errs[v] {
			switch {
			case h == mod && err != nil:
				t.Errorf("variant %d (recorded) check %d = %v, want nil", v, i, err)
			case h != mod && !errors.Is(err, ErrMoved):
				t.Errorf("variant %d (not recorded) check %d = %v, want ErrMoved", v, i, err)
			}
		}
	}
	l.Close()
	data, _ := os.ReadFile(filepath.Join(dir, FileName))
	if n := strings.Count(string(data), "\n"); n != 1 {
		t.Errorf("ledger has %d lines, want 1:\n%s", n, data)
	}
}

func TestCovers(t *testing.T) {
	l, err := Open(Config{Dir: t.TempDir(), Patterns: []string{"corp.example.com", "*.internal.example/team"}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	tests := []struct {
		name string
		path string
		want bool
	}{
		{"exact", "corp.example.com", true},
		{"below", "corp.example.com/platform/auth", true},
		{"major version", "corp.example.com/platform/auth/v2", true},
		{"prefix of an element", "corp.example.community/x", false},
		{"glob", "git.internal.example/team/lib", true},
		{"glob other team", "git.internal.example/other/lib", false},
		{"public", "example.org/lib", false},
		// A case variant of a private path goes to the private sources
		// and skips the checksum database, so the ledger holds it too.
		{"case variant", "corp.example.com/Platform/Auth", true},
		{"case variant of a glob", "git.internal.example/Team/lib", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := l.Covers(tt.path); got != tt.want {
				t.Errorf("Covers(%q) = %v, want %v", tt.path, got, tt.want)
			}
		})
	}

	none, err := Open(Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer none.Close()
	if none.Covers("corp.example.com/x") {
		t.Error("a ledger without patterns covers corp.example.com/x")
	}
}

func TestNotCoveredOrInvalid(t *testing.T) {
	dir := t.TempDir()
	l, _ := testLedger(t, dir)
	if err := l.CheckMod(t.Context(), "example.org/public", "v1.0.0", []byte("module example.org/public\n")); err != nil {
		t.Errorf("CheckMod of an uncovered module = %v, want nil", err)
	}
	if err := l.CheckZip(t.Context(), "example.org/public", "v1.0.0", filepath.Join(dir, "missing.zip")); err != nil {
		t.Errorf("CheckZip of an uncovered module = %v, want nil (not even opened)", err)
	}
	if _, _, ok := l.Lookup("example.org/public", "v1.0.0"); ok {
		t.Error("an uncovered module was recorded")
	}
	for _, version := range []string{"v1.0.0 h1:x", "v1.0.0\nx", "latest"} {
		if err := l.CheckMod(t.Context(), "corp.example.com/a", version, []byte("module corp.example.com/a\n")); err == nil {
			t.Errorf("CheckMod(version %q) = nil, want an error", version)
		}
	}
	if err := l.CheckZip(t.Context(), "corp.example.com/a", "v1.0.0", filepath.Join(dir, "missing.zip")); err == nil || errors.Is(err, ErrMoved) {
		t.Errorf("CheckZip of a missing file = %v, want an error other than ErrMoved", err)
	}
	l.Close()
	data, _ := os.ReadFile(filepath.Join(dir, FileName))
	if len(data) != 0 {
		t.Errorf("ledger is not empty:\n%s", data)
	}
}
