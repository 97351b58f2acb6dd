package testenv

import (
	"archive/zip"
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	"golang.org/x/mod/sumdb/dirhash"
	modzip "golang.org/x/mod/zip"
)

// fixtures is the starter set of module archives returned by Fixtures.
//
//go:embed testdata/mod/*.txtar
var fixtures embed.FS

// DefaultTime is the commit time of a module version whose archive gives
// neither a time line nor an .info file. A fixed time keeps .info files,
// and so every test that prints them, reproducible.
const DefaultTime = "2024-01-01T00:00:00Z"

// A Module is one synthetic module version and the protocol files a proxy
// serves for it. Modules come from ParseModule, LoadModules or Fixtures;
// treat them as read-only once built, since an Upstream serves them
// concurrently.
type Module struct {
	Path    string    // module path, e.g. "example.com/hello/v2"
	Version string    // canonical version, e.g. "v2.0.0" or "v2.0.0+incompatible"
	Time    time.Time // commit time reported in Info

	Info []byte // the .info file
	Mod  []byte // the .mod file
	Zip  []byte // the module zip, as built by golang.org/x/mod/zip.Create

	ZipHash string // "h1:..." of Zip, the hash go.sum records for the module
	ModHash string // "h1:..." of Mod, the hash go.sum records for path/go.mod

	tamperedZip []byte
	tamperedMod []byte
}

// String returns "path@version".
func (m *Module) String() string { return m.Path + "@" + m.Version }

// GoSum returns the two go.sum lines for m, as the checksum database records them.
func (m *Module) GoSum() string {
	return fmt.Sprintf("%s %s %s\n%s %s/go.mod %s\n", m.Path, m.Version, m.ZipHash, m.Path, m.Version, m.ModHash)
}

// TamperedZip returns a valid module zip for m in which one byte of one file
// differs from Zip (the first file in name order other than go.mod), so its
// hash differs from ZipHash. It is what an upstream serving poisoned content
// would send.
func (m *Module) TamperedZip() []byte { return m.tamperedZip }

// TamperedMod returns a .mod file that differs from Mod by one appended
// comment line, so its hash differs from ModHash.
func (m *Module) TamperedMod() []byte { return m.tamperedMod }

// Fixtures returns the starter set of modules embedded from testdata/mod
// (listed in the package documentation), freshly parsed so that callers may
// not affect each other. It fails the test if a fixture is malformed.
func Fixtures(t testing.TB) []*Module {
	t.Helper()
	mods, err := LoadFixtures()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return mods
}

// LoadFixtures is Fixtures for callers without a testing.TB.
func LoadFixtures() ([]*Module, error) {
	sub, err := fs.Sub(fixtures, "testdata/mod")
	if err != nil {
		return nil, err
	}
	return LoadModules(sub)
}

// LoadModules parses every file named *.txtar in fsys, at any depth, as a
// module archive (see ParseModule); for a directory use os.DirFS(dir).
// The result is sorted by module path, then by semantic version.
// Two archives for the same module version are an error.
func LoadModules(fsys fs.FS) ([]*Module, error) {
	var mods []*Module
	seen := make(map[module.Version]string)
	err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path.Ext(name) != ".txtar" {
			return err
		}
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		m, err := ParseModule(data)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		mv := module.Version{Path: m.Path, Version: m.Version}
		if prev, ok := seen[mv]; ok {
			return fmt.Errorf("%s: %s already defined in %s", name, m, prev)
		}
		seen[mv] = name
		mods = append(mods, m)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("loading modules: %w", err)
	}
	slices.SortFunc(mods, func(a, b *Module) int {
		if c := strings.Compare(a.Path, b.Path); c != 0 {
			return c
		}
		return semver.Compare(a.Version, b.Version)
	})
	return mods, nil
}

// ParseModule builds a module version from a txtar archive.
//
// The archive comment has one "key value" pair a line: "module <path>" and
// "version <version>" are required, "time <RFC 3339 time>" is optional;
// blank lines and lines starting with # are ignored. The version must be
// canonical and agree with the path's major-version suffix (module.Check).
//
// The files ".mod" and ".info", when present, are served verbatim (a .mod
// whose module line disagrees with the path is allowed, to test the go
// command's reaction to it); every other file is part of the module tree.
// An +incompatible version must not have a go.mod in its tree, as the go
// command would refuse it. The zip is built with golang.org/x/mod/zip.Create,
// which silently leaves out what never belongs in a module zip (files of
// nested modules, most of vendor/) and rejects invalid names.
func ParseModule(data []byte) (*Module, error) {
	comment, files := parseArchive(data)
	m := new(Module)
	if err := m.parseHeader(comment); err != nil {
		return nil, fmt.Errorf("module archive: %w", err)
	}
	if err := m.build(files); err != nil {
		return nil, fmt.Errorf("module archive for %s: %w", m, err)
	}
	return m, nil
}

// parseHeader sets Path, Version and Time from the archive comment.
func (m *Module) parseHeader(comment string) error {
	for i, line := range strings.Split(comment, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, ok := strings.Cut(line, " ")
		value = strings.TrimSpace(value)
		if !ok || value == "" || strings.ContainsAny(value, " \t") {
			return fmt.Errorf("line %d: %q is not a \"key value\" pair", i+1, line)
		}
		switch key {
		case "module":
			m.Path = value
		case "version":
			m.Version = value
		case "time":
			t, err := time.Parse(time.RFC3339, value)
			if err != nil {
				return fmt.Errorf("line %d: %w", i+1, err)
			}
			m.Time = t.UTC()
		default:
			return fmt.Errorf("line %d: unknown key %q (want module, version or time)", i+1, key)
		}
	}
	switch {
	case m.Path == "":
		return errors.New("no module line in the archive comment")
	case m.Version == "":
		return fmt.Errorf("%s: no version line in the archive comment", m.Path)
	}
	if err := module.Check(m.Path, m.Version); err != nil {
		return err
	}
	if c := module.CanonicalVersion(m.Version); c != m.Version {
		return fmt.Errorf("%s: version %q is not canonical (want %q)", m.Path, m.Version, c)
	}
	return nil
}

// build computes the protocol files and hashes from the archive's files.
func (m *Module) build(files []archiveFile) error {
	var tree []archiveFile
	var info, dotMod, goMod []byte
	names := make(map[string]bool)
	for _, f := range files {
		if names[f.name] {
			return fmt.Errorf("file %q appears twice", f.name)
		}
		names[f.name] = true
		switch f.name {
		case ".info":
			info = f.data
		case ".mod":
			dotMod = f.data
		default:
			tree = append(tree, f)
			if f.name == "go.mod" {
				goMod = f.data
			}
		}
	}
	if goMod != nil && strings.HasSuffix(m.Version, "+incompatible") {
		return errors.New("an +incompatible version must not contain go.mod")
	}
	switch {
	case dotMod != nil:
		m.Mod = dotMod
	case goMod != nil:
		m.Mod = goMod
	default:
		m.Mod = []byte("module " + m.Path + "\n")
	}

	if info != nil {
		var fields struct {
			Version string
			Time    time.Time
		}
		if err := json.Unmarshal(info, &fields); err != nil {
			return fmt.Errorf(".info: %w", err)
		}
		if fields.Version != m.Version {
			return fmt.Errorf(".info: Version is %q, want %q", fields.Version, m.Version)
		}
		switch {
		case m.Time.IsZero():
			m.Time = fields.Time.UTC()
		case !m.Time.Equal(fields.Time):
			return fmt.Errorf(".info: Time is %v, but the time line says %v", fields.Time, m.Time)
		}
		m.Info = info
	} else {
		if m.Time.IsZero() {
			m.Time, _ = time.Parse(time.RFC3339, DefaultTime)
		}
		info, err := json.Marshal(struct {
			Version string
			Time    time.Time
		}{m.Version, m.Time})
		if err != nil {
			return err
		}
		m.Info = append(info, '\n')
	}

	slices.SortFunc(tree, func(a, b archiveFile) int { return strings.Compare(a.name, b.name) })
	var err error
	if m.Zip, err = m.createZip(tree); err != nil {
		return err
	}
	if m.ZipHash, err = hashZip(m.Zip); err != nil {
		return fmt.Errorf("hashing zip: %w", err)
	}
	if m.ModHash, err = hashMod(m.Mod); err != nil {
		return fmt.Errorf("hashing .mod: %w", err)
	}
	if m.tamperedZip, err = m.createZip(tamper(tree)); err != nil {
		return fmt.Errorf("tampered copy: %w", err)
	}
	m.tamperedMod = append(slices.Clip(m.Mod), "// tampered by testenv\n"...)
	return nil
}

// createZip builds the module zip of tree with golang.org/x/mod/zip.
func (m *Module) createZip(tree []archiveFile) ([]byte, error) {
	files := make([]modzip.File, len(tree))
	for i, f := range tree {
		files[i] = f
	}
	var buf bytes.Buffer
	if err := modzip.Create(&buf, module.Version{Path: m.Path, Version: m.Version}, files); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// tamper returns a copy of tree in which one byte of one file is changed:
// the last byte of the first file other than go.mod (or of go.mod when it is
// the only file). Text stays text, so the tampered zip is still one the go
// command can extract; only its hash gives it away.
func tamper(tree []archiveFile) []archiveFile {
	out := slices.Clone(tree)
	if len(out) == 0 {
		return out
	}
	i := slices.IndexFunc(out, func(f archiveFile) bool { return f.name != "go.mod" })
	if i < 0 {
		i = 0
	}
	data := slices.Clone(out[i].data)
	switch {
	case len(data) == 0:
		data = []byte("\n")
	case data[len(data)-1] == '\n':
		data[len(data)-1] = ' '
	default:
		data[len(data)-1] = '\n'
	}
	out[i].data = data
	return out
}

// hashZip computes the dirhash of a module zip held in memory, exactly as
// dirhash.HashZip does for a zip file.
func hashZip(data []byte) (string, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return "", err
	}
	names := make([]string, len(zr.File))
	byName := make(map[string]*zip.File, len(zr.File))
	for i, f := range zr.File {
		names[i] = f.Name
		byName[f.Name] = f
	}
	return dirhash.Hash1(names, func(name string) (io.ReadCloser, error) {
		return byName[name].Open()
	})
}

// hashMod computes the go.sum hash of a .mod file, which the go command
// defines as the dirhash of a tree holding only that file, named go.mod.
func hashMod(data []byte) (string, error) {
	return dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	})
}

// An archiveFile is one file of a txtar archive. It implements
// golang.org/x/mod/zip.File so that the module tree can be zipped directly.
type archiveFile struct {
	name string
	data []byte
}

func (f archiveFile) Path() string                 { return f.name }
func (f archiveFile) Lstat() (fs.FileInfo, error)  { return fileInfo{f}, nil }
func (f archiveFile) Open() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(f.data)), nil }

// fileInfo describes an archiveFile as a regular, read-only file.
type fileInfo struct{ f archiveFile }

func (fi fileInfo) Name() string       { return path.Base(fi.f.name) }
func (fi fileInfo) Size() int64        { return int64(len(fi.f.data)) }
func (fi fileInfo) Mode() fs.FileMode  { return 0o644 }
func (fi fileInfo) ModTime() time.Time { return time.Time{} }
func (fi fileInfo) IsDir() bool        { return false }
func (fi fileInfo) Sys() any           { return nil }

// parseArchive splits a txtar archive into its comment and files. A file
// starts after a line "-- name --" and runs to the next such line; a final
// line without a newline gets one, as in the txtar format. (The txtar package
// of go-internal needs golang.org/x/tools, which this module does not require.)
func parseArchive(data []byte) (comment string, files []archiveFile) {
	var head []byte
	for len(data) > 0 {
		var line []byte // one line, always with its newline
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i+1], data[i+1:]
		} else {
			line, data = append(slices.Clip(data), '\n'), nil
		}
		if name, ok := fileMarker(line[:len(line)-1]); ok {
			files = append(files, archiveFile{name: name, data: []byte{}})
			continue
		}
		if len(files) == 0 {
			head = append(head, line...)
		} else {
			last := &files[len(files)-1]
			last.data = append(last.data, line...)
		}
	}
	return string(head), files
}

// fileMarker reports whether line is a txtar file marker and returns its name.
func fileMarker(line []byte) (string, bool) {
	s := strings.TrimSuffix(string(line), "\r")
	if !strings.HasPrefix(s, "-- ") || !strings.HasSuffix(s, " --") || len(s) < len("-- x --") {
		return "", false
	}
	name := strings.TrimSpace(s[3 : len(s)-3])
	return name, name != ""
}

// LargeModule returns a module version holding about size bytes of
// deterministic, poorly compressible text, so that its zip is about as
// large: for tests of large downloads, full disks and interrupted writes.
func LargeModule(path, version string, size int) (*Module, error) {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	data := make([]byte, size)
	x := uint64(len(path))*0x9E3779B97F4A7C15 + uint64(size)
	for _, c := range path {
		x = x*31 + uint64(c)
	}
	for i := range data {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		data[i] = alphabet[x%uint64(len(alphabet))]
	}
	archive := fmt.Sprintf("module %s\nversion %s\n-- go.mod --\nmodule %s\n-- data.go --\npackage large\n\nconst Data = %q\n", path, version, path, data)
	return ParseModule([]byte(archive))
}
