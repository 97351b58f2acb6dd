package vulndb

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/mod/semver"
)

// realSnapshot is the shared snapshot of the Go vulnerability database, as
// a path relative to the module root (see ../shared/data/README.md there).
const realSnapshot = "../shared/data/go-vulndb-osv-2026.tgz"

// extractReal extracts the shared snapshot's osv/*.json entries into a
// temporary directory and returns it. It skips the test or benchmark when
// the shared data folder is absent (a checkout without ../shared).
func extractReal(tb testing.TB) string {
	tb.Helper()
	root := moduleRoot(tb)
	tgz := filepath.Join(root, filepath.FromSlash(realSnapshot))
	if _, err := os.Stat(filepath.Dir(tgz)); os.IsNotExist(err) {
		tb.Skipf("shared data folder %s is absent (checkout without ../shared): skipping the real vulnerability database", filepath.Dir(tgz))
	}
	f, err := os.Open(tgz)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		tb.Fatalf("%s: %v", tgz, err)
	}
	dir := tb.TempDir()
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			tb.Fatalf("%s: %v", tgz, err)
		}
		name := path.Clean(hdr.Name)
		if hdr.Typeflag != tar.TypeReg || path.Dir(name) != "osv" || !strings.HasSuffix(name, ".json") {
			continue
		}
		data, err := io.ReadAll(io.LimitReader(tr, maxEntrySize+1))
		if err != nil {
			tb.Fatalf("%s: %s: %v", tgz, name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, path.Base(name)), data, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return dir
}

// moduleRoot returns the directory holding the module's go.mod.
func moduleRoot(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
}

func TestRealDatabase(t *testing.T) {
	dir := extractReal(t)
	db, err := Open(dir)
	if err != nil {
		t.Fatalf("Open(real snapshot): %v", err)
	}
	// Counts from the snapshot's README.
	if got, want := db.Len(), 4291; got != want {
		t.Errorf("Len() = %d, want %d", got, want)
	}
	files, err := db.indexFiles()
	if err != nil {
		t.Fatal(err)
	}
	var modules []moduleMeta
	if err := json.Unmarshal(files[modulesEndpoint], &modules); err != nil {
		t.Fatal(err)
	}
	if got, want := len(modules), 1373; got != want {
		t.Errorf("index/modules.json lists %d modules, want %d", got, want)
	}

	tests := []struct {
		name            string
		module, version string
		wantID          string // "" means: not affected by anything
		wantFixed       string
		notID           string // an entry that must not be in the answer
	}{
		{"yaml.v2 before 2.2.4", "gopkg.in/yaml.v2", "v2.2.3", "GO-2022-0956", "v2.2.4", ""},
		{"coder v2 second line", "github.com/coder/coder/v2", "v2.15.1", "GO-2024-3228", "v2.15.3", ""},
		{"coder v2 between lines", "github.com/coder/coder/v2", "v2.14.4", "GO-2025-3921", "v2.23.0", "GO-2024-3228"},
		{"mattermost incompatible", "github.com/mattermost/mattermost-server", "v9.11.5+incompatible", "GO-2025-3619", "v9.11.10+incompatible", ""},
		{"mattermost pseudo-version fix", "github.com/mattermost/mattermost/server/v8", "v8.0.0-20250101000000-aaaaaaaaaaaa", "GO-2025-3619", "v8.0.0-20250218121836-2b5275d87136", ""},
		{"unknown module", "example.com/not/in/the/database", "v1.0.0", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := db.Affecting(tt.module, tt.version)
			if tt.wantID == "" {
				if got != nil {
					t.Errorf("Affecting(%q, %q) = %v, want nothing", tt.module, tt.version, ids(got))
				}
				return
			}
			i := slices.IndexFunc(got, func(v Vuln) bool { return v.ID == tt.wantID })
			if i < 0 {
				t.Fatalf("Affecting(%q, %q) = %v, want %s among them", tt.module, tt.version, ids(got), tt.wantID)
			}
			if tt.notID != "" && slices.ContainsFunc(got, func(v Vuln) bool { return v.ID == tt.notID }) {
				t.Errorf("Affecting(%q, %q) = %v, want %s not among them", tt.module, tt.version, ids(got), tt.notID)
			}
			if got[i].Fixed != tt.wantFixed {
				t.Errorf("Affecting(%q, %q): %s fixed in %q, want %q", tt.module, tt.version, tt.wantID, got[i].Fixed, tt.wantFixed)
			}
		})
	}

	// Withdrawn entries (GO-2026-6166 is one) affect nothing.
	for _, mvs := range db.modules {
		for _, mv := range mvs.vulns {
			if mv.e.id == "GO-2026-6166" {
				t.Errorf("withdrawn GO-2026-6166 indexed for %s", mv.m.path)
			}
		}
	}

	checkAgainstReference(t, dir, db)
}

// checkAgainstReference compares Affecting with a direct, unoptimised
// evaluation of every entry's OSV events at every version its events name
// (where results change), and at versions just around them.
func checkAgainstReference(t *testing.T, dir string, db *DB) {
	names, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, name := range names {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		var e osvEntry
		if err := json.Unmarshal(data, &e); err != nil {
			t.Fatal(err)
		}
		if e.Withdrawn != nil {
			continue
		}
		for _, a := range e.Affected {
			var versions []string
			for _, r := range a.Ranges {
				for _, ev := range r.Events {
					for _, v := range []string{ev.Introduced, ev.Fixed, ev.LastAffected} {
						if v != "" && v != "0" {
							versions = append(versions, "v"+v, "v"+v+"-0", "v"+v+".0.0")
						}
					}
				}
			}
			versions = append(versions, "v0.0.0-00010101000000-000000000000", "v999.0.0")
			for _, v := range versions {
				if !semver.IsValid(v) {
					continue
				}
				want := referenceAffects(e, a.Package.Name, v)
				got := slices.ContainsFunc(db.Affecting(a.Package.Name, v), func(x Vuln) bool { return x.ID == e.ID })
				if got != want {
					t.Errorf("Affecting(%q, %q) contains %s = %v, reference says %v", a.Package.Name, v, e.ID, got, want)
				}
				checked++
			}
		}
	}
	t.Logf("checked %d module versions against the reference evaluation", checked)
}

// referenceAffects evaluates OSV SEMVER ranges literally: for each range,
// walk its events in version order, "introduced" sets affected, "fixed"
// clears it for versions at or above, "last_affected" for versions above.
func referenceAffects(e osvEntry, module, v string) bool {
	for _, a := range e.Affected {
		if a.Package.Name != module || a.Package.Ecosystem != "Go" {
			continue
		}
		if len(a.Ranges) == 0 {
			return true
		}
		for _, r := range a.Ranges {
			events := slices.Clone(r.Events)
			key := func(ev osvEvent) string {
				s := ev.Introduced + ev.Fixed + ev.LastAffected
				if s == "0" {
					return ""
				}
				return "v" + s
			}
			slices.SortStableFunc(events, func(x, y osvEvent) int {
				kx, ky := key(x), key(y)
				if kx == "" || ky == "" {
					return strings.Compare(kx, ky)
				}
				return semver.Compare(kx, ky)
			})
			affected := false
			for _, ev := range events {
				switch {
				case ev.Introduced != "" && !affected:
					affected = ev.Introduced == "0" || semver.Compare(v, "v"+ev.Introduced) >= 0
				case ev.Fixed != "" && affected:
					affected = semver.Compare(v, "v"+ev.Fixed) < 0
				case ev.LastAffected != "" && affected:
					affected = semver.Compare(v, "v"+ev.LastAffected) <= 0
				}
			}
			if affected {
				return true
			}
		}
	}
	return false
}

func BenchmarkOpen(b *testing.B) {
	dir := extractReal(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Open(dir); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAffecting(b *testing.B) {
	db, err := Open(extractReal(b))
	if err != nil {
		b.Fatal(err)
	}
	for _, bm := range []struct {
		name            string
		module, version string
		affected        bool
	}{
		{"unaffected-module", "example.com/not/in/the/database", "v1.2.3", false},
		{"listed-module-unaffected-version", "golang.org/x/net", "v0.999.0", false},
		{"affected-module", "golang.org/x/net", "v0.1.0", true},
	} {
		b.Run(bm.name, func(b *testing.B) {
			if got := db.Affecting(bm.module, bm.version) != nil; got != bm.affected {
				b.Fatalf("Affecting(%q, %q) affected = %v, want %v", bm.module, bm.version, got, bm.affected)
			}
			b.ReportAllocs()
			for b.Loop() {
				db.Affecting(bm.module, bm.version)
			}
		})
	}
}
