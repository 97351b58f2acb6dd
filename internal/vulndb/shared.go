package vulndb

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// A SharedCopy lets replicas sync the database one at a time and share
// the result (package state/postgres keeps it in a table): the replica
// that takes the lock syncs from the URL or source as a single modgate
// does and saves its copy; every other replica loads that copy instead of
// fetching. Each replica still keeps the copy it uses in its own Dir, so
// it answers and serves /vulndb/ from local files, also while the database
// is down.
//
// Implementations must be safe for concurrent use by several processes.
type SharedCopy interface {
	// TryLock takes the sync lock unless another replica holds it.
	TryLock(ctx context.Context) (unlock func(), ok bool, err error)
	// Version returns the version of the saved copy, 0 when none.
	// Versions only grow.
	Version(ctx context.Context) (int64, error)
	// Load returns the saved copy and its version.
	Load(ctx context.Context) (version int64, data []byte, err error)
	// Save saves data as the copy and returns its new version.
	Save(ctx context.Context, data []byte) (int64, error)
}

// maxSharedCopy bounds a shared copy read back (compressed).
const maxSharedCopy = 256 << 20

// sharedArchive is the saved copy, gzipped JSON: the index/db.json file
// and every entry's file, by id.
type sharedArchive struct {
	DB      json.RawMessage            `json:"db"`
	Entries map[string]json.RawMessage `json:"entries"`
}

// syncShared is sync for a replica: load a newer shared copy if there is
// one; then, unless another replica is syncing, sync and share the
// result.
func (s *Syncer) syncShared(ctx context.Context, start time.Time) error {
	if err := s.pullLocked(ctx, start); err != nil {
		s.log.Warn("loading the shared vulnerability database copy failed", "err", err)
	}
	unlock, ok, err := s.shared.TryLock(ctx)
	if err != nil {
		return fmt.Errorf("taking the sync lock: %w", err)
	}
	if !ok {
		s.log.Debug("another replica is syncing the vulnerability database")
		return nil
	}
	defer unlock()
	// The previous holder may have saved a copy in the meantime.
	if err := s.pullLocked(ctx, start); err != nil {
		return err
	}
	s.changed = false
	if err := s.sync(ctx, start); err != nil {
		return err
	}
	if !s.changed && s.sharedVer != 0 {
		return nil
	}
	data, err := exportGeneration(s.cur.Load().dir)
	if err != nil {
		return fmt.Errorf("sharing the copy: %w", err)
	}
	v, err := s.shared.Save(ctx, data)
	if err != nil {
		return fmt.Errorf("sharing the copy: %w", err)
	}
	s.sharedVer = v
	return nil
}

// Pull loads the shared copy when it is newer than the one in use, without
// syncing: what a replica does when another one tells it it saved a copy.
func (s *Syncer) Pull(ctx context.Context) error {
	if s.shared == nil {
		return nil
	}
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	return s.pullLocked(ctx, time.Now())
}

// pullLocked loads the shared copy if its version is newer. syncMu held.
func (s *Syncer) pullLocked(ctx context.Context, start time.Time) error {
	v, err := s.shared.Version(ctx)
	if err != nil || v == 0 || v <= s.sharedVer {
		return err
	}
	v, data, err := s.shared.Load(ctx)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp(s.dir, ".shared-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := unpackArchive(data, dir); err != nil {
		return fmt.Errorf("shared copy version %d: %w", v, err)
	}
	old := s.cur.Load()
	db, fresh, changed, err := s.readSource(ctx, old, dir)
	if err != nil {
		return fmt.Errorf("shared copy version %d: %w", v, err)
	}
	if changed {
		if err := s.install(ctx, old, db, fresh, start); err != nil {
			return err
		}
		s.statusMu.Lock()
		s.status.LastError, s.status.LastSuccess = nil, time.Now()
		s.statusMu.Unlock()
	}
	s.sharedVer = v
	return nil
}

// exportGeneration archives the generation in dir.
func exportGeneration(dir string) ([]byte, error) {
	a := sharedArchive{Entries: map[string]json.RawMessage{}}
	var err error
	if a.DB, err = readFileLimit(filepath.Join(dir, filepath.FromSlash(dbEndpoint)+".json"), maxDBMetaSize); err != nil {
		return nil, err
	}
	des, err := os.ReadDir(filepath.Join(dir, "ID"))
	if err != nil {
		return nil, err
	}
	for _, de := range des {
		id, ok := strings.CutSuffix(de.Name(), ".json")
		if !ok {
			continue
		}
		data, err := readFileLimit(filepath.Join(dir, "ID", de.Name()), maxEntrySize)
		if err != nil {
			return nil, err
		}
		a.Entries[id] = data
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := json.NewEncoder(zw).Encode(a); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// unpackArchive writes an archive as a served layout into dir, for load.
// Entry ids become file names: they are checked as such.
func unpackArchive(data []byte, dir string) error {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return err
	}
	var a sharedArchive
	if err := json.NewDecoder(io.LimitReader(zr, maxSharedCopy)).Decode(&a); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "index"), 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "ID"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(dbEndpoint)+".json"), a.DB, 0o644); err != nil {
		return err
	}
	for id, raw := range a.Entries {
		if id == "" || id != filepath.Base(id) || strings.ContainsAny(id, `/\`) || strings.HasPrefix(id, ".") {
			return fmt.Errorf("entry id %q is not a file name", id)
		}
		if err := os.WriteFile(filepath.Join(dir, "ID", id+".json"), raw, 0o644); err != nil {
			return err
		}
	}
	return nil
}
