package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/module"
)

// A fileBackend is the default Backend: the ledger file, with its records
// in memory.
type fileBackend struct {
	mu      sync.Mutex
	file    *file
	records map[string]record // by "path version" or "path version/go.mod"
}

// A record is one recorded hash, as the file holds it.
type record struct {
	hash string
	at   time.Time
}

func (b *fileBackend) Lookup(_ context.Context, key string) (Record, bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	rec, ok := b.records[key]
	return Record{Hash: rec.hash, At: rec.at}, ok, nil
}

func (b *fileBackend) Record(_ context.Context, key string, rec Record) (Record, bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if old, ok := b.records[key]; ok {
		return Record{Hash: old.hash, At: old.at}, false, nil
	}
	r := record{hash: rec.Hash, at: rec.At}
	if err := b.file.append(key, r); err != nil {
		return Record{}, false, err
	}
	b.records[key] = r
	return rec, true, nil
}

func (b *fileBackend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.file.close()
}

// A file is the open ledger file. Its methods are called with fileBackend.mu held.
type file struct {
	f    *os.File
	name string
	size int64 // bytes of complete lines; appends go here
	err  error // set when a failed append could not be undone; fails later appends
}

// openFile opens or creates the ledger file in dir and loads its records. A
// torn last line is logged and cut off.
func openFile(dir string, log *slog.Logger) (*file, map[string]record, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("ledger: %w", err)
	}
	name := filepath.Join(dir, FileName)
	_, statErr := os.Stat(name)
	created := errors.Is(statErr, os.ErrNotExist)
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("ledger: %w", err)
	}
	lf := &file{f: f, name: name}
	records, err := lf.load(log)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if created {
		// The new file's name must survive a crash as well as its lines.
		if err := syncDir(dir); err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("ledger: %w", err)
		}
	}
	return lf, records, nil
}

// load parses the whole file. It sets lf.size to the end of the last
// complete line and truncates a torn line after it.
func (lf *file) load(log *slog.Logger) (map[string]record, error) {
	data, err := io.ReadAll(lf.f)
	if err != nil {
		return nil, fmt.Errorf("ledger: reading %s: %w", lf.name, err)
	}
	records := make(map[string]record)
	complete := data[:bytes.LastIndexByte(data, '\n')+1]
	for i, line := range strings.SplitAfter(string(complete), "\n") {
		line = strings.TrimSuffix(line, "\n")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, rec, err := parseLine(line)
		if err != nil {
			return nil, fmt.Errorf("ledger: %s:%d: %w", lf.name, i+1, err)
		}
		if prev, ok := records[k]; ok && prev.hash != rec.hash {
			return nil, fmt.Errorf("ledger: %s:%d: %s recorded again with hash %s, but an earlier line records %s",
				lf.name, i+1, k, rec.hash, prev.hash)
		} else if ok {
			continue // a duplicate line keeps the earlier time
		}
		records[k] = rec
	}
	// Only now, with every complete line valid: a file Open refuses is left
	// exactly as it was for the operator to inspect.
	if torn := data[len(complete):]; len(torn) > 0 {
		lineNo := bytes.Count(complete, []byte("\n")) + 1
		log.Warn("ignoring torn last line of ledger (a crash interrupted an append)",
			"file", lf.name, "line", lineNo, "text", string(torn))
		if err := lf.f.Truncate(int64(len(complete))); err != nil {
			return nil, fmt.Errorf("ledger: cutting off torn line %s:%d: %w", lf.name, lineNo, err)
		}
		if err := lf.f.Sync(); err != nil {
			return nil, fmt.Errorf("ledger: %w", err)
		}
	}
	lf.size = int64(len(complete))
	return records, nil
}

// parseLine parses "path version[/go.mod] h1:hash time".
func parseLine(line string) (string, record, error) {
	fields := strings.Split(line, " ")
	if len(fields) != 4 {
		return "", record{}, fmt.Errorf("malformed record %q (want \"path version[/go.mod] h1:hash time\")", line)
	}
	path, vers, hash, when := fields[0], fields[1], fields[2], fields[3]
	if err := module.Check(path, strings.TrimSuffix(vers, "/go.mod")); err != nil {
		return "", record{}, fmt.Errorf("malformed record %q: %w", line, err)
	}
	if !strings.HasPrefix(hash, "h1:") || len(hash) == len("h1:") {
		return "", record{}, fmt.Errorf("malformed record %q: hash %q is not an h1: hash", line, hash)
	}
	at, err := time.Parse(time.RFC3339, when)
	if err != nil {
		return "", record{}, fmt.Errorf("malformed record %q: time: %w", line, err)
	}
	return path + " " + vers, record{hash: hash, at: at.UTC()}, nil
}

// append writes the record of k as one line and fsyncs. A failed write is
// undone by truncating to the previous end, so the file never holds a partial
// line in the middle; if even that fails, every later append fails too.
func (lf *file) append(k string, rec record) error {
	if lf.err != nil {
		return lf.err
	}
	if lf.f == nil {
		return errors.New("ledger is closed")
	}
	line := k + " " + rec.hash + " " + rec.at.Format(time.RFC3339) + "\n"
	_, err := lf.f.WriteAt([]byte(line), lf.size)
	if err == nil {
		err = lf.f.Sync()
	}
	if err != nil {
		if terr := lf.f.Truncate(lf.size); terr != nil {
			lf.err = fmt.Errorf("ledger file %s is damaged after a failed write (%v); restart modgate", lf.name, terr)
		}
		return fmt.Errorf("writing %s: %w", lf.name, err)
	}
	lf.size += int64(len(line))
	return nil
}

// close closes the file; later appends fail.
func (lf *file) close() error {
	if lf.f == nil {
		return nil
	}
	err := lf.f.Close()
	lf.f = nil
	return err
}

// syncDir fsyncs a directory, so that a file created in it survives a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
