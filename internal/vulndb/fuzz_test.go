package vulndb

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/semver"
)

// FuzzParseOSV feeds untrusted OSV entries (what a vulnerability database
// URL or directory holds) to parseEntry, and checks the compiled entry
// against a version. No input may panic; a refused entry's error matches
// ErrCorrupt; an accepted one has a usable id, its modules sorted and
// distinct, span bounds that are semantic versions, a hull holding every
// affected version, index files that are JSON, and Affecting answers that
// agree with the entry: a version is reported exactly when one of its
// module's spans holds it, and a "fixed" version it suggests is above it
// and not affected. The seeds (testdata/osv) run as an ordinary test.
func FuzzParseOSV(f *testing.F) {
	seeds, err := filepath.Glob(filepath.Join("testdata", "osv", "*.json"))
	if err != nil || len(seeds) == 0 {
		f.Fatalf("no seed entries in testdata/osv: %v", err)
	}
	for _, name := range seeds {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		for _, v := range []string{"v1.2.3", "v0.0.0-20200124225646-8b5121be2f68", "v2.0.0+incompatible", "v1.22.3", "garbage"} {
			f.Add(data, v)
		}
	}
	f.Add([]byte(`{"id":"GO-1","affected":[{"package":{"name":"m","ecosystem":"Go"},"ranges":[{"type":"SEMVER","events":[{"fixed":"1.0.0"},{"introduced":"2.0.0"},{"last_affected":"1.5.0"},{"introduced":"0"},{"limit":"3.0.0"}]}]}]}`), "v1.5.0")
	f.Add([]byte(`{"id":"GO-2","affected":[{"package":{"name":"m","ecosystem":"Go"}},{"package":{"name":"m","ecosystem":"Go"},"ranges":[{"type":"SEMVER","events":[{"introduced":"1.0.0"}]}]}]}`), "v0.1.0")
	f.Add([]byte(`{"id":"../x","affected":[]}`), "v1.0.0")
	f.Add([]byte(`{"id":"GO-3","withdrawn":"2024-01-01T00:00:00Z","affected":[{"package":{"name":"m","ecosystem":"Go"}}]}`), "v1.0.0")
	f.Add([]byte(`{"id":"GO-4","affected":[{"package":{"name":"","ecosystem":"Go"}}]}`), "v1.0.0")

	f.Fuzz(func(t *testing.T, data []byte, version string) {
		e, err := parseEntry(data, "")
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("parseEntry refused %q with %v, which does not match ErrCorrupt", data, err)
			}
			return
		}
		if !validID(e.id) {
			t.Fatalf("parseEntry accepted the id %q", e.id)
		}
		if !slices.IsSortedFunc(e.modules, func(a, b *affectedModule) int { return strings.Compare(a.path, b.path) }) {
			t.Errorf("modules not sorted by path")
		}
		for i, m := range e.modules {
			if m.path == "" || (i > 0 && e.modules[i-1].path == m.path) {
				t.Errorf("module path %q empty or listed twice", m.path)
			}
			for _, s := range m.spans {
				for _, b := range []string{s.lo, s.hi} {
					if b != "" && !semver.IsValid(b) {
						t.Errorf("%s: span bound %q is not a semantic version", m.path, b)
					}
				}
			}
			if semver.IsValid(version) && m.affects(version) && !m.hull().contains(version) {
				t.Errorf("%s: %s is affected but outside the hull %+v", m.path, version, m.hull())
			}
		}

		db := newDB(time.Unix(0, 0).UTC(), []*entry{e})
		files, err := db.indexFiles()
		if err != nil {
			t.Fatalf("indexFiles: %v", err)
		}
		for name, b := range files {
			if !json.Valid(b) {
				t.Errorf("%s is not JSON: %q", name, b)
			}
		}
		for _, m := range e.modules {
			got := db.Affecting(m.path, version)
			want := !e.withdrawn && semver.IsValid(version) && m.affects(version)
			if (len(got) == 1) != want || len(got) > 1 {
				t.Errorf("Affecting(%q, %q) = %+v, want affected %v", m.path, version, got, want)
			}
			for _, v := range got {
				if v.ID != e.id {
					t.Errorf("Affecting(%q, %q) reports %q, want %q", m.path, version, v.ID, e.id)
				}
				if v.Fixed != "" && (semver.Compare(v.Fixed, version) <= 0 || m.affects(v.Fixed)) {
					t.Errorf("Affecting(%q, %q): fixed in %q, which is not above it or is affected", m.path, version, v.Fixed)
				}
			}
		}
	})
}
