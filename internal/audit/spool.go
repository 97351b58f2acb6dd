package audit

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DefaultSpoolMaxBytes bounds the spool when Config.SpoolMaxBytes is zero.
const DefaultSpoolMaxBytes = 256 << 20

// spoolFileMax is the size after which the spool starts a new file.
const spoolFileMax = 4 << 20

// spoolDir returns where a Log on a Chain spools records.
func (c Config) spoolDir() string {
	if c.SpoolDir != "" {
		return c.SpoolDir
	}
	return filepath.Join(c.Dir, "spool")
}

// A spool keeps records, not yet chained, on local disk while the shared
// chain cannot be reached: files spool-<unix nanos>-<random>.jsonl in
// write order, one JSON Record per line, fsynced before the records count
// as accepted. It is used by the writer goroutine only.
type spool struct {
	dir   string
	max   int64
	size  int64    // bytes in all files
	files []string // base names, oldest first
	cur   *os.File // the file being appended to, the last of files
	lines int64    // lines in cur
	bytes int64    // bytes in cur
	stamp int64    // of the newest file's name; names only go up

	// uncertain are batches whose append failed after they were linked
	// (the commit may have happened); see drain's progress function.
	uncertain []uncertainBatch
}

// An uncertainBatch is a spooled batch, lines up to end of file, whose
// append failed in a way that may hide a commit; last is its last row as
// linked then.
type uncertainBatch struct {
	file string
	end  int64
	last ChainHead
}

const (
	spoolPrefix = "spool-"
	spoolSuffix = ".jsonl"
)

func openSpool(dir string, max int64) (*spool, error) {
	if max <= 0 {
		max = DefaultSpoolMaxBytes
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("creating audit spool: %w", err)
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading audit spool: %w", err)
	}
	s := &spool{dir: dir, max: max}
	for _, de := range des {
		name := de.Name()
		if !de.Type().IsRegular() || !strings.HasPrefix(name, spoolPrefix) || !strings.HasSuffix(name, spoolSuffix) {
			continue
		}
		fi, err := de.Info()
		if err != nil {
			return nil, fmt.Errorf("reading audit spool: %w", err)
		}
		s.size += fi.Size()
		s.files = append(s.files, name)
	}
	slices.Sort(s.files) // the fixed-width stamp sorts them in write order
	if n := len(s.files); n > 0 {
		stamp, _, _ := strings.Cut(strings.TrimPrefix(s.files[n-1], spoolPrefix), "-")
		s.stamp, _ = strconv.ParseInt(stamp, 10, 64)
	}
	return s, nil
}

func (s *spool) pending() bool { return len(s.files) > 0 }

// write appends recs to the spool and fsyncs, and returns the file and
// its line count after them; the error says why they are not kept
// (matching ErrSpoolFull when the spool is at its bound).
func (s *spool) write(recs []Record) (file string, end int64, err error) {
	if err := s.writeLines(recs); err != nil {
		return "", 0, err
	}
	s.lines += int64(len(recs))
	return s.files[len(s.files)-1], s.lines, nil
}

func (s *spool) writeLines(recs []Record) error {
	var buf []byte
	for _, r := range recs {
		b, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("spooling audit records: %w", err)
		}
		buf = append(append(buf, b...), '\n')
	}
	if s.cur != nil && s.bytes >= spoolFileMax {
		s.cur.Close() // smaller files: a drain re-reads at most one
		s.cur = nil
	}
	if s.size+int64(len(buf)) > s.max {
		return fmt.Errorf("%w: %s holds %d of at most %d bytes while the shared chain cannot be reached", ErrSpoolFull, s.dir, s.size, s.max)
	}
	if s.cur == nil {
		var rnd [8]byte
		rand.Read(rnd[:])
		// Names sort in write order even if the clock steps back.
		s.stamp = max(time.Now().UnixNano(), s.stamp+1)
		name := fmt.Sprintf("%s%020d-%s%s", spoolPrefix, s.stamp, hex.EncodeToString(rnd[:]), spoolSuffix)
		f, err := os.OpenFile(filepath.Join(s.dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o640)
		if err != nil {
			return fmt.Errorf("spooling audit records: %w", err)
		}
		if err := syncDir(s.dir); err != nil {
			f.Close()
			os.Remove(f.Name())
			return fmt.Errorf("spooling audit records: %w", err)
		}
		s.cur, s.lines, s.bytes = f, 0, 0
		s.files = append(s.files, name)
	}
	fi, err := s.cur.Stat()
	if err != nil {
		return fmt.Errorf("spooling audit records: %w", err)
	}
	if _, err := s.cur.Write(buf); err != nil {
		s.cur.Truncate(fi.Size()) // never half a line
		return fmt.Errorf("spooling audit records: %w", err)
	}
	if err := s.cur.Sync(); err != nil {
		return fmt.Errorf("spooling audit records: %w", err)
	}
	s.size += int64(len(buf))
	s.bytes += int64(len(buf))
	return nil
}

// drain hands the spooled records to appendFn, oldest first, in at most
// budget batches of at most maxBatch, with the number of lines of the file
// done after the batch; lines the chain already holds (progress) are
// skipped. A file is removed once all its lines are appended. The first
// error stops it.
func (s *spool) drain(budget int, appendFn func(file string, done int64, recs []Record) error, progress func(file string) (int64, error)) error {
	if s.cur != nil {
		s.cur.Close() // new records go to a new file, after these
		s.cur = nil
	}
	for len(s.files) > 0 && budget > 0 {
		name := s.files[0]
		path := filepath.Join(s.dir, name)
		skip, err := progress(name)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("reading audit spool: %w", err)
		}
		var (
			batch []Record
			n     int64
		)
		r := bufio.NewReader(bytes.NewReader(data))
		for {
			line, err := r.ReadBytes('\n')
			if errors.Is(err, io.EOF) {
				break // an incomplete last line was never accepted
			}
			n++
			if n <= skip {
				continue
			}
			var rec Record
			if err := json.Unmarshal(line, &rec); err != nil {
				return fmt.Errorf("reading audit spool %s line %d: %w", name, n, err)
			}
			batch = append(batch, rec)
			if len(batch) == maxBatch {
				if err := appendFn(name, n, batch); err != nil {
					return err
				}
				batch = batch[:0]
				if budget--; budget == 0 {
					return nil // the rest at the next call; the mark says where
				}
			}
		}
		if len(batch) > 0 {
			if err := appendFn(name, n, batch); err != nil {
				return err
			}
			budget--
		}
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("removing drained audit spool file: %w", err)
		}
		syncDir(s.dir)
		s.size -= int64(len(data))
		s.files = s.files[1:]
		s.uncertain = slices.DeleteFunc(s.uncertain, func(u uncertainBatch) bool { return u.file == name })
	}
	if len(s.files) == 0 {
		s.size = 0
	}
	return nil
}

func (s *spool) close() {
	if s.cur != nil {
		s.cur.Close()
		s.cur = nil
	}
}
