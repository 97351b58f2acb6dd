package sumdb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	xsumdb "golang.org/x/mod/sumdb"
	"golang.org/x/mod/sumdb/tlog"
)

// maxTileLevel bounds the tile levels kept; a log of 2^63 records has fewer.
const maxTileLevel = 8

// A state holds what the Verifier must remember about one database to
// notice that it forked or rolled back: the latest verified tree head and,
// per tile level, the rightmost partial tile verified with it.
//
// The partial tiles matter after a restart: a new client first
// re-authenticates the stored tree head, which needs its partial tiles. If
// they came from a database that has since forked, they would not match the
// stored head and the fork would read as a bad answer; with the verified
// tiles at hand, the client instead proves the fork and reports a security
// error. Only the widest tile per level is kept (a narrower one is its
// prefix), so the state stays a handful of small files; partial tiles are
// not put in the Store, where every width would stay forever.
//
// Files live in {StateDir}/{name}/: "latest" and "partial/{level}", each
// replaced atomically. With no directory the state lives in memory.
// A state is safe for concurrent use.
type state struct {
	dir   string    // "" keeps everything in memory
	heads HeadStore // when not nil, keeps the latest head instead of dir
	name  string    // the database's name, for heads

	mu     sync.Mutex
	latest []byte // when dir == ""
	tiles  [maxTileLevel + 1]savedTile
}

// A savedTile is a verified partial tile.
type savedTile struct {
	loaded bool // tile and data are valid (possibly empty) for this level
	tile   tlog.Tile
	data   []byte
}

// newState returns the state of database name under stateDir ("" for memory).
func newState(stateDir, name string) *state {
	if stateDir == "" {
		return &state{}
	}
	return &state{dir: filepath.Join(stateDir, filepath.FromSlash(name))}
}

// readLatest returns the stored tree head, empty when there is none yet.
func (s *state) readLatest() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.readLatestLocked()
}

func (s *state) readLatestLocked() ([]byte, error) {
	if s.heads != nil {
		ctx, cancel := context.WithTimeout(context.Background(), headStoreTimeout)
		defer cancel()
		data, err := s.heads.ReadHead(ctx, s.name)
		if err != nil {
			return nil, fmt.Errorf("reading checksum database state: %w", err)
		}
		return data, nil
	}
	if s.dir == "" {
		return s.latest, nil
	}
	data, err := os.ReadFile(filepath.Join(s.dir, "latest"))
	if err != nil {
		if isNotExist(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading checksum database state: %w", err)
	}
	return data, nil
}

// swapLatest replaces the tree head with new if it is still old, and returns
// sumdb.ErrWriteConflict otherwise. The file is durable when swapLatest returns.
func (s *state) swapLatest(old, new []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.heads != nil {
		// The store compares and swaps in one step, for all replicas.
		ctx, cancel := context.WithTimeout(context.Background(), headStoreTimeout)
		defer cancel()
		err := s.heads.SwapHead(ctx, s.name, old, new)
		if err != nil && !errors.Is(err, xsumdb.ErrWriteConflict) {
			return fmt.Errorf("writing checksum database state: %w", err)
		}
		if errors.Is(err, xsumdb.ErrWriteConflict) {
			return xsumdb.ErrWriteConflict // the client compares with ==
		}
		return nil
	}
	cur, err := s.readLatestLocked()
	if err != nil {
		return err
	}
	if !bytes.Equal(cur, old) {
		return xsumdb.ErrWriteConflict
	}
	if err := checkAdvance(cur, new); err != nil {
		return err
	}
	if s.dir == "" {
		s.latest = bytes.Clone(new)
		return nil
	}
	if err := writeFileAtomic(filepath.Join(s.dir, "latest"), new); err != nil {
		return fmt.Errorf("writing checksum database state: %w", err)
	}
	return nil
}

// partialTile returns the data of partial tile t if a verified tile at the
// same position at least as wide is kept.
func (s *state) partialTile(t tlog.Tile) ([]byte, bool) {
	if t.L < 0 || t.L > maxTileLevel {
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	saved := s.loadLocked(t.L)
	if saved.data == nil || saved.tile.H != t.H || saved.tile.N != t.N || saved.tile.W < t.W {
		return nil, false
	}
	return bytes.Clone(saved.data[:t.W*tlog.HashSize]), true
}

// savePartialTile keeps verified partial tile t unless a tile further right
// or wider is kept at its level. A tile of the same width replaces the kept
// one, so re-verified data heals a damaged file.
func (s *state) savePartialTile(t tlog.Tile, data []byte) error {
	if t.L < 0 || t.L > maxTileLevel || len(data) != t.W*tlog.HashSize {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	saved := s.loadLocked(t.L)
	if saved.data != nil && saved.tile.H == t.H &&
		(saved.tile.N > t.N || saved.tile.N == t.N && saved.tile.W > t.W) {
		return nil
	}
	s.tiles[t.L] = savedTile{loaded: true, tile: t, data: bytes.Clone(data)}
	if s.dir == "" {
		return nil
	}
	content := append([]byte(t.Path()+"\n"), data...)
	if err := writeFileAtomic(s.tilePath(t.L), content); err != nil {
		return fmt.Errorf("writing checksum database state: %w", err)
	}
	return nil
}

// loadLocked returns the kept tile of level l, reading its file the first
// time. A missing or malformed file is no tile.
func (s *state) loadLocked(l int) savedTile {
	if s.tiles[l].loaded || s.dir == "" {
		return s.tiles[l]
	}
	saved := savedTile{loaded: true}
	if content, err := os.ReadFile(s.tilePath(l)); err == nil {
		if path, data, ok := bytes.Cut(content, []byte("\n")); ok {
			t, err := tlog.ParseTilePath(string(path))
			if err == nil && t.L == l && len(data) == t.W*tlog.HashSize {
				saved.tile, saved.data = t, data
			}
		}
	}
	s.tiles[l] = saved
	return saved
}

// tilePath returns the file of the kept tile of level l.
func (s *state) tilePath(l int) string {
	return filepath.Join(s.dir, "partial", strconv.Itoa(l))
}

// writeFileAtomic writes data to a temporary file next to name, syncs it,
// renames it over name and syncs the directory.
func writeFileAtomic(name string, data []byte) (err error) {
	dir := filepath.Dir(name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(name)+"-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), name); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
