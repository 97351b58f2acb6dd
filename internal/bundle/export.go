package bundle

import (
	"archive/tar"
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/dirhash"
	"golang.org/x/mod/sumdb/note"

	"github.com/modgate/modgate/internal/storage"
)

// An ExportConfig says what Export writes.
type ExportConfig struct {
	Store storage.Store
	// Keys are the store keys to export (see Select).
	Keys []string
	// VulnDir is the vulnerability database copy to include; "" for none.
	VulnDir string
	// Since is a previous bundle's manifest: files it holds with the same
	// bytes are left out. Nil exports everything.
	Since *Manifest
	// Signer signs the manifest.
	Signer note.Signer
	// ScratchDir holds a file while it is hashed ("" for the system's).
	ScratchDir string
	Now        func() time.Time
}

// Stats counts what Export or Import handled.
type Stats struct {
	Files   int   // written (Export) or stored (Import)
	Skipped int   // unchanged since the previous bundle, or already stored
	Bytes   int64 // of the files written or stored
}

// Export writes a bundle to w and returns its signed manifest. A key that
// is not in the store is an error matching fs.ErrNotExist.
func Export(ctx context.Context, w io.Writer, cfg ExportConfig) (signed []byte, st Stats, err error) {
	now := time.Now
	if cfg.Now != nil {
		now = cfg.Now
	}
	prev := make(map[string]string)
	if cfg.Since != nil {
		for _, e := range cfg.Since.Entries {
			prev[e.Name] = e.SHA256
		}
	}
	tw := tar.NewWriter(w)
	m := &Manifest{Created: now()}
	add := func(name string, open func() (io.ReadCloser, error)) error {
		e, f, err := hashed(name, open, cfg.ScratchDir)
		if err != nil {
			return err
		}
		defer f.Close()
		if prev[name] == e.SHA256 {
			st.Skipped++
			return nil
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: e.Size, ModTime: m.Created, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			return err
		}
		if _, err := io.Copy(tw, f); err != nil {
			return err
		}
		m.Entries = append(m.Entries, e)
		st.Files++
		st.Bytes += e.Size
		return nil
	}
	done := make(map[string]bool)
	for _, key := range cfg.Keys {
		if err := ctx.Err(); err != nil {
			return nil, st, err
		}
		if done[key] {
			continue
		}
		done[key] = true
		if err := add("modules/"+key, func() (io.ReadCloser, error) { return cfg.Store.Get(ctx, key) }); err != nil {
			return nil, st, fmt.Errorf("exporting %s: %w", key, err)
		}
	}
	if cfg.VulnDir != "" {
		err := filepath.WalkDir(cfg.VulnDir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if p == cfg.VulnDir && errors.Is(err, fs.ErrNotExist) {
					return fs.SkipAll
				}
				return err
			}
			rel, _ := filepath.Rel(cfg.VulnDir, p)
			if strings.HasPrefix(d.Name(), ".") && p != cfg.VulnDir {
				if d.IsDir() {
					return fs.SkipDir
				}
				return nil
			}
			if !d.Type().IsRegular() {
				return nil
			}
			return add("vulndb/"+filepath.ToSlash(rel), func() (io.ReadCloser, error) { return os.Open(p) })
		})
		if err != nil {
			return nil, st, fmt.Errorf("exporting the vulnerability database: %w", err)
		}
	}
	signed, err = m.Sign(cfg.Signer)
	if err != nil {
		return nil, st, fmt.Errorf("signing the manifest: %w", err)
	}
	if err := tw.WriteHeader(&tar.Header{Name: manifestName, Mode: 0o644, Size: int64(len(signed)), ModTime: m.Created, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
		return nil, st, err
	}
	if _, err := tw.Write(signed); err != nil {
		return nil, st, err
	}
	return signed, st, tw.Close()
}

// A localFile is what the disk store's Get returns (an *os.File): it can
// be hashed in place and read again, with no copy.
type localFile interface {
	io.ReadSeekCloser
	io.ReaderAt
	Stat() (fs.FileInfo, error)
}

// hashed returns the entry of what open returns and a reader of the same
// bytes from the start, which the caller closes: the file itself when it
// is local, else a spooled copy that is removed on Close.
func hashed(name string, open func() (io.ReadCloser, error), dir string) (Entry, io.ReadCloser, error) {
	rc, err := open()
	if err != nil {
		return Entry{}, nil, err
	}
	if f, ok := rc.(localFile); ok {
		e, err := hashLocal(name, f)
		if err == nil {
			_, err = f.Seek(0, io.SeekStart)
		}
		if err != nil {
			f.Close()
			return Entry{}, nil, fmt.Errorf("%s: %w", name, err)
		}
		return e, f, nil
	}
	rc.Close()
	e, tmp, err := spool(name, open, dir)
	if err != nil {
		return Entry{}, nil, err
	}
	f, err := os.Open(tmp)
	os.Remove(tmp) // the open file stays readable
	if err != nil {
		return Entry{}, nil, err
	}
	return e, f, nil
}

func hashLocal(name string, f localFile) (Entry, error) {
	fi, err := f.Stat()
	if err != nil {
		return Entry{}, err
	}
	h := sha256.New()
	n, err := io.Copy(h, io.NewSectionReader(f, 0, fi.Size()))
	if err != nil {
		return Entry{}, err
	}
	e := Entry{Name: name, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}
	e.H1, err = goSumHashAt(name, f, n)
	return e, err
}

// spool copies what open returns into a temporary file, hashing it, and
// returns its entry (with the go.sum hash of a .mod or .zip) and the file.
func spool(name string, open func() (io.ReadCloser, error), dir string) (Entry, string, error) {
	rc, err := open()
	if err != nil {
		return Entry{}, "", err
	}
	defer rc.Close()
	f, err := os.CreateTemp(dir, "bundle-*")
	if err != nil {
		return Entry{}, "", err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), rc)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return Entry{}, "", err
	}
	e := Entry{Name: name, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}
	if e.H1, err = goSumHash(name, f.Name()); err != nil {
		os.Remove(f.Name())
		return Entry{}, "", fmt.Errorf("%s: %w", name, err)
	}
	return e, f.Name(), nil
}

// goSumHash returns the h1: hash of a .mod or .zip file at local, by its
// bundle name; "" for other files.
func goSumHash(name, local string) (string, error) {
	if !strings.HasPrefix(name, "modules/") || !strings.Contains(name, "/@v/") {
		return "", nil
	}
	f, err := os.Open(local)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	return goSumHashAt(name, f, fi.Size())
}

// goSumHashAt is goSumHash for size bytes read through r.
func goSumHashAt(name string, r io.ReaderAt, size int64) (string, error) {
	if !strings.HasPrefix(name, "modules/") || !strings.Contains(name, "/@v/") {
		return "", nil
	}
	switch path.Ext(name) {
	case ".mod":
		return dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) {
			return io.NopCloser(io.NewSectionReader(r, 0, size)), nil
		})
	case ".zip":
		// dirhash.HashZip with the zip's own file list.
		z, err := zip.NewReader(r, size)
		if err != nil {
			return "", err
		}
		var files []string
		byName := make(map[string]*zip.File)
		for _, f := range z.File {
			files = append(files, f.Name)
			byName[f.Name] = f
		}
		return dirhash.Hash1(files, func(n string) (io.ReadCloser, error) { return byName[n].Open() })
	}
	return "", nil
}

// checkEntryName accepts the names a bundle may hold.
func checkEntryName(name string) error {
	if key, ok := strings.CutPrefix(name, "modules/"); ok {
		if err := storage.CheckName(key); err != nil {
			return err
		}
		// Only what Export writes: module files under their canonical
		// escaped names (so no spelling of a path lands beside the one
		// the server looks up), and checksum-database files.
		if _, _, ok := parseFileKey(key); ok {
			return nil
		}
		if rest, ok := strings.CutPrefix(key, "sumdb/"); ok {
			_, file, _ := strings.Cut(rest, "/")
			if file == "supported" || strings.HasPrefix(file, "lookup/") || strings.HasPrefix(file, "tile/") {
				return nil
			}
		}
		return fmt.Errorf("name %q is not a module file or checksum database file", name)
	}
	if rel, ok := strings.CutPrefix(name, "vulndb/"); ok && fs.ValidPath(rel) && path.Clean(rel) == rel && !strings.HasPrefix(rel, ".") {
		return nil
	}
	return fmt.Errorf("name %q is neither modules/KEY nor vulndb/PATH", name)
}
