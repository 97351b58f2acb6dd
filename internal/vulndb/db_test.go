package vulndb

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fixtureDir is the flat directory of synthetic OSV entries.
const fixtureDir = "testdata/osv"

func openFixture(t *testing.T) *DB {
	t.Helper()
	db, err := Open(fixtureDir)
	if err != nil {
		t.Fatalf("Open(%q): %v", fixtureDir, err)
	}
	return db
}

// ids returns the IDs and fixed versions of vs as "ID@fixed" strings.
func ids(vs []Vuln) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.ID+"@"+v.Fixed)
	}
	return out
}

func TestAffecting(t *testing.T) {
	db := openFixture(t)
	tests := []struct {
		name            string
		module, version string
		want            []string // "ID@fixed"
	}{
		{"introduced 0, below fix", "example.com/lib", "v0.9.0", []string{"GO-2099-0001@v1.2.4"}},
		{"two vulns sorted by id, one unfixed", "example.com/lib", "v1.2.3", []string{"GO-2099-0001@v1.2.4", "GO-2099-0005@"}},
		{"fixed version itself is not affected", "example.com/lib", "v1.2.4", []string{"GO-2099-0005@"}},
		{"prerelease before the fix", "example.com/lib", "v1.2.4-rc.1", []string{"GO-2099-0001@v1.2.4", "GO-2099-0005@"}},
		{"withdrawn entry affects nothing", "example.com/lib", "v0.1.0", []string{"GO-2099-0001@v1.2.4"}},
		{"before the first range", "example.com/multi", "v0.9.0", nil},
		{"first range", "example.com/multi", "v1.0.4", []string{"GO-2099-0002@v1.0.5"}},
		{"between ranges", "example.com/multi", "v1.0.5", nil},
		{"second range", "example.com/multi", "v1.1.0", []string{"GO-2099-0002@v1.1.2"}},
		{"after the second range", "example.com/multi", "v1.2.0", nil},
		{"second SEMVER range of the same module", "example.com/multi", "v1.3.0", []string{"GO-2099-0002@v1.3.1"}},
		{"after every range", "example.com/multi", "v1.3.1", nil},
		{"last_affected is included", "example.com/lastaff", "v0.9.0", []string{"GO-2099-0003@"}},
		{"inside last_affected range", "example.com/lastaff", "v0.5.0", []string{"GO-2099-0003@"}},
		{"after last_affected", "example.com/lastaff", "v0.9.1", nil},
		{"before introduced", "example.com/lastaff", "v0.4.9", nil},
		{"older pseudo-version", "example.com/pseudo", "v0.0.0-20190308221718-c2843e01d9a2", []string{"GO-2099-0004@v0.0.0-20200124225646-8b5121be2f68"}},
		{"fixing pseudo-version", "example.com/pseudo", "v0.0.0-20200124225646-8b5121be2f68", nil},
		{"newer pseudo-version", "example.com/pseudo", "v0.0.0-20200128174031-69ecbb4d6d5d", nil},
		{"release after pseudo-versions", "example.com/pseudo", "v0.1.0", nil},
		{"incompatible inside range (events out of order)", "example.com/incompat", "v2.3.0+incompatible", []string{"GO-2099-0008@v2.3.1+incompatible"}},
		{"incompatible fixed", "example.com/incompat", "v2.3.1+incompatible", nil},
		{"incompatible pseudo-version in range", "example.com/incompat", "v2.1.1-0.20170519163204-f913f5f9c7c6+incompatible", []string{"GO-2099-0008@v2.3.1+incompatible"}},
		{"major version module", "example.com/incompat/v3", "v3.0.1", []string{"GO-2099-0008@v3.0.2"}},
		{"no ranges: every version", "example.com/allversions", "v9.9.9", []string{"GO-2099-0009@"}},
		{"stdlib", "stdlib", "v1.21.4", []string{"GO-2099-0006@v1.21.5"}},
		{"stdlib fixed", "stdlib", "v1.21.5", nil},
		{"toolchain", "toolchain", "v1.20.8", []string{"GO-2099-0006@v1.20.9"}},
		{"other ecosystems are ignored", "npm-package", "v1.0.0", nil},
		{"unaffected module", "example.com/clean", "v1.0.0", nil},
		{"invalid version", "example.com/lib", "1.0.0", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ids(db.Affecting(tt.module, tt.version))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Affecting(%q, %q) (-want +got):\n%s", tt.module, tt.version, diff)
			}
		})
	}
}

func TestAffectingDetails(t *testing.T) {
	db := openFixture(t)
	got := db.Affecting("example.com/lib", "v1.0.0")
	want := []Vuln{
		{ID: "GO-2099-0001", Aliases: []string{"CVE-2099-0001", "GHSA-aaaa-bbbb-cccc"}, Summary: "Overflow in example.com/lib", Fixed: "v1.2.4"},
		{ID: "GO-2099-0005", Summary: "Unfixed in example.com/lib"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Affecting(example.com/lib, v1.0.0) (-want +got):\n%s", diff)
	}
}

func TestFixedSkipsReaffectedVersion(t *testing.T) {
	// Fixed in 1.1.0 and reintroduced there by a second range of the same
	// entry: 1.1.0 is no fix, 1.2.0 is.
	data := `{"id":"GO-2099-0100","affected":[{"package":{"name":"example.com/re","ecosystem":"Go"},"ranges":[
		{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.1.0"}]},
		{"type":"SEMVER","events":[{"introduced":"1.1.0"},{"fixed":"1.2.0"}]}]}]}`
	e, err := parseEntry([]byte(data), "GO-2099-0100")
	if err != nil {
		t.Fatal(err)
	}
	db := newDB(time.Time{}, []*entry{e})
	if got := ids(db.Affecting("example.com/re", "v1.0.0")); !cmp.Equal(got, []string{"GO-2099-0100@v1.2.0"}) {
		t.Errorf("Affecting(example.com/re, v1.0.0) = %v, want [GO-2099-0100@v1.2.0]", got)
	}
}

func TestAffectingNilDB(t *testing.T) {
	var db *DB
	if got := db.Affecting("example.com/lib", "v1.0.0"); got != nil {
		t.Errorf("nil DB: Affecting = %v, want nil", got)
	}
}

func TestAffectingDoesNotAllocateWhenUnaffected(t *testing.T) {
	db := openFixture(t)
	for _, q := range [][2]string{{"example.com/clean", "v1.0.0"}, {"example.com/multi", "v1.2.0"}, {"example.com/pseudo", "v0.0.0-20200128174031-69ecbb4d6d5d"}} {
		if n := testing.AllocsPerRun(100, func() { db.Affecting(q[0], q[1]) }); n != 0 {
			t.Errorf("Affecting(%q, %q): %v allocations, want 0", q[0], q[1], n)
		}
	}
}

func TestOpenFlatModified(t *testing.T) {
	db := openFixture(t)
	if got, want := db.Len(), 9; got != want {
		t.Errorf("Len() = %d, want %d", got, want)
	}
	// The latest "modified" of the entries (GO-2099-0005).
	if got, want := db.Modified(), time.Date(2099, 2, 1, 0, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("Modified() = %v, want %v", got, want)
	}
}

func TestIndexFiles(t *testing.T) {
	db := openFixture(t)
	files, err := db.indexFiles()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(files[dbEndpoint]), `{"modified":"2099-02-01T00:00:00Z"}`; got != want {
		t.Errorf("index/db.json = %s, want %s", got, want)
	}
	var modules []moduleMeta
	if err := json.Unmarshal(files[modulesEndpoint], &modules); err != nil {
		t.Fatal(err)
	}
	jan := time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)
	feb := time.Date(2099, 2, 1, 0, 0, 0, 0, time.UTC)
	want := []moduleMeta{
		{Path: "example.com/allversions", Vulns: []moduleVulnRef{{ID: "GO-2099-0009", Modified: jan}}},
		{Path: "example.com/incompat", Vulns: []moduleVulnRef{{ID: "GO-2099-0008", Modified: jan, Fixed: "2.3.1+incompatible"}}},
		{Path: "example.com/incompat/v3", Vulns: []moduleVulnRef{{ID: "GO-2099-0008", Modified: jan, Fixed: "3.0.2"}}},
		{Path: "example.com/lastaff", Vulns: []moduleVulnRef{{ID: "GO-2099-0003", Modified: jan}}},
		{Path: "example.com/lib", Vulns: []moduleVulnRef{
			{ID: "GO-2099-0001", Modified: jan, Fixed: "1.2.4"},
			{ID: "GO-2099-0005", Modified: feb},
			{ID: "GO-2099-0007", Modified: jan}, // withdrawn entries stay in the index
		}},
		{Path: "example.com/multi", Vulns: []moduleVulnRef{{ID: "GO-2099-0002", Modified: jan, Fixed: "1.3.1"}}},
		{Path: "example.com/pseudo", Vulns: []moduleVulnRef{{ID: "GO-2099-0004", Modified: jan, Fixed: "0.0.0-20200124225646-8b5121be2f68"}}},
		{Path: "stdlib", Vulns: []moduleVulnRef{{ID: "GO-2099-0006", Modified: jan, Fixed: "1.21.5"}}},
		{Path: "toolchain", Vulns: []moduleVulnRef{{ID: "GO-2099-0006", Modified: jan, Fixed: "1.20.9"}}},
	}
	if diff := cmp.Diff(want, modules); diff != "" {
		t.Errorf("index/modules.json (-want +got):\n%s", diff)
	}
	var vulns []vulnMeta
	if err := json.Unmarshal(files[vulnsEndpoint], &vulns); err != nil {
		t.Fatal(err)
	}
	if len(vulns) != 9 || vulns[0].ID != "GO-2099-0001" || !cmp.Equal(vulns[0].Aliases, []string{"CVE-2099-0001", "GHSA-aaaa-bbbb-cccc"}) {
		t.Errorf("index/vulns.json = %+v, want 9 entries starting with GO-2099-0001 and its aliases", vulns)
	}
}

func TestOpenServedLayout(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "index/db.json"), `{"modified":"2099-03-04T05:06:07Z"}`)
	// A stale index/modules.json is ignored: the index is rebuilt.
	writeFile(t, filepath.Join(dir, "index/modules.json"), `[]`)
	copyFixture(t, "GO-2099-0001", filepath.Join(dir, "ID"))
	db, err := Open(dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if got, want := db.Modified(), time.Date(2099, 3, 4, 5, 6, 7, 0, time.UTC); !got.Equal(want) {
		t.Errorf("Modified() = %v, want %v (from index/db.json)", got, want)
	}
	if got := ids(db.Affecting("example.com/lib", "v1.0.0")); !cmp.Equal(got, []string{"GO-2099-0001@v1.2.4"}) {
		t.Errorf("Affecting = %v, want [GO-2099-0001@v1.2.4]", got)
	}
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name     string
		files    map[string]string
		wantErr  error
		wantText string
	}{
		{"empty directory", nil, fs.ErrNotExist, "no index/db.json and no OSV entries"},
		{"malformed JSON", map[string]string{"GO-2099-0100.json": `{"id":`}, ErrCorrupt, "GO-2099-0100.json"},
		{"id differs from file name", map[string]string{"GO-2099-0100.json": `{"id":"GO-2099-0101"}`}, ErrCorrupt, `id is "GO-2099-0101"`},
		{"version not semver", map[string]string{"GO-2099-0100.json": `{"id":"GO-2099-0100","affected":[{"package":{"name":"example.com/x","ecosystem":"Go"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"v1.2"}]}]}]}`}, ErrCorrupt, `fixed version "v1.2" is not a semantic version`},
		{"empty event", map[string]string{"GO-2099-0100.json": `{"id":"GO-2099-0100","affected":[{"package":{"name":"example.com/x","ecosystem":"Go"},"ranges":[{"type":"SEMVER","events":[{}]}]}]}`}, ErrCorrupt, "no introduced, fixed or last_affected"},
		{"bad served db.json", map[string]string{"index/db.json": `{"modified":"yesterday"}`}, ErrCorrupt, "index/db.json"},
		{"oversized entry", map[string]string{"GO-2099-0100.json": `{"id":"GO-2099-0100","details":"` + strings.Repeat("x", maxEntrySize) + `"}`}, ErrCorrupt, "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, data := range tt.files {
				writeFile(t, filepath.Join(dir, name), data)
			}
			_, err := Open(dir)
			if !errors.Is(err, tt.wantErr) || !strings.Contains(fmtErr(err), tt.wantText) {
				t.Errorf("Open = %v, want error matching %v and containing %q", err, tt.wantErr, tt.wantText)
			}
		})
	}
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func writeFile(t *testing.T, name, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// copyFixture copies testdata/osv/<id>.json into dir.
func copyFixture(t *testing.T, id, dir string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(fixtureDir, id+".json"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, id+".json"), string(data))
}

func TestAffectingIgnoresCase(t *testing.T) {
	// GO-2099-0200 names the module in two spellings (as real entries do
	// for renamed owners); GO-2099-0201 only in lower case.
	data := []string{
		`{"id":"GO-2099-0200","affected":[
		{"package":{"name":"github.com/Acme/lib","ecosystem":"Go"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.2.0"}]}]},
		{"package":{"name":"github.com/acme/lib","ecosystem":"Go"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.2.0"}]}]}]}`,
		`{"id":"GO-2099-0201","affected":[
		{"package":{"name":"github.com/acme/lib","ecosystem":"Go"},"ranges":[{"type":"SEMVER","events":[{"introduced":"1.0.0"},{"fixed":"1.1.0"}]}]}]}`,
	}
	var entries []*entry
	for i, d := range data {
		e, err := parseEntry([]byte(d), fmt.Sprintf("GO-2099-%04d", 200+i))
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, e)
	}
	db := newDB(time.Time{}, entries)
	want := []string{"GO-2099-0200@v1.2.0", "GO-2099-0201@v1.1.0"}
	for _, mod := range []string{"github.com/acme/lib", "github.com/Acme/lib", "GITHUB.COM/ACME/LIB"} {
		if got := ids(db.Affecting(mod, "v1.0.0")); !cmp.Equal(got, want) {
			t.Errorf("Affecting(%s, v1.0.0) = %v, want %v", mod, got, want)
		}
	}
}
