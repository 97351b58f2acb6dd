package policy

import (
	"archive/zip"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/google/licensecheck"
	"golang.org/x/mod/module"
	modzip "golang.org/x/mod/zip"
)

// A License is what the licence files at a module version's root say.
type License struct {
	// IDs are the licences recognised, as licensecheck names them (SPDX
	// identifiers such as "MIT", "Apache-2.0", "BSD-3-Clause",
	// "AGPL-3.0"), sorted, without duplicates.
	IDs []string `json:"ids"`
	// Files are the licence files found at the module root.
	Files []string `json:"files"`
	// Unrecognized are the files whose text is not covered well enough
	// by known licences (see licenseCoverage).
	Unrecognized []string `json:"unrecognized,omitempty"`
}

// Unknown reports whether the licence is not (fully) known: no licence
// file, or a file the classifier does not recognise.
func (l License) Unknown() bool { return len(l.IDs) == 0 || len(l.Unrecognized) > 0 }

// unknownReason says why Unknown is true, for messages.
func (l License) unknownReason() string {
	if len(l.Files) == 0 {
		return "no licence file at the module root"
	}
	if len(l.Unrecognized) > 0 {
		return "text of " + strings.Join(l.Unrecognized, ", ") + " is not a known licence"
	}
	return "no known licence in " + strings.Join(l.Files, ", ")
}

// licenseCoverage is the share of a licence file (in percent of its words)
// that known licence texts must cover for the file to count as recognised.
// Below it the file has text the classifier does not know (extra
// conditions, a custom licence), so its licence is unknown.
const licenseCoverage = 75

// maxLicenseFile bounds the size of one licence file read from a zip.
const maxLicenseFile = 1 << 20

// isLicenseFile reports whether a file name at a module root is a licence
// file: LICENSE, LICENCE, COPYING or UNLICENSE with any suffix
// ("LICENSE.md", "LICENSE-APACHE", "COPYING.txt"), and names such as
// "MIT-LICENSE". Case is ignored.
func isLicenseFile(name string) bool {
	n := strings.ToLower(name)
	for _, p := range []string{"license", "licence", "copying", "unlicense", "unlicence"} {
		if strings.HasPrefix(n, p) {
			return true
		}
	}
	base := strings.TrimSuffix(n, path.Ext(n))
	return strings.HasSuffix(base, "-license") || strings.HasSuffix(base, "_license") ||
		strings.HasSuffix(base, "-licence") || strings.HasSuffix(base, "_licence")
}

// DetectLicense classifies the licence files at the root of the module
// zip r (size bytes) of mod with licensecheck. Files in subdirectories
// (vendored code, examples) are not looked at.
func DetectLicense(r io.ReaderAt, size int64, mod module.Version) (License, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return License{}, fmt.Errorf("reading zip of %s: %w", mod, err)
	}
	prefix := mod.Path + "@" + mod.Version + "/"
	lic := License{IDs: []string{}, Files: []string{}}
	for _, zf := range zr.File {
		name, ok := strings.CutPrefix(zf.Name, prefix)
		if !ok || strings.Contains(name, "/") || !isLicenseFile(name) || zf.Mode().IsDir() {
			continue
		}
		text, err := readZipFile(zf)
		if err != nil {
			return License{}, fmt.Errorf("reading %s in zip of %s: %w", name, mod, err)
		}
		lic.Files = append(lic.Files, name)
		cov := licensecheck.Scan(text)
		if cov.Percent < licenseCoverage {
			lic.Unrecognized = append(lic.Unrecognized, name)
			continue
		}
		for _, m := range cov.Match {
			lic.IDs = append(lic.IDs, m.ID)
		}
	}
	slices.Sort(lic.IDs)
	lic.IDs = slices.Compact(lic.IDs)
	slices.Sort(lic.Files)
	slices.Sort(lic.Unrecognized)
	return lic, nil
}

func readZipFile(zf *zip.File) ([]byte, error) {
	if zf.UncompressedSize64 > maxLicenseFile {
		return nil, fmt.Errorf("larger than %d bytes", maxLicenseFile)
	}
	rc, err := zf.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, maxLicenseFile))
}

// A ZipOpener opens the module zip of mod. It returns an error matching
// fs.ErrNotExist when the zip is not available (not downloaded yet). The
// caller closes the result. When it is an *os.File (or anything with
// ReadAt and Stat), it is read in place; otherwise it is copied to a
// temporary file first.
type ZipOpener func(mod module.Version) (io.ReadCloser, error)

// A LicenseDetector is a LicenseSource that classifies each module
// version's zip once ever: results are kept in memory (bounded) and in a
// directory (one small JSON file per version under its escaped path), so a
// restarted server does not read zips again. It is safe for concurrent
// use.
type LicenseDetector struct {
	dir   string       // "" keeps results in memory only
	store LicenseStore // when set, keeps results instead of dir
	open  ZipOpener

	mu  sync.Mutex
	mem map[module.Version]License
}

// licenseMemSize bounds the in-memory results; when full it starts over.
const licenseMemSize = 16384

// NewLicenseDetector returns a detector caching results in dir ("" for
// memory only) and opening zips with open.
func NewLicenseDetector(dir string, open ZipOpener) *LicenseDetector {
	return &LicenseDetector{dir: dir, open: open, mem: make(map[module.Version]License)}
}

// License returns the licence of module@version. It returns false when the
// zip cannot be opened (not available yet) or read; nothing is cached
// then, so a later call tries again.
func (d *LicenseDetector) License(modPath, version string) (License, bool) {
	mod := module.Version{Path: modPath, Version: version}
	d.mu.Lock()
	lic, ok := d.mem[mod]
	d.mu.Unlock()
	if ok {
		return lic, true
	}
	lic, ok = d.readCache(mod)
	if !ok {
		var err error
		if lic, err = d.detect(mod); err != nil {
			return License{}, false
		}
		d.writeCache(mod, lic) // best effort: failing costs a later re-scan
	}
	d.mu.Lock()
	if len(d.mem) >= licenseMemSize {
		clear(d.mem)
	}
	d.mem[mod] = lic
	d.mu.Unlock()
	return lic, true
}

// detect classifies mod's zip without the caches.
func (d *LicenseDetector) detect(mod module.Version) (License, error) {
	rc, err := d.open(mod)
	if err != nil {
		return License{}, err
	}
	defer rc.Close()
	type statReaderAt interface {
		io.ReaderAt
		Stat() (fs.FileInfo, error)
	}
	if f, ok := rc.(statReaderAt); ok {
		fi, err := f.Stat()
		if err != nil {
			return License{}, err
		}
		return DetectLicense(f, fi.Size(), mod)
	}
	if d.dir != "" {
		if err := os.MkdirAll(d.dir, 0o755); err != nil {
			return License{}, err
		}
	}
	tmp, err := os.CreateTemp(d.dir, ".zip-*")
	if err != nil {
		return License{}, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	n, err := io.Copy(tmp, io.LimitReader(rc, modzip.MaxZipFile+1))
	if err != nil {
		return License{}, err
	}
	if n > modzip.MaxZipFile {
		return License{}, fmt.Errorf("zip of %s is larger than %d bytes", mod, int64(modzip.MaxZipFile))
	}
	return DetectLicense(tmp, n, mod)
}

// cacheFile is the result file for mod, or "" when mod cannot be escaped.
func (d *LicenseDetector) cacheFile(mod module.Version) string {
	if d.dir == "" {
		return ""
	}
	p, err := module.EscapePath(mod.Path)
	if err != nil {
		return ""
	}
	v, err := module.EscapeVersion(mod.Version)
	if err != nil {
		return ""
	}
	return filepath.Join(d.dir, filepath.FromSlash(p), "@v", v+".license.json")
}

func (d *LicenseDetector) readCache(mod module.Version) (License, bool) {
	if d.store != nil {
		return d.readStore(mod)
	}
	name := d.cacheFile(mod)
	if name == "" {
		return License{}, false
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return License{}, false
	}
	var lic License
	if json.Unmarshal(data, &lic) != nil {
		return License{}, false // rewritten after the next scan
	}
	return lic, true
}

// writeCache stores lic atomically: temporary file, fsync, rename.
func (d *LicenseDetector) writeCache(mod module.Version, lic License) error {
	if d.store != nil {
		return d.writeStore(mod, lic)
	}
	name := d.cacheFile(mod)
	if name == "" {
		return nil
	}
	data, err := json.Marshal(lic)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(name), ".license-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), name)
	}
	if err != nil {
		return fmt.Errorf("caching licence of %s: %w", mod, err)
	}
	return nil
}
