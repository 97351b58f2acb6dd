package bundle

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/note"

	"github.com/modgate/modgate/internal/storage"
	"github.com/modgate/modgate/internal/storage/disk"
	"github.com/modgate/modgate/internal/testenv"
)

func newKeys(t testing.TB) (note.Signer, note.Verifier) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, "test-bundle")
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return s, v
}

func putFile(t testing.TB, s storage.Store, key string, data []byte) {
	t.Helper()
	if err := s.Put(context.Background(), key, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
}

// siteA returns a store holding hello v1.0.0 and a vulnerability database
// directory, and the keys to export.
func siteA(t *testing.T) (storage.Store, string, []string) {
	t.Helper()
	var hello *testenv.Module
	for _, m := range testenv.Fixtures(t) {
		if m.Path == "example.com/hello" && m.Version == "v1.0.0" {
			hello = m
		}
	}
	store := storage.NewMemory()
	keys := []string{"example.com/hello/@v/v1.0.0.info", "example.com/hello/@v/v1.0.0.mod", "example.com/hello/@v/v1.0.0.zip"}
	putFile(t, store, keys[0], []byte(`{"Version":"v1.0.0"}`))
	putFile(t, store, keys[1], hello.Mod)
	putFile(t, store, keys[2], hello.Zip)
	vuln := t.TempDir()
	os.MkdirAll(filepath.Join(vuln, "index"), 0o755)
	os.MkdirAll(filepath.Join(vuln, "ID"), 0o755)
	os.WriteFile(filepath.Join(vuln, "index", "db.json"), []byte(`{"modified":"2026-01-01T00:00:00Z"}`), 0o644)
	os.WriteFile(filepath.Join(vuln, "ID", "GO-2099-0001.json"), []byte(`{"id":"GO-2099-0001"}`), 0o644)
	return store, vuln, keys
}

func export(t *testing.T, cfg ExportConfig) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, _, err := Export(t.Context(), &buf, cfg); err != nil {
		t.Fatalf("Export: %v", err)
	}
	return buf.Bytes()
}

// TestRoundTrip: what Export writes, Import stores byte for byte, the
// vulnerability database included.
func TestRoundTrip(t *testing.T) {
	store, vuln, keys := siteA(t)
	signer, verifier := newKeys(t)
	data := export(t, ExportConfig{Store: store, Keys: keys, VulnDir: vuln, Signer: signer})

	dst := storage.NewMemory()
	dstVuln := t.TempDir()
	st, err := Import(t.Context(), bytes.NewReader(data), ImportConfig{Store: dst, Verifier: verifier, VulnDir: dstVuln})
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	if st.Files != 5 {
		t.Errorf("Import stored %d files, want 5", st.Files)
	}
	for _, k := range keys {
		want, _ := readAll(store, k)
		got, err := readAll(dst, k)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s after import: %v, differs: %v", k, err, !bytes.Equal(got, want))
		}
	}
	if b, err := os.ReadFile(filepath.Join(dstVuln, "ID", "GO-2099-0001.json")); err != nil || !strings.Contains(string(b), "GO-2099-0001") {
		t.Errorf("vulnerability database entry after import: %q, %v", b, err)
	}
	// Again: nothing new.
	st, err = Import(t.Context(), bytes.NewReader(data), ImportConfig{Store: dst, Verifier: verifier})
	if err != nil || st.Files != 0 || st.Skipped != 5 {
		t.Errorf("second Import = %+v, %v; want 0 stored, 5 skipped", st, err)
	}
}

func readAll(s storage.Store, key string) ([]byte, error) {
	rc, err := s.Get(context.Background(), key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// rewrite rebuilds a bundle through edit, which sees every entry and
// returns the entries to write.
func rewrite(t *testing.T, data []byte, edit func(name string, body []byte) []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		for _, e := range edit(hdr.Name, body) {
			tw.WriteHeader(&tar.Header{Name: e.name, Size: int64(len(e.body)), Mode: 0o644, Typeflag: e.typ()})
			tw.Write(e.body)
		}
	}
	tw.Close()
	return buf.Bytes()
}

type tarEntry struct {
	name    string
	body    []byte
	symlink bool
}

func (e tarEntry) typ() byte {
	if e.symlink {
		return tar.TypeSymlink
	}
	return tar.TypeReg
}

// TestImportRejects: every way a bundle can differ from what its signer
// wrote refuses it whole, naming the file, and stores nothing.
func TestImportRejects(t *testing.T) {
	store, vuln, keys := siteA(t)
	signer, verifier := newKeys(t)
	data := export(t, ExportConfig{Store: store, Keys: keys, VulnDir: vuln, Signer: signer})
	_, otherVerifier := newKeys(t)
	flip := func(target string) func(string, []byte) []tarEntry {
		return func(name string, body []byte) []tarEntry {
			if name == target {
				body = append([]byte(nil), body...)
				body[len(body)/2] ^= 1
			}
			return []tarEntry{{name: name, body: body}}
		}
	}
	tests := []struct {
		name     string
		bundle   []byte
		verifier note.Verifier
		want     string // in the error
	}{
		{"zip byte", rewrite(t, data, flip("modules/example.com/hello/@v/v1.0.0.zip")), verifier, "modules/example.com/hello/@v/v1.0.0.zip"},
		{"info byte", rewrite(t, data, flip("modules/example.com/hello/@v/v1.0.0.info")), verifier, "modules/example.com/hello/@v/v1.0.0.info"},
		{"vulndb byte", rewrite(t, data, flip("vulndb/ID/GO-2099-0001.json")), verifier, "vulndb/ID/GO-2099-0001.json"},
		{"manifest byte", rewrite(t, data, flip("manifest")), verifier, "manifest"},
		{"other key", data, otherVerifier, "manifest signature"},
		{"extra file", rewrite(t, data, func(name string, body []byte) []tarEntry {
			if name == "manifest" {
				return []tarEntry{{name: "modules/example.com/evil/@v/v1.0.0.mod", body: []byte("module example.com/evil\n")}, {name: name, body: body}}
			}
			return []tarEntry{{name: name, body: body}}
		}), verifier, "modules/example.com/evil/@v/v1.0.0.mod: not in the signed manifest"},
		{"missing file", rewrite(t, data, func(name string, body []byte) []tarEntry {
			if name == "modules/example.com/hello/@v/v1.0.0.mod" {
				return nil
			}
			return []tarEntry{{name: name, body: body}}
		}), verifier, "modules/example.com/hello/@v/v1.0.0.mod: in the manifest but not in the bundle"},
		{"no manifest", rewrite(t, data, func(name string, body []byte) []tarEntry {
			if name == "manifest" {
				return nil
			}
			return []tarEntry{{name: name, body: body}}
		}), verifier, "no manifest"},
		{"file after manifest", rewrite(t, data, func(name string, body []byte) []tarEntry {
			if name == "manifest" {
				return []tarEntry{{name: name, body: body}, {name: "vulndb/x.json", body: []byte("{}")}}
			}
			return []tarEntry{{name: name, body: body}}
		}), verifier, "vulndb/x.json: after the manifest"},
		{"escaping name", rewrite(t, data, func(name string, body []byte) []tarEntry {
			if name == "vulndb/ID/GO-2099-0001.json" {
				return []tarEntry{{name: "vulndb/../../etc/x", body: body}}
			}
			return []tarEntry{{name: name, body: body}}
		}), verifier, "vulndb/../../etc/x"},
		{"unescaped path", rewrite(t, data, func(name string, body []byte) []tarEntry {
			if name == "manifest" {
				return []tarEntry{{name: "modules/example.com/Hello/@v/v1.0.0.mod", body: []byte("module example.com/Hello\n")}, {name: name, body: body}}
			}
			return []tarEntry{{name: name, body: body}}
		}), verifier, "modules/example.com/Hello/@v/v1.0.0.mod"},
		{"not a module file", rewrite(t, data, func(name string, body []byte) []tarEntry {
			if name == "manifest" {
				return []tarEntry{{name: "modules/answers/example.com/hello/list", body: []byte("v9.9.9\n")}, {name: name, body: body}}
			}
			return []tarEntry{{name: name, body: body}}
		}), verifier, "modules/answers/example.com/hello/list"},
		{"symlink", rewrite(t, data, func(name string, body []byte) []tarEntry {
			if name == "vulndb/ID/GO-2099-0001.json" {
				return []tarEntry{{name: name, symlink: true}}
			}
			return []tarEntry{{name: name, body: body}}
		}), verifier, "vulndb/ID/GO-2099-0001.json: not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := storage.NewMemory()
			dstVuln := t.TempDir()
			_, err := Import(t.Context(), bytes.NewReader(tt.bundle), ImportConfig{Store: dst, Verifier: tt.verifier, VulnDir: dstVuln})
			if !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Import = %v, want ErrRejected naming %q", err, tt.want)
			}
			for _, k := range keys {
				if _, err := readAll(dst, k); err == nil {
					t.Errorf("%s was stored from a rejected bundle", k)
				}
			}
			if entries, _ := os.ReadDir(dstVuln); len(entries) != 0 {
				t.Errorf("the vulnerability database was written from a rejected bundle")
			}
		})
	}
}

// TestImportChecksSumDB: a bundle correctly signed by the operator whose
// zip is not what the checksum database records (site A's store was
// corrupted, or the signing key is in the wrong hands) is refused, because
// the bundle's own lookup and tiles prove the real hash.
func TestImportChecksSumDB(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	hello := up.Module("example.com/hello", "v1.0.0")
	store := storage.NewMemory()
	// The checksum database files that prove hello, as modgate stores them.
	remote := func(p string) ([]byte, error) {
		resp, err := http.Get(up.URL() + "/sumdb/" + up.SumDBName() + p)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			return nil, fmt.Errorf("%s: %s", p, resp.Status)
		}
		return io.ReadAll(resp.Body)
	}
	var sumKeys []string
	c, err := NewChecker(up.VerifierKey(), remote, func(file string, data []byte) {
		putFile(t, store, "sumdb/"+file, data)
		sumKeys = append(sumKeys, "sumdb/"+file)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Check(module.Version{Path: hello.Path, Version: hello.Version}, ".zip", hello.ZipHash); err != nil {
		t.Fatal(err)
	}
	if err := c.Check(module.Version{Path: hello.Path, Version: hello.Version}, ".zip", "h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="); err == nil {
		t.Fatal("Check accepted a wrong hash")
	}
	putFile(t, store, "example.com/hello/@v/v1.0.0.zip", hello.TamperedZip())
	keys := append([]string{"example.com/hello/@v/v1.0.0.zip"}, sumKeys...)
	signer, verifier := newKeys(t)
	data := export(t, ExportConfig{Store: store, Keys: keys, Signer: signer})

	dst := storage.NewMemory()
	_, err = Import(t.Context(), bytes.NewReader(data), ImportConfig{Store: dst, Verifier: verifier, SumDB: up.VerifierKey()})
	if !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "modules/example.com/hello/@v/v1.0.0.zip") {
		t.Fatalf("Import of a signed bundle with a zip the checksum database contradicts = %v, want ErrRejected naming the zip", err)
	}

	// The genuine zip passes, proved offline.
	putFile(t, store, "example.com/hello/@v/v1.0.0.zip", hello.Zip)
	data = export(t, ExportConfig{Store: store, Keys: keys, Signer: signer})
	st, err := Import(t.Context(), bytes.NewReader(data), ImportConfig{Store: dst, Verifier: verifier, SumDB: up.VerifierKey()})
	if err != nil || st.SumDBVerified != 1 {
		t.Fatalf("Import = %+v, %v; want one file proved", st, err)
	}
}

// BenchmarkExportImport measures bundle throughput on the disk store
// with a 64 MB module zip (go test -bench ExportImport ./internal/bundle).
func BenchmarkExportImport(b *testing.B) {
	m, err := testenv.LargeModule("example.com/large", "v1.0.0", 64<<20)
	if err != nil {
		b.Fatal(err)
	}
	src, err := disk.New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	putFile(b, src, "example.com/large/@v/v1.0.0.zip", m.Zip)
	putFile(b, src, "example.com/large/@v/v1.0.0.mod", m.Mod)
	signer, verifier := newKeys(b)
	keys := []string{"example.com/large/@v/v1.0.0.mod", "example.com/large/@v/v1.0.0.zip"}
	scratch := b.TempDir()
	bundleFile := filepath.Join(b.TempDir(), "b.tar")
	b.Run("export", func(b *testing.B) {
		b.SetBytes(int64(len(m.Zip) + len(m.Mod)))
		for b.Loop() {
			f, _ := os.Create(bundleFile)
			if _, _, err := Export(context.Background(), f, ExportConfig{Store: src, Keys: keys, Signer: signer, ScratchDir: scratch}); err != nil {
				b.Fatal(err)
			}
			f.Close()
		}
	})
	b.Run("import", func(b *testing.B) {
		b.SetBytes(int64(len(m.Zip) + len(m.Mod)))
		for b.Loop() {
			dst, _ := disk.New(b.TempDir())
			f, _ := os.Open(bundleFile)
			if _, err := Import(context.Background(), f, ImportConfig{Store: dst, Verifier: verifier, ScratchDir: scratch}); err != nil {
				b.Fatal(err)
			}
			f.Close()
		}
	})
}
