package policy

import (
	"archive/zip"
	"bytes"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/mod/module"
)

// licenseText returns a licence text from testdata/licenses (copied from
// github.com/google/licensecheck's test data).
func licenseText(t testing.TB, id string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "licenses", id+".txt"))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// buildZip returns a module zip of mod holding files (name -> content).
func buildZip(t testing.TB, mod module.Version, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	files["go.mod"] = "module " + mod.Path + "\n"
	for name, content := range files {
		w, err := zw.Create(mod.Path + "@" + mod.Version + "/" + name)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, content)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDetectLicense(t *testing.T) {
	mod := module.Version{Path: "example.com/m", Version: "v1.0.0"}
	tests := []struct {
		name        string
		files       map[string]string
		want        License
		wantUnknown bool
	}{
		{"MIT", map[string]string{"LICENSE": licenseText(t, "MIT")},
			License{IDs: []string{"MIT"}, Files: []string{"LICENSE"}}, false},
		{"Apache-2.0", map[string]string{"LICENSE.txt": licenseText(t, "Apache-2.0")},
			License{IDs: []string{"Apache-2.0"}, Files: []string{"LICENSE.txt"}}, false},
		{"BSD-3-Clause", map[string]string{"COPYING": licenseText(t, "BSD-3-Clause")},
			License{IDs: []string{"BSD-3-Clause"}, Files: []string{"COPYING"}}, false},
		{"AGPL-3.0", map[string]string{"LICENSE.md": licenseText(t, "AGPL-3.0")},
			License{IDs: []string{"AGPL-3.0"}, Files: []string{"LICENSE.md"}}, false},
		{"dual", map[string]string{"LICENSE-MIT": licenseText(t, "MIT"), "LICENSE-APACHE": licenseText(t, "Apache-2.0")},
			License{IDs: []string{"Apache-2.0", "MIT"}, Files: []string{"LICENSE-APACHE", "LICENSE-MIT"}}, false},
		{"none", map[string]string{"main.go": "package m\n"},
			License{IDs: []string{}, Files: []string{}}, true},
		{"only in a subdirectory", map[string]string{"vendor/x/LICENSE": licenseText(t, "MIT")},
			License{IDs: []string{}, Files: []string{}}, true},
		{"custom text", map[string]string{"LICENSE": "You may use this code on Tuesdays only.\n"},
			License{IDs: []string{}, Files: []string{"LICENSE"}, Unrecognized: []string{"LICENSE"}}, true},
		{"known licence plus extra conditions", map[string]string{"LICENSE": licenseText(t, "MIT") + extraConditions},
			License{IDs: []string{}, Files: []string{"LICENSE"}, Unrecognized: []string{"LICENSE"}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			z := buildZip(t, mod, tt.files)
			got, err := DetectLicense(bytes.NewReader(z), int64(len(z)), mod)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("DetectLicense (-want +got):\n%s", diff)
			}
			if got.Unknown() != tt.wantUnknown {
				t.Errorf("Unknown() = %v, want %v", got.Unknown(), tt.wantUnknown)
			}
		})
	}
}

// extraConditions is enough unknown text to push a licence file below the
// coverage threshold.
const extraConditions = `
Additional conditions: the software may not be used by any organisation
that sells widgets, gadgets, gizmos or contraptions of any kind, nor by
anyone acting on behalf of such an organisation, in any country, for any
purpose whatsoever, including evaluation, testing, research, teaching,
demonstration, benchmarking, or the preparation of derivative works. Any
use in violation of these conditions terminates the rights granted above
immediately and without notice. These conditions survive termination and
apply to every copy, modified or not, distributed by any party at all.
Further, every user must send a postcard to the authors each year and
publicly thank them in the documentation of any product built with this.
`

func TestIsLicenseFile(t *testing.T) {
	for _, name := range []string{"LICENSE", "license.md", "LICENCE", "COPYING.txt", "UNLICENSE", "LICENSE-APACHE", "MIT-LICENSE", "mit_license.txt"} {
		if !isLicenseFile(name) {
			t.Errorf("isLicenseFile(%q) = false, want true", name)
		}
	}
	for _, name := range []string{"README.md", "main.go", "go.mod", "NOTICE"} {
		if isLicenseFile(name) {
			t.Errorf("isLicenseFile(%q) = true, want false", name)
		}
	}
}

func TestLicenseDetectorClassifiesOnce(t *testing.T) {
	mod := module.Version{Path: "example.com/m", Version: "v1.0.0"}
	zipDir := t.TempDir()
	zipPath := filepath.Join(zipDir, "m.zip")
	opens := 0
	open := func(m module.Version) (io.ReadCloser, error) {
		opens++
		if m != mod {
			t.Errorf("opened %v, want %v", m, mod)
		}
		return os.Open(zipPath) // fs.ErrNotExist until the zip is written
	}
	cache := t.TempDir()
	d := NewLicenseDetector(cache, open)

	if _, ok := d.License(mod.Path, mod.Version); ok {
		t.Fatal("License before the zip exists: ok, want not known")
	}
	if err := os.WriteFile(zipPath, buildZip(t, mod, map[string]string{"LICENSE": licenseText(t, "MIT")}), 0o644); err != nil {
		t.Fatal(err)
	}
	want := License{IDs: []string{"MIT"}, Files: []string{"LICENSE"}}
	for range 3 {
		got, ok := d.License(mod.Path, mod.Version)
		if !ok || !cmp.Equal(got, want) {
			t.Fatalf("License = %+v, %v; want %+v, true", got, ok, want)
		}
	}
	if opens != 2 {
		t.Errorf("zip opened %d times, want 2 (one miss, one scan)", opens)
	}

	// A new detector on the same directory (a restart) does not read the
	// zip again.
	os.Remove(zipPath)
	d2 := NewLicenseDetector(cache, open)
	if got, ok := d2.License(mod.Path, mod.Version); !ok || !cmp.Equal(got, want) {
		t.Fatalf("after restart: License = %+v, %v; want %+v, true", got, ok, want)
	}
	if opens != 2 {
		t.Errorf("after restart: zip opened %d times in all, want still 2", opens)
	}
}

func TestLicenseDetectorStreamedZip(t *testing.T) {
	mod := module.Version{Path: "example.com/Upper", Version: "v2.0.0+incompatible"}
	z := buildZip(t, mod, map[string]string{"LICENSE": licenseText(t, "AGPL-3.0")})
	d := NewLicenseDetector(t.TempDir(), func(module.Version) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(z)), nil // not a file: copied to a temporary file
	})
	got, ok := d.License(mod.Path, mod.Version)
	if want := (License{IDs: []string{"AGPL-3.0"}, Files: []string{"LICENSE"}}); !ok || !cmp.Equal(got, want) {
		t.Errorf("License = %+v, %v; want %+v, true", got, ok, want)
	}
	missing := NewLicenseDetector("", func(module.Version) (io.ReadCloser, error) { return nil, fs.ErrNotExist })
	if _, ok := missing.License(mod.Path, mod.Version); ok {
		t.Error("License of a missing zip: ok, want not known")
	}
}
