package git

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"

	"golang.org/x/mod/module"
	modzip "golang.org/x/mod/zip"
)

// Size limits of the go command (cmd/go/internal/modfetch/codehost).
const (
	maxZipFile = 500 << 20 // the archive git writes
	maxLICENSE = 16 << 20
)

// zip writes the module zip of a canonical version to a temporary file in
// dir and returns it open at its start; the caller closes and removes it.
// The caller has checked the version with stat.
//
// It builds the zip exactly as the go command does, so that the h1: hash
// is the same: "git archive" of the module's directory at the commit, with
// export-ignore and export-subst switched off (see ensureAttributes), its
// regular files renamed to be relative to the module directory, the
// repository's root LICENSE added to a module in a subdirectory that has
// none, then golang.org/x/mod/zip.Create with its file rules and limits.
func (c *codeRepo) zip(ctx context.Context, version, dir string) (*os.File, error) {
	if version != module.CanonicalVersion(version) {
		return nil, notExist("version %s is not canonical", version)
	}
	rev, subdir, _, err := c.findDir(ctx, version)
	if err != nil {
		return nil, err
	}
	info, err := c.repo.stat(ctx, rev)
	if err != nil {
		return nil, err
	}

	archive, err := os.CreateTemp(dir, "archive-*.zip")
	if err != nil {
		return nil, err
	}
	defer os.Remove(archive.Name())
	defer archive.Close()
	lw := &limitWriter{w: archive, n: maxZipFile}
	if err := c.repo.archive(ctx, info.Name, subdir, lw); err != nil {
		if lw.exceeded {
			return nil, notExist("%s@%s: git archive is larger than %d bytes", c.modPath, version, maxZipFile)
		}
		return nil, err
	}
	size, err := archive.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, err
	}
	zr, err := zip.NewReader(archive, size)
	if err != nil {
		return nil, unavailable("reading git archive of %s: %v", info.Name, err)
	}

	prefix := "prefix/"
	if subdir != "" {
		prefix += strings.Trim(subdir, "/") + "/"
	}
	var files []modzip.File
	haveLICENSE := false
	for _, zf := range zr.File {
		name, ok := strings.CutPrefix(zf.Name, prefix)
		if !ok || name == "" || strings.HasSuffix(name, "/") {
			continue
		}
		files = append(files, zipFile{name: name, f: zf})
		if name == "LICENSE" {
			haveLICENSE = true
		}
	}
	if !haveLICENSE && subdir != "" {
		data, ok, err := c.repo.readFile(ctx, info.Name, "LICENSE")
		if err != nil {
			return nil, err
		}
		if ok && len(data) <= maxLICENSE {
			files = append(files, dataFile{name: "LICENSE", data: data})
		}
	}

	// Invalid files and oversized modules are permanent properties of the
	// version: "not found", as the go command would fail the download.
	if cf, _ := modzip.CheckFiles(files); cf.Err() != nil {
		err := cf.Err()
		return nil, notExist("%s@%s: cannot make a module zip: %v", c.modPath, version, err)
	}
	out, err := os.CreateTemp(dir, "module-*.zip")
	if err != nil {
		return nil, err
	}
	if err := modzip.Create(out, module.Version{Path: c.modPath, Version: version}, files); err != nil {
		out.Close()
		os.Remove(out.Name())
		return nil, fmt.Errorf("creating module zip of %s@%s: %w", c.modPath, version, err)
	}
	if _, err := out.Seek(0, io.SeekStart); err != nil {
		out.Close()
		os.Remove(out.Name())
		return nil, err
	}
	return out, nil
}

// limitWriter fails once more than n bytes were written.
type limitWriter struct {
	w        io.Writer
	n        int64
	exceeded bool
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.n {
		l.exceeded = true
		return 0, errors.New("archive too large")
	}
	l.n -= int64(len(p))
	return l.w.Write(p)
}

// zipFile is a file of the git archive, for modzip.Create.
type zipFile struct {
	name string
	f    *zip.File
}

func (f zipFile) Path() string                 { return f.name }
func (f zipFile) Lstat() (fs.FileInfo, error)  { return f.f.FileInfo(), nil }
func (f zipFile) Open() (io.ReadCloser, error) { return f.f.Open() }

// dataFile is a file held in memory, for modzip.Create.
type dataFile struct {
	name string
	data []byte
}

func (f dataFile) Path() string                 { return f.name }
func (f dataFile) Lstat() (fs.FileInfo, error)  { return dataFileInfo{f}, nil }
func (f dataFile) Open() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(f.data)), nil }

type dataFileInfo struct{ f dataFile }

func (fi dataFileInfo) Name() string       { return path.Base(fi.f.name) }
func (fi dataFileInfo) Size() int64        { return int64(len(fi.f.data)) }
func (fi dataFileInfo) Mode() fs.FileMode  { return 0o644 }
func (fi dataFileInfo) ModTime() time.Time { return time.Time{} }
func (fi dataFileInfo) IsDir() bool        { return false }
func (fi dataFileInfo) Sys() any           { return nil }
