package testenv_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/dirhash"
	modzip "golang.org/x/mod/zip"

	"github.com/modgate/modgate/internal/testenv"
)

// TestFixtures checks every starter module: protocol files as documented,
// and zips that x/mod accepts and hashes like the in-memory hash.
func TestFixtures(t *testing.T) {
	mods := testenv.Fixtures(t)
	byName := make(map[string]*testenv.Module)
	for _, m := range mods {
		byName[m.String()] = m
	}

	tests := []struct {
		name      string // path@version
		wantMod   string
		wantTime  string
		wantFiles []string // file names in the zip, without the path@version/ prefix
	}{
		{"example.com/hello@v1.0.0", "module example.com/hello\n\ngo 1.21\n", "2024-01-02T15:04:05Z", []string{"LICENSE", "go.mod", "hello.go"}},
		{"example.com/hello@v1.1.0", "module example.com/hello\n\ngo 1.21\n", "2024-02-01T10:00:00Z", []string{"LICENSE", "go.mod", "hello.go"}},
		{"example.com/hello@v1.2.0-rc.1", "module example.com/hello\n\ngo 1.21\n", "2024-03-01T10:00:00Z", []string{"LICENSE", "go.mod", "hello.go"}},
		{"example.com/hello/v2@v2.0.0", "module example.com/hello/v2\n\ngo 1.21\n", "2024-04-01T10:00:00Z", []string{"go.mod", "hello.go"}},
		{"example.com/greet@v1.0.0", "module example.com/greet\n\ngo 1.21\n\nrequire example.com/hello v1.0.0\n", "2024-02-15T10:00:00Z", []string{"go.mod", "greet.go"}},
		{"example.com/legacy@v2.0.0+incompatible", "module example.com/legacy\n", "2019-06-01T10:00:00Z", []string{"legacy.go"}},
		{"example.com/Upper@v1.0.0", "module example.com/Upper\n\ngo 1.21\n", "2024-05-01T10:00:00Z", []string{"go.mod", "upper.go"}},
	}
	if len(mods) != len(tests) {
		t.Errorf("Fixtures returned %d modules, want %d", len(mods), len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := byName[tt.name]
			if m == nil {
				t.Fatalf("Fixtures has no %s", tt.name)
			}
			if string(m.Mod) != tt.wantMod {
				t.Errorf("Mod = %q, want %q", m.Mod, tt.wantMod)
			}
			var info struct {
				Version string
				Time    time.Time
			}
			if err := json.Unmarshal(m.Info, &info); err != nil {
				t.Fatalf("Info %q: %v", m.Info, err)
			}
			if info.Version != m.Version || info.Time.Format(time.RFC3339) != tt.wantTime || !m.Time.Equal(info.Time) {
				t.Errorf("Info = %s (Time field %v), want version %s, time %s", m.Info, m.Time, m.Version, tt.wantTime)
			}

			mv := module.Version{Path: m.Path, Version: m.Version}
			zipFile := writeTemp(t, m.Zip)
			cf, err := modzip.CheckZip(mv, zipFile)
			if err != nil {
				t.Fatalf("CheckZip: %v", err)
			}
			var valid []string
			for _, name := range cf.Valid {
				valid = append(valid, strings.TrimPrefix(name, m.String()+"/"))
			}
			if strings.Join(valid, " ") != strings.Join(tt.wantFiles, " ") || len(cf.Omitted)+len(cf.Invalid) > 0 {
				t.Errorf("CheckZip: valid %q, omitted %v, invalid %v; want valid %q", valid, cf.Omitted, cf.Invalid, tt.wantFiles)
			}
			if h, err := dirhash.HashZip(zipFile, dirhash.Hash1); err != nil || h != m.ZipHash {
				t.Errorf("HashZip = %q, %v; want ZipHash %q", h, err, m.ZipHash)
			}

			tampered := writeTemp(t, m.TamperedZip())
			if _, err := modzip.CheckZip(mv, tampered); err != nil {
				t.Errorf("CheckZip(TamperedZip): %v", err)
			}
			if h, _ := dirhash.HashZip(tampered, dirhash.Hash1); h == m.ZipHash {
				t.Errorf("TamperedZip hashes like the genuine zip, %s", h)
			}
			if string(m.TamperedMod()) == string(m.Mod) {
				t.Errorf("TamperedMod() equals Mod")
			}
			wantSum := m.Path + " " + m.Version + " " + m.ZipHash + "\n" + m.Path + " " + m.Version + "/go.mod " + m.ModHash + "\n"
			if m.GoSum() != wantSum {
				t.Errorf("GoSum() = %q, want %q", m.GoSum(), wantSum)
			}
		})
	}
}

// TestFixturesAreFresh checks that callers of Fixtures cannot affect each other.
func TestFixturesAreFresh(t *testing.T) {
	a, b := testenv.Fixtures(t), testenv.Fixtures(t)
	a[0].Zip[0] ^= 0xff
	if a[0].Zip[0] == b[0].Zip[0] {
		t.Errorf("two Fixtures calls share Zip bytes")
	}
}

func TestParseModuleDefaults(t *testing.T) {
	tests := []struct {
		name     string
		archive  string
		wantMod  string
		wantInfo string
	}{
		{
			name:     "go.mod from the tree, default time",
			archive:  "module example.com/a\nversion v1.0.0\n-- go.mod --\nmodule example.com/a\n-- a.go --\npackage a\n",
			wantMod:  "module example.com/a\n",
			wantInfo: `{"Version":"v1.0.0","Time":"2024-01-01T00:00:00Z"}` + "\n",
		},
		{
			name:     ".mod wins over go.mod",
			archive:  "module example.com/a\nversion v1.0.0\ntime 2023-05-06T07:08:09Z\n-- go.mod --\nmodule example.com/a\n-- .mod --\nmodule example.com/a\n\ngo 1.22\n",
			wantMod:  "module example.com/a\n\ngo 1.22\n",
			wantInfo: `{"Version":"v1.0.0","Time":"2023-05-06T07:08:09Z"}` + "\n",
		},
		{
			name:     "no go.mod is synthesized",
			archive:  "# comment\n\nmodule example.com/a\nversion v1.0.0\n-- a.go --\npackage a",
			wantMod:  "module example.com/a\n",
			wantInfo: `{"Version":"v1.0.0","Time":"2024-01-01T00:00:00Z"}` + "\n",
		},
		{
			name:     ".info verbatim, its time used",
			archive:  "module example.com/a\nversion v1.0.0\n-- .info --\n{\"Version\":\"v1.0.0\",\"Time\":\"2022-01-01T00:00:00Z\",\"Origin\":{}}\n-- a.go --\npackage a\n",
			wantMod:  "module example.com/a\n",
			wantInfo: `{"Version":"v1.0.0","Time":"2022-01-01T00:00:00Z","Origin":{}}` + "\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := testenv.ParseModule([]byte(tt.archive))
			if err != nil {
				t.Fatalf("ParseModule(%q): %v", tt.archive, err)
			}
			if string(m.Mod) != tt.wantMod || string(m.Info) != tt.wantInfo {
				t.Errorf("ParseModule(%q): Mod %q, Info %q; want %q, %q", tt.archive, m.Mod, m.Info, tt.wantMod, tt.wantInfo)
			}
		})
	}
}

func TestParseModuleErrors(t *testing.T) {
	tests := []struct {
		name    string
		archive string
		wantErr string // a phrase the message must contain, for the human reading it
	}{
		{"no module line", "version v1.0.0\n-- a.go --\npackage a\n", "no module line"},
		{"no version line", "module example.com/a\n-- a.go --\npackage a\n", "no version line"},
		{"unknown key", "module example.com/a\nversion v1.0.0\nauthor me\n", `unknown key "author"`},
		{"not a pair", "module example.com/a\nversion\n", "not a"},
		{"bad time", "module example.com/a\nversion v1.0.0\ntime yesterday\n", "line 3"},
		{"invalid version", "module example.com/a\nversion 1.0.0\n", "not a semantic version"},
		{"non-canonical version", "module example.com/a\nversion v1.0\n", "not canonical"},
		{"major suffix mismatch", "module example.com/a/v2\nversion v1.0.0\n", "v2"},
		{"incompatible with go.mod", "module example.com/a\nversion v2.0.0+incompatible\n-- go.mod --\nmodule example.com/a\n", "+incompatible"},
		{"file twice", "module example.com/a\nversion v1.0.0\n-- a.go --\npackage a\n-- a.go --\npackage a\n", "twice"},
		{"info time mismatch", "module example.com/a\nversion v1.0.0\ntime 2024-01-01T00:00:00Z\n-- .info --\n{\"Version\":\"v1.0.0\",\"Time\":\"2024-01-02T00:00:00Z\"}\n", "time line"},
		{"info version mismatch", "module example.com/a\nversion v1.0.0\n-- .info --\n{\"Version\":\"v1.0.1\"}\n", ".info"},
		{"invalid file name", "module example.com/a\nversion v1.0.0\n-- ../a.go --\npackage a\n", "a.go"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := testenv.ParseModule([]byte(tt.archive))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseModule(%q) = %v, %v; want error mentioning %q", tt.archive, m, err, tt.wantErr)
			}
		})
	}
}

func TestLoadModulesDuplicate(t *testing.T) {
	dir := t.TempDir()
	archive := []byte("module example.com/a\nversion v1.0.0\n-- a.go --\npackage a\n")
	for _, name := range []string{"one.txtar", "sub/two.txtar"} {
		writeFile(t, filepath.Join(dir, name), archive)
	}
	writeFile(t, filepath.Join(dir, "README"), []byte("not an archive"))
	if mods, err := testenv.LoadModules(os.DirFS(dir)); err == nil || !strings.Contains(err.Error(), "already defined") {
		t.Errorf("LoadModules(two archives of one version) = %v, %v; want an error", mods, err)
	}
}

func writeTemp(t *testing.T, data []byte) string {
	t.Helper()
	name := filepath.Join(t.TempDir(), "file.zip")
	writeFile(t, name, data)
	return name
}

func writeFile(t *testing.T, name string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, data, 0o666); err != nil {
		t.Fatal(err)
	}
}
