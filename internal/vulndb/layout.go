package vulndb

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
)

// Size bounds for files read from a database, local or remote. The largest
// real entry is a few tens of KiB and the real modules index a few MiB.
const (
	maxDBMetaSize = 64 << 10
	maxIndexSize  = 64 << 20
	maxEntrySize  = 4 << 20
)

// Open reads the vulnerability database in dir, which is either
//
//   - the served layout: index/db.json and ID/<id>.json (other index files
//     are ignored: the index is rebuilt from the entries), or
//   - a flat directory of OSV entries named <id>.json, such as the data/osv
//     folder of the vulnerability database's source repository. Its
//     modification time is the latest "modified" of its entries.
//
// Every entry is validated: an invalid one fails Open with an error matching
// ErrCorrupt that names the file. A directory with neither layout fails with
// an error matching fs.ErrNotExist.
func Open(dir string) (*DB, error) {
	// A directory a Syncer keeps (modgate's own copy) opens at its
	// current generation, so `modgate check --vulndb` can read it too.
	if gen, err := currentGeneration(dir); err == nil {
		dir = gen
	}
	db, _, err := load(dir, false)
	return db, err
}

// load is Open; with keepRaw it also returns every entry's file bytes by id.
func load(dir string, keepRaw bool) (*DB, map[string][]byte, error) {
	meta, err := readFileLimit(filepath.Join(dir, filepath.FromSlash(dbEndpoint)+".json"), maxDBMetaSize)
	switch {
	case err == nil:
		var m dbMeta
		if err := json.Unmarshal(meta, &m); err != nil {
			return nil, nil, fmt.Errorf("vulnerability database %s: %s.json: %w: %v", dir, dbEndpoint, ErrCorrupt, err)
		}
		entries, raw, err := loadEntries(filepath.Join(dir, "ID"), keepRaw)
		if err != nil {
			return nil, nil, fmt.Errorf("vulnerability database %s: %w", dir, err)
		}
		return newDB(m.Modified, entries), raw, nil
	case errors.Is(err, fs.ErrNotExist):
		entries, raw, err := loadEntries(dir, keepRaw)
		if err != nil {
			return nil, nil, fmt.Errorf("vulnerability database %s: %w", dir, err)
		}
		if len(entries) == 0 {
			return nil, nil, fmt.Errorf("vulnerability database %s: no index/db.json and no OSV entries (*.json): %w", dir, fs.ErrNotExist)
		}
		var modified time.Time
		for _, e := range entries {
			if e.modified.After(modified) {
				modified = e.modified
			}
		}
		return newDB(modified, entries), raw, nil
	default:
		return nil, nil, fmt.Errorf("vulnerability database %s: %w", dir, err)
	}
}

// loadEntries reads and validates every <id>.json file in dir, in parallel.
func loadEntries(dir string, keepRaw bool) ([]*entry, map[string][]byte, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	var names []string
	for _, de := range des {
		if de.Type().IsRegular() && strings.HasSuffix(de.Name(), ".json") {
			names = append(names, de.Name())
		}
	}
	entries := make([]*entry, len(names))
	raws := make([][]byte, len(names))
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i, name := range names {
		g.Go(func() error {
			data, err := readFileLimit(filepath.Join(dir, name), maxEntrySize)
			if err != nil {
				return err
			}
			e, err := parseEntry(data, strings.TrimSuffix(name, ".json"))
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			entries[i] = e
			if keepRaw {
				raws[i] = data
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	var raw map[string][]byte
	if keepRaw {
		raw = make(map[string][]byte, len(names))
		for i, e := range entries {
			raw[e.id] = raws[i]
		}
	}
	return entries, raw, nil
}

// readFileLimit reads the file at name, failing with ErrCorrupt when it is
// larger than limit bytes. Errors name the file.
func readFileLimit(name string, limit int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := readLimit(f, limit)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return data, nil
}

// readLimit reads r to the end, failing with ErrCorrupt when it holds more
// than limit bytes.
func readLimit(r io.Reader, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrCorrupt, limit)
	}
	return data, nil
}
