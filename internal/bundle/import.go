package bundle

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/note"

	"github.com/modgate/modgate/internal/storage"
)

// An ImportConfig says where Import stores a bundle and what it trusts.
type ImportConfig struct {
	Store storage.Store
	// Verifier checks the manifest's signature (the exporting operator's
	// public key).
	Verifier note.Verifier
	// SumDB, when set, is the checksum database the importing modgate
	// uses (GOSUMDB form: a verifier key). Every .mod and .zip whose
	// lookup the bundle carries is then checked against that lookup,
	// proved with the bundle's tiles, offline.
	SumDB string
	// VulnDir receives the vulnerability database files; "" skips them.
	VulnDir string
	// ScratchDir holds the bundle while it is checked ("" for the
	// system's temporary directory).
	ScratchDir string
}

// An ImportStats adds to Stats what was verified against the checksum
// database.
type ImportStats struct {
	Stats
	SumDBVerified int // .mod and .zip files proved against the checksum database
}

// Import reads a bundle from r, checks it whole, and only then stores it.
// Any problem is an error matching ErrRejected that names the file, and
// nothing is stored. Files the store has already are left as they are.
func Import(ctx context.Context, r io.Reader, cfg ImportConfig) (ImportStats, error) {
	var st ImportStats
	stage, err := os.MkdirTemp(cfg.ScratchDir, "import-*")
	if err != nil {
		return st, err
	}
	defer os.RemoveAll(stage)

	staged := make(map[string]Entry) // name -> what the bytes are
	local := make(map[string]string) // name -> staged file
	var signed []byte
	tr := tar.NewReader(r)
	for i := 0; ; i++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return st, fmt.Errorf("%w: reading the tar: %v", ErrRejected, err)
		}
		if hdr.Typeflag != tar.TypeReg {
			return st, fmt.Errorf("%w: %s: not a regular file", ErrRejected, hdr.Name)
		}
		if signed != nil {
			return st, fmt.Errorf("%w: %s: after the manifest, which must be last", ErrRejected, hdr.Name)
		}
		if hdr.Name == manifestName {
			if signed, err = io.ReadAll(io.LimitReader(tr, 256<<20)); err != nil {
				return st, fmt.Errorf("%w: reading the manifest: %v", ErrRejected, err)
			}
			continue
		}
		if err := checkEntryName(hdr.Name); err != nil {
			return st, fmt.Errorf("%w: %v", ErrRejected, err)
		}
		if _, dup := staged[hdr.Name]; dup {
			return st, fmt.Errorf("%w: %s: twice in the bundle", ErrRejected, hdr.Name)
		}
		p := filepath.Join(stage, strconv.Itoa(i))
		e, tmp, err := spool(hdr.Name, func() (io.ReadCloser, error) { return io.NopCloser(tr), nil }, stage)
		if err != nil {
			// A .zip that is not a zip fails here, before the manifest
			// is read; it is a changed file all the same.
			return st, fmt.Errorf("%w: %s: %v", ErrRejected, hdr.Name, err)
		}
		staged[hdr.Name] = e
		local[hdr.Name] = p
		if err := os.Rename(tmp, p); err != nil {
			return st, err
		}
	}
	if signed == nil {
		return st, fmt.Errorf("%w: no manifest", ErrRejected)
	}
	m, err := OpenManifest(signed, cfg.Verifier)
	if err != nil {
		return st, err
	}
	listed := make(map[string]bool, len(m.Entries))
	for _, e := range m.Entries {
		listed[e.Name] = true
		got, ok := staged[e.Name]
		switch {
		case !ok:
			return st, fmt.Errorf("%w: %s: in the manifest but not in the bundle", ErrRejected, e.Name)
		case got.Size != e.Size || got.SHA256 != e.SHA256:
			return st, fmt.Errorf("%w: %s: content differs from the signed manifest (sha256 %s, want %s)", ErrRejected, e.Name, got.SHA256, e.SHA256)
		case got.H1 != e.H1:
			return st, fmt.Errorf("%w: %s: go.sum hash %s, manifest says %s", ErrRejected, e.Name, got.H1, e.H1)
		}
	}
	for name := range staged {
		if !listed[name] {
			return st, fmt.Errorf("%w: %s: not in the signed manifest", ErrRejected, name)
		}
	}
	if cfg.SumDB != "" {
		n, err := verifyAgainstSumDB(cfg.SumDB, m, local)
		if err != nil {
			return st, err
		}
		st.SumDBVerified = n
	}

	// Everything checks out: store it. Module files before the checksum
	// database files, so that a crash in between leaves nothing a client
	// could look up but not download.
	names := make([]string, 0, len(local))
	for name := range local {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool {
		ai, bi := strings.HasPrefix(names[i], "modules/sumdb/"), strings.HasPrefix(names[j], "modules/sumdb/")
		if ai != bi {
			return !ai
		}
		return names[i] < names[j]
	})
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		stored, err := put(ctx, cfg, name, local[name])
		if err != nil {
			return st, fmt.Errorf("storing %s: %w", name, err)
		}
		if stored {
			st.Files++
			st.Bytes += staged[name].Size
		} else {
			st.Skipped++
		}
	}
	return st, nil
}

// put stores one verified file; false when the store had it already.
func put(ctx context.Context, cfg ImportConfig, name, local string) (bool, error) {
	if rel, ok := strings.CutPrefix(name, "vulndb/"); ok {
		if cfg.VulnDir == "" {
			return false, nil
		}
		dst := filepath.Join(cfg.VulnDir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return false, err
		}
		return true, replaceFile(local, dst) // vulndb entries replace the copy
	}
	key := strings.TrimPrefix(name, "modules/")
	// Everything a bundle carries is immutable (a tile of a given width
	// never changes, nor does a lookup or a module file): keep what is
	// stored.
	if rc, err := cfg.Store.Get(ctx, key); err == nil {
		rc.Close()
		return false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	if fp, ok := cfg.Store.(storage.FilePutter); ok {
		if err := fp.PutFile(ctx, key, local); err == nil {
			return true, nil
		}
	}
	f, err := os.Open(local)
	if err != nil {
		return false, err
	}
	defer f.Close()
	return true, cfg.Store.Put(ctx, key, f)
}

// moduleOf returns the module version and file kind of a bundle name for a
// .mod or .zip.
func moduleOf(name string) (module.Version, string, bool) {
	key, ok := strings.CutPrefix(name, "modules/")
	if !ok {
		return module.Version{}, "", false
	}
	m, ext, ok := parseFileKey(key)
	if !ok || ext == ".info" {
		return module.Version{}, "", false
	}
	return m, ext, true
}

// replaceFile moves local to dst atomically; across file systems (the
// vulnerability database may live elsewhere) it copies to a temporary file
// beside dst first.
func replaceFile(local, dst string) error {
	if err := os.Rename(local, dst); err == nil {
		return nil
	}
	in, err := os.Open(local)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".import-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = io.Copy(tmp, in)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}
