package audit

import (
	"bufio"
	"bytes"
	"cmp"
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

// File names: audit-<first seq>-<creation time>.jsonl.
const (
	filePrefix     = "audit-"
	fileSuffix     = ".jsonl"
	fileTimeLayout = "20060102T150405.000Z"
	// CheckpointsFile is the name, inside the log directory, of the file
	// the signed checkpoints are appended to.
	CheckpointsFile = "checkpoints"
)

// A segment is one log file.
type segment struct {
	name     string    // base name
	firstSeq int64     // seq of its first record, from the name
	created  time.Time // from the name
}

func segmentName(firstSeq int64, created time.Time) string {
	return fmt.Sprintf("%s%020d-%s%s", filePrefix, firstSeq, created.UTC().Format(fileTimeLayout), fileSuffix)
}

// parseSegmentName parses a log file name; ok is false for other files.
func parseSegmentName(name string) (segment, bool) {
	rest, ok := strings.CutPrefix(name, filePrefix)
	if !ok {
		return segment{}, false
	}
	rest, ok = strings.CutSuffix(rest, fileSuffix)
	if !ok {
		return segment{}, false
	}
	seqText, timeText, ok := strings.Cut(rest, "-")
	if !ok {
		return segment{}, false
	}
	seq, err := strconv.ParseInt(seqText, 10, 64)
	if err != nil || seq < 1 {
		return segment{}, false
	}
	created, err := time.Parse(fileTimeLayout, timeText)
	if err != nil {
		return segment{}, false
	}
	return segment{name: name, firstSeq: seq, created: created}, true
}

// listSegments returns the log files in dir in chain order (by first seq,
// then by name).
func listSegments(dir string) ([]segment, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var segs []segment
	for _, de := range des {
		if !de.Type().IsRegular() {
			continue
		}
		if s, ok := parseSegmentName(de.Name()); ok {
			segs = append(segs, s)
		}
	}
	slices.SortFunc(segs, func(a, b segment) int {
		return cmp.Or(cmp.Compare(a.firstSeq, b.firstSeq), strings.Compare(a.name, b.name))
	})
	return segs, nil
}

// A head is the last record of the chain: what the next record links to.
type head struct {
	seq  int64
	hash string
}

// recoverHead finds the chain head in dir, repairing what a crash can
// leave behind: a final line without its "\n" is cut off, and a file left
// without any complete line is removed. It returns the head (seq 0 and
// Genesis for an empty log) and the last file with its size, if any.
func recoverHead(dir string, logf func(msg string, args ...any)) (head, *segment, int64, error) {
	segs, err := listSegments(dir)
	if err != nil {
		return head{}, nil, 0, fmt.Errorf("listing audit log files: %w", err)
	}
	for i := len(segs) - 1; i >= 0; i-- {
		s := segs[i]
		path := filepath.Join(dir, s.name)
		line, size, err := lastLine(path)
		if err != nil {
			return head{}, nil, 0, err
		}
		if line == nil {
			if err := os.Remove(path); err != nil {
				return head{}, nil, 0, fmt.Errorf("removing audit log file without records: %w", err)
			}
			logf("audit log file without records removed", "file", s.name)
			continue
		}
		e, _, err := decodeLine(line)
		if err != nil {
			return head{}, nil, 0, fmt.Errorf("reading the chain head from the last line of %s: %w (run modgate audit verify)", path, err)
		}
		return head{seq: e.Seq, hash: e.Hash}, &s, size, nil
	}
	return head{seq: 0, hash: Genesis}, nil, 0, nil
}

// lastLine returns the last complete line of the file at path (without
// "\n", nil if there is none) and the file's size after cutting off an
// incomplete final line.
func lastLine(path string) ([]byte, int64, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, 0, fmt.Errorf("opening audit log file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, fmt.Errorf("opening audit log file: %w", err)
	}
	size := fi.Size()
	// Read backwards in blocks until the data holds the "\n" before the
	// last line (or the start of the file).
	const block = 64 << 10
	var data []byte
	off := size
	for {
		n := min(off, block)
		off -= n
		buf := make([]byte, n)
		if _, err := f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
			return nil, 0, fmt.Errorf("reading audit log file: %w", err)
		}
		data = append(buf, data...)
		end := bytes.LastIndexByte(data, '\n')
		if end >= 0 {
			if int64(end)+1+off < size {
				// A torn final line: cut it off so the next record starts
				// on a line of its own.
				if err := f.Truncate(off + int64(end) + 1); err != nil {
					return nil, 0, fmt.Errorf("cutting off an incomplete last line of %s: %w", path, err)
				}
				if err := f.Sync(); err != nil {
					return nil, 0, fmt.Errorf("cutting off an incomplete last line of %s: %w", path, err)
				}
				size = off + int64(end) + 1
			}
			start := bytes.LastIndexByte(data[:end], '\n')
			if start >= 0 || off == 0 {
				return data[start+1 : end], size, nil
			}
			continue
		}
		if off == 0 {
			// No complete line at all.
			if size > 0 {
				if err := f.Truncate(0); err != nil {
					return nil, 0, fmt.Errorf("cutting off an incomplete line of %s: %w", path, err)
				}
			}
			return nil, 0, nil
		}
	}
}

// firstEntry reads and decodes the first line of the file at path.
func firstEntry(path string) (entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return entry{}, err
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadBytes('\n')
	if err != nil {
		return entry{}, fmt.Errorf("reading the first record of %s: %w", path, err)
	}
	e, _, err := decodeLine(line[:len(line)-1])
	if err != nil {
		return entry{}, fmt.Errorf("reading the first record of %s: %w", path, err)
	}
	return e, nil
}

// syncDir makes a directory's entries (a created or removed file) durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
