package audit

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/mod/module"
)

// A Filter selects records; zero fields select everything.
type Filter struct {
	From, To time.Time // From <= Time < To
	Identity string    // exact (a pseudonym "p:..." when the log is pseudonymised)
	// Module is a module path pattern in GOPRIVATE syntax
	// (module.MatchPrefixPatterns): "example.com/lib" matches the module
	// and everything below it, "corp.example/*" globs.
	Module string
	Result Result
}

// match reports whether r passes f.
func (f Filter) match(r Record) bool {
	switch {
	case !f.From.IsZero() && r.Time.Before(f.From):
		return false
	case !f.To.IsZero() && !r.Time.Before(f.To):
		return false
	case f.Identity != "" && r.Identity != f.Identity:
		return false
	case f.Result != "" && r.Result != f.Result:
		return false
	case f.Module != "" && (r.Module == "" || !module.MatchPrefixPatterns(f.Module, r.Module)):
		return false
	}
	return true
}

// skipMargin is how far record times may stray from their file's
// creation time, for Query's skipping of whole files.
const skipMargin = time.Minute

// ErrStop, returned by a Query callback, ends the query early without
// error.
var ErrStop = errors.New("stop query")

// Query calls fn, in chain order, for every record in the log in dir that
// f selects. It does not verify the chain (see Verify). Files whose
// successor was created well before f.From are skipped without reading. An incomplete final line (a
// record being written) is left out. fn returning ErrStop ends the query
// with a nil error; any other error from fn is returned.
func Query(dir string, f Filter, fn func(Record) error) error {
	segs, err := listSegments(dir)
	if err != nil {
		return fmt.Errorf("querying audit log: %w", err)
	}
	for i, s := range segs {
		// Every record of a file was stamped before it was written, so
		// before the next file was created; the margin absorbs small clock
		// steps. (No such bound exists for To: a record stamped long ago
		// may be written late.)
		if !f.From.IsZero() && i+1 < len(segs) && segs[i+1].created.Add(skipMargin).Before(f.From) {
			continue
		}
		err := querySegment(filepath.Join(dir, s.name), f, fn)
		if errors.Is(err, ErrStop) {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func querySegment(path string, f Filter, fn func(Record) error) error {
	file, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // deleted by retention since the directory was listed
	}
	if err != nil {
		return fmt.Errorf("querying audit log: %w", err)
	}
	defer file.Close()
	r := bufio.NewReader(file)
	for n := 1; ; n++ {
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("querying audit log: %w", err)
		}
		e, _, err := decodeLine(line[:len(line)-1])
		if err != nil {
			return fmt.Errorf("querying audit log: %s:%d: %w", filepath.Base(path), n, err)
		}
		if !f.match(e.Record) {
			continue
		}
		if err := fn(e.Record); err != nil {
			return err
		}
	}
}

// Last returns the last record in the log in dir that match selects, and
// whether there is one. It reads the files newest first and stops at the
// first that holds a match, so a record written recently is found without
// reading the whole log. Like Query it does not verify the chain.
func Last(dir string, match func(Record) bool) (Record, bool, error) {
	segs, err := listSegments(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, fmt.Errorf("reading audit log: %w", err)
	}
	for i := len(segs) - 1; i >= 0; i-- {
		var last Record
		found := false
		err := querySegment(filepath.Join(dir, segs[i].name), Filter{}, func(r Record) error {
			if match(r) {
				last, found = r, true
			}
			return nil
		})
		if err != nil {
			return Record{}, false, err
		}
		if found {
			return last, true, nil
		}
	}
	return Record{}, false, nil
}
