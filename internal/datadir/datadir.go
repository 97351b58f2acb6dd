// Package datadir moves a single modgate's data directory into the shared
// stores of a cluster (README: "Running replicas"): its module files into
// the object store, its tokens, private-module ledger and verified
// checksum-database tree heads into the shared state. `modgate
// import-data` runs it.
//
// Nothing already in the destination is ever replaced. A file or record
// that is there with the same content is skipped, so an import can be run
// again after an interruption; one that is there with other content is a
// conflict: reported, left alone, and the import fails once it has copied
// everything else. The source is only read.
//
// What is not copied, and why: the audit log (a replica's file chain
// cannot become part of the cluster's chain without re-hashing every
// record; keep the directory as the archive of the single node's history
// and verify it there), webhook deliveries (replay protection for minutes,
// not history), Git mirrors and temporary files (caches the replicas
// rebuild).
package datadir

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	xsumdb "golang.org/x/mod/sumdb"

	"github.com/modgate/modgate/internal/auth"
	"github.com/modgate/modgate/internal/ledger"
	"github.com/modgate/modgate/internal/storage"
	"github.com/modgate/modgate/internal/sumdb"
)

// ErrConflict matches the error of an import that found something in the
// destination with other content than the source's.
var ErrConflict = errors.New("different content already in the destination")

// A Target is where an import copies to. A nil field is not copied.
type Target struct {
	Store  storage.Store   // module files
	Tokens auth.TokenStore // tokens
	Ledger ledger.Backend  // first-seen hashes of private modules
	Heads  sumdb.HeadStore // verified checksum-database tree heads
}

// A Report counts what an import did.
type Report struct {
	Files, FilesSkipped   int
	Bytes                 int64
	Tokens, TokensSkipped int
	Ledger, LedgerSkipped int
	Heads, HeadsSkipped   int
	// Conflicts names each thing left alone because the destination has
	// other content.
	Conflicts []string
}

// String is a one-line summary.
func (r Report) String() string {
	return fmt.Sprintf("%d module files copied (%d bytes), %d already there; %d tokens copied, %d already there; "+
		"%d ledger records copied, %d already there; %d checksum database tree heads copied, %d already there or newer; %d conflicts",
		r.Files, r.Bytes, r.FilesSkipped, r.Tokens, r.TokensSkipped, r.Ledger, r.LedgerSkipped, r.Heads, r.HeadsSkipped, len(r.Conflicts))
}

// Import copies the data directory dir into t. It stops at the first
// error reading the source or writing the destination; conflicts do not
// stop it, and make it return an error matching ErrConflict at the end.
func Import(ctx context.Context, dir string, t Target) (Report, error) {
	var r Report
	if fi, err := os.Stat(dir); err != nil {
		return r, fmt.Errorf("data directory: %w", err)
	} else if !fi.IsDir() {
		return r, fmt.Errorf("data directory %s is not a directory", dir)
	}
	steps := []func(context.Context, string, Target, *Report) error{importFiles, importTokens, importLedger, importHeads}
	for _, step := range steps {
		if err := step(ctx, dir, t, &r); err != nil {
			return r, err
		}
	}
	if len(r.Conflicts) > 0 {
		return r, fmt.Errorf("%w: %s", ErrConflict, strings.Join(r.Conflicts, "; "))
	}
	return r, nil
}

// importFiles copies {dir}/modules, the module store in GOPROXY layout.
func importFiles(ctx context.Context, dir string, t Target, r *Report) error {
	if t.Store == nil {
		return nil
	}
	root := filepath.Join(dir, "modules")
	if _, err := os.Stat(root); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".") && path != root {
			// Temporary files of interrupted writes; never a stored name.
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		if err := storage.CheckName(name); err != nil {
			return fmt.Errorf("%s: not a stored file: %w", path, err)
		}
		return importFile(ctx, t.Store, name, path, r)
	})
}

func importFile(ctx context.Context, store storage.Store, name, path string, r *Report) error {
	have, err := store.Get(ctx, name)
	switch {
	case err == nil:
		same, err := sameContent(have, path)
		have.Close()
		if err != nil {
			return fmt.Errorf("comparing %s: %w", name, err)
		}
		if same {
			r.FilesSkipped++
		} else if storage.Immutable(name) {
			r.Conflicts = append(r.Conflicts, "module file "+name)
		} else {
			// A list, @latest or remembered answer: the cluster's copy
			// is at least as recent as the single node's.
			r.FilesSkipped++
		}
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("reading %s from the destination: %w", name, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	// Put, not a store's PutFile: that one may take the file away, and the
	// source is only read. Put streams it either way.
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = store.Put(ctx, name, f)
	f.Close()
	if err != nil {
		return fmt.Errorf("storing %s: %w", name, err)
	}
	r.Files++
	r.Bytes += fi.Size()
	return nil
}

// sameContent reports whether rc holds the bytes of the file at path.
func sameContent(rc io.Reader, path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	a, b := sha256.New(), sha256.New()
	if _, err := io.Copy(a, rc); err != nil {
		return false, err
	}
	if _, err := io.Copy(b, f); err != nil {
		return false, err
	}
	return bytes.Equal(a.Sum(nil), b.Sum(nil)), nil
}

// importTokens copies {dir}/auth/tokens.json: ids, names, scopes, expiry
// and the hashes of the secrets, so every token keeps working.
func importTokens(ctx context.Context, dir string, t Target, r *Report) error {
	if t.Tokens == nil {
		return nil
	}
	recs, err := auth.ReadTokenFile(filepath.Join(dir, "auth"))
	if err != nil {
		return err
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].Name < recs[j].Name })
	for _, rec := range recs {
		err := t.Tokens.Insert(ctx, rec)
		if err == nil {
			r.Tokens++
			continue
		}
		if !errors.Is(err, auth.ErrNameTaken) {
			return fmt.Errorf("copying token %q: %w", rec.Name, err)
		}
		have, gerr := t.Tokens.Get(ctx, rec.ID)
		if gerr == nil && have.SecretHash == rec.SecretHash && have.Name == rec.Name {
			r.TokensSkipped++
			continue
		}
		r.Conflicts = append(r.Conflicts, fmt.Sprintf("token %q (another token has its name or id)", rec.Name))
	}
	return nil
}

// importLedger copies {dir}/ledger: a private module version recorded
// with another hash in the cluster is a conflict, as it would be if the
// tag had moved.
func importLedger(ctx context.Context, dir string, t Target, r *Report) error {
	if t.Ledger == nil {
		return nil
	}
	recs, err := ledger.ReadFile(filepath.Join(dir, "ledger"))
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(recs))
	for k := range recs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		stored, created, err := t.Ledger.Record(ctx, k, recs[k])
		if err != nil {
			return fmt.Errorf("copying ledger record %s: %w", k, err)
		}
		switch {
		case created:
			r.Ledger++
		case stored.Hash == recs[k].Hash:
			r.LedgerSkipped++
		default:
			r.Conflicts = append(r.Conflicts, fmt.Sprintf("ledger %s: %s here, %s in the cluster", k, recs[k].Hash, stored.Hash))
		}
	}
	return nil
}

// importHeads copies {dir}/sumdb/{name}/latest for every checksum
// database, unless the cluster has verified a tree at least as large.
func importHeads(ctx context.Context, dir string, t Target, r *Report) error {
	if t.Heads == nil {
		return nil
	}
	root := filepath.Join(dir, "sumdb")
	if _, err := os.Stat(root); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	files := sumdb.NewFileHeadStore(root)
	var names []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && d.Name() == "latest" {
			rel, err := filepath.Rel(root, filepath.Dir(path))
			if err != nil {
				return err
			}
			names = append(names, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, name := range names {
		head, err := files.ReadHead(ctx, name)
		if err != nil {
			return err
		}
		if len(head) == 0 {
			continue
		}
		size, err := sumdb.HeadSize(head)
		if err != nil {
			return fmt.Errorf("checksum database %s: %w", name, err)
		}
		for attempt := 0; ; attempt++ {
			cur, err := t.Heads.ReadHead(ctx, name)
			if err != nil {
				return fmt.Errorf("checksum database %s: %w", name, err)
			}
			if cur != nil {
				if curSize, err := sumdb.HeadSize(cur); err == nil && curSize >= size {
					r.HeadsSkipped++
					break
				}
			}
			err = t.Heads.SwapHead(ctx, name, cur, head)
			if err == nil {
				r.Heads++
				break
			}
			if attempt == 10 || !errors.Is(err, sumdb.ErrHeadRegress) && !errors.Is(err, xsumdb.ErrWriteConflict) {
				return fmt.Errorf("checksum database %s: %w", name, err)
			}
			// Another replica moved it meanwhile: read it again.
		}
	}
	return nil
}
