package modhash

import (
	"archive/zip"
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/mod/sumdb/dirhash"
)

// writeZip writes a zip of the given entries (name, content; repeated
// names allowed) and returns its path.
func writeZip(t testing.TB, entries [][2]string, method uint16) string {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for _, e := range entries {
		f, err := w.CreateHeader(&zip.FileHeader{Name: e[0], Method: method})
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte(e[1]))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "m.zip")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestZipMatchesDirhash(t *testing.T) {
	big := string(bytes.Repeat([]byte("package big\n// filler\n"), 20000))
	cases := map[string][][2]string{
		"module":     {{"example.com/m@v1.0.0/go.mod", "module example.com/m\n"}, {"example.com/m@v1.0.0/a.go", "package a\n"}},
		"unsorted":   {{"z/b.go", "b"}, {"a/c.go", "c"}, {"m/a.go", big}},
		"empty":      {},
		"empty file": {{"x/empty", ""}},
		"duplicate":  {{"x/a", "first"}, {"x/a", "second"}, {"x/b", "b"}},
		"newline":    {{"x/a\nb", "x"}},
	}
	for name, entries := range cases {
		for _, method := range []uint16{zip.Store, zip.Deflate} {
			p := writeZip(t, entries, method)
			want, wantErr := dirhash.HashZip(p, dirhash.Hash1)
			got, err := Zip(p)
			if got != want || (err == nil) != (wantErr == nil) || (err != nil && err.Error() != wantErr.Error()) {
				t.Errorf("%s (method %d): Zip = %q, %v; dirhash = %q, %v", name, method, got, err, want, wantErr)
			}
		}
	}
	// Not a zip at all.
	p := filepath.Join(t.TempDir(), "bad.zip")
	os.WriteFile(p, []byte("not a zip"), 0o644)
	if _, err := Zip(p); err == nil {
		t.Error("Zip of a file that is not a zip: no error")
	}
}

// FuzzZip: for any bytes, Zip and dirhash agree (both fail, or both give
// the same hash).
func FuzzZip(f *testing.F) {
	for _, method := range []uint16{zip.Store, zip.Deflate} {
		p := writeZip(f, [][2]string{{"a/go.mod", "module a\n"}, {"a/x.go", "package x\n"}}, method)
		data, _ := os.ReadFile(p)
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "f.zip")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		want, wantErr := dirhash.HashZip(p, dirhash.Hash1)
		got, err := Zip(p)
		if (err == nil) != (wantErr == nil) || got != want {
			t.Fatalf("Zip = %q, %v; dirhash = %q, %v", got, err, want, wantErr)
		}
	})
}

// BenchmarkZip compares Zip with dirhash.HashZip on a zip of many small
// files (a typical module), in the same run.
func BenchmarkZip(b *testing.B) {
	var entries [][2]string
	src := string(bytes.Repeat([]byte("package p\n\nfunc F() int { return 42 }\n"), 60))
	for i := range 300 {
		entries = append(entries, [2]string{"example.com/m@v1.0.0/" + string(rune('a'+i%26)) + "/f" + itoa(i) + ".go", src})
	}
	p := writeZip(b, entries, zip.Deflate)
	b.Run("modhash", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Zip(p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("dirhash", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := dirhash.HashZip(p, dirhash.Hash1); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var d []byte
	for ; i > 0; i /= 10 {
		d = append([]byte{byte('0' + i%10)}, d...)
	}
	return string(d)
}
