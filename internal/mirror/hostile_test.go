package mirror

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"io/fs"
	"testing"

	"golang.org/x/mod/sumdb/dirhash"
)

// zipOf builds a zip with the given entries (name → content), as a hostile
// upstream could.
func zipOf(t *testing.T, entries [][2]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for _, e := range entries {
		f, err := w.Create(e[0])
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte(e[1]))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestHostileZipsRefused: zips that would write outside the module
// directory, collide on case-insensitive file systems, or carry files of
// another module are refused before anything is stored or verified.
func TestHostileZipsRefused(t *testing.T) {
	const prefix = "example.com/a@v1.0.0/"
	tests := []struct {
		name    string
		entries [][2]string
	}{
		{"path traversal", [][2]string{{prefix + "go.mod", "module example.com/a\n"}, {prefix + "../../../etc/cron.d/evil", "x"}}},
		{"absolute path", [][2]string{{"/etc/passwd", "x"}}},
		{"outside the module prefix", [][2]string{{"example.com/other@v1.0.0/a.go", "package a"}}},
		{"case-insensitive collision", [][2]string{{prefix + "a.go", "package a"}, {prefix + "A.go", "package a"}}},
		{"duplicate name", [][2]string{{prefix + "a.go", "package a"}, {prefix + "a.go", "package b"}}},
		{"backslash", [][2]string{{prefix + `..\..\evil`, "x"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			key := "example.com/a/@v/v1.0.0.zip"
			f.src.set(key, zipOf(t, tt.entries))
			_, err := f.m.File(t.Context(), "example.com/a", "v1.0.0", key, Options{})
			if !errors.Is(err, ErrVerification) {
				t.Fatalf("hostile zip (%s): err = %v, want ErrVerification", tt.name, err)
			}
			if _, err := f.store.Get(t.Context(), key); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("hostile zip (%s) was stored", tt.name)
			}
		})
	}
}

// TestZipLyingAboutSizeRefused: a zip whose header declares a small file
// that inflates to more is refused while hashing, not stored.
func TestZipLyingAboutSizeRefused(t *testing.T) {
	f := newFixture(t)
	f.m.cfg.Checker = hashingChecker{}
	data := zipOf(t, [][2]string{{"example.com/a@v1.0.0/go.mod", "module example.com/a\n"}, {"example.com/a@v1.0.0/big.txt", string(bytes.Repeat([]byte("x"), 1<<16))}})
	// Patch the central directory's uncompressed size of big.txt to 10.
	cd := bytes.LastIndex(data, []byte("PK\x01\x02"))
	if cd < 0 {
		t.Fatal("no central directory entry")
	}
	putUint32(data[cd+24:], 10)
	key := "example.com/a/@v/v1.0.0.zip"
	f.src.set(key, data)
	if _, err := f.m.File(t.Context(), "example.com/a", "v1.0.0", key, Options{}); !errors.Is(err, ErrVerification) {
		t.Fatalf("zip lying about a size: err = %v, want ErrVerification", err)
	}
	if _, err := f.store.Get(t.Context(), key); !errors.Is(err, fs.ErrNotExist) {
		t.Error("a zip lying about its sizes was stored")
	}
}

func putUint32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}

// hashingChecker hashes the zip as the real checksum-database Checker does
// (reading every file through archive/zip), and accepts any hash.
type hashingChecker struct{}

func (hashingChecker) Covers(string) bool { return true }
func (hashingChecker) CheckMod(context.Context, string, string, []byte) error {
	return nil
}
func (hashingChecker) CheckZip(_ context.Context, _, _, zipPath string) error {
	_, err := dirhash.HashZip(zipPath, dirhash.Hash1)
	return err
}
