package ledger

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/dirhash"
	modzip "golang.org/x/mod/zip"

	"github.com/modgate/modgate/internal/modhash"
)

// ErrMoved reports that a private module version now hashes differently from
// the hash recorded the first time modgate saw it: its tag was moved on the
// Git server. The new content must not be stored or served.
var ErrMoved = errors.New("module version changed since it was first recorded")

// A MovedError describes one refused file. It matches ErrMoved.
type MovedError struct {
	Path     string    // module path
	Version  string    // module version
	File     string    // "go.mod", "zip", or "go.mod in zip"
	Recorded string    // the h1: hash recorded first
	Got      string    // the h1: hash of the refused copy
	Since    time.Time // when Recorded was recorded
}

func (e *MovedError) Error() string {
	return fmt.Sprintf("%s@%s: %s hash %s differs from %s recorded on %s: "+
		"the tag was moved on the Git server; modgate keeps serving the recorded version. "+
		"Publish a new version instead of moving a tag.",
		e.Path, e.Version, e.File, e.Got, e.Recorded, e.Since.UTC().Format(time.RFC3339))
}

func (e *MovedError) Unwrap() error { return ErrMoved }

// Config configures a Ledger.
type Config struct {
	// Dir holds the ledger file (FileName). It is created if needed.
	Dir string
	// Patterns are GOPRIVATE-style glob patterns
	// (module.MatchPrefixPatterns) of the private modules to record.
	// Without patterns the Ledger covers nothing.
	Patterns []string
	// Logger receives refusals (Error), first records (Info) and a torn
	// last line found at Open (Warn). Nil discards.
	Logger *slog.Logger
	// OnMoved, when not nil, is called once per refused file, for metrics
	// and audit records. file is as in MovedError.File.
	OnMoved func(module, version, file, recorded, got string)
	// Backend keeps the records instead of the ledger file in Dir (which
	// is then not used): a database shared by replicas (package
	// state/postgres). Nil means the file. Close closes it.
	Backend Backend
}

// A Backend keeps the recorded hashes, by key: the first two fields of the
// file's go.sum line ("path version" or "path version/go.mod").
// Implementations must be safe for concurrent use, also by several
// processes sharing one backend: of two Records of one key, one wins and
// the other gets the winner's record back.
type Backend interface {
	// Lookup returns the record of key; ok is false when there is none.
	Lookup(ctx context.Context, key string) (rec Record, ok bool, err error)
	// Record stores rec for key unless a record is stored already, and
	// returns the stored record: rec itself when this call stored it
	// (created is true), otherwise the earlier one, whatever its hash.
	Record(ctx context.Context, key string, rec Record) (stored Record, created bool, err error)
	// Close releases the backend.
	Close() error
}

// A Record is one recorded hash.
type Record struct {
	Hash string    // "h1:..."
	At   time.Time // when it was first seen, UTC, in whole seconds
}

// FileName is the name of the ledger file in Config.Dir.
const FileName = "ledger.sum"

// A Ledger records the first hash of every private .mod and .zip and refuses
// later copies that differ. It implements the mirror's Checker interface.
// It is safe for concurrent use; one process may use a Dir at a time.
type Ledger struct {
	patterns string // Config.Patterns joined for module.MatchPrefixPatterns
	log      *slog.Logger
	onMoved  func(module, version, file, recorded, got string)
	now      func() time.Time

	mu      sync.Mutex // serialises this process's checks (file backend only)
	backend Backend
	shared  bool // backend is Config.Backend: it decides races itself
}

// lock serialises the checks of a ledger file. A shared backend is not
// serialised here: it decides which copy came first itself, for every
// replica, and a slow database must not hold up every other check.
func (l *Ledger) lock() {
	if !l.shared {
		l.mu.Lock()
	}
}

func (l *Ledger) unlock() {
	if !l.shared {
		l.mu.Unlock()
	}
}

// Open loads the ledger in cfg.Dir, creating an empty one if there is none,
// and keeps its file open for appending until Close. It fails when the file
// cannot be read or holds a malformed line other than a torn last one.
func Open(cfg Config) (*Ledger, error) {
	if cfg.Dir == "" && cfg.Backend == nil {
		return nil, errors.New("ledger: Dir or Backend is required")
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	l := &Ledger{
		patterns: strings.Join(cfg.Patterns, ","),
		log:      logger.With("component", "ledger"),
		onMoved:  cfg.OnMoved,
		now:      time.Now,
	}
	if cfg.Backend != nil {
		l.backend, l.shared = cfg.Backend, true
		return l, nil
	}
	f, records, err := openFile(cfg.Dir, l.log)
	if err != nil {
		return nil, err
	}
	l.backend = &fileBackend{file: f, records: records}
	return l, nil
}

// Close closes the ledger file or backend. Checks after Close fail.
func (l *Ledger) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.backend.Close()
}

// Covers reports whether path is a private module the ledger records: whether
// it matches one of the configured patterns, in any case (the mirror sends
// case variants of private paths to the private sources, and the checksum
// database does not cover them either).
func (l *Ledger) Covers(path string) bool {
	return l.patterns != "" && module.MatchPrefixPatterns(strings.ToLower(l.patterns), strings.ToLower(path))
}

// CheckMod checks data, the go.mod of path@version. The first check of a
// version records its hash and returns nil; later ones return nil when the
// hash is the same and a *MovedError (matching ErrMoved) when it differs.
// Paths not covered return nil without recording anything. Other errors mean
// the check could not be made (an invalid path or version, a failed write of
// the ledger file), and the file must not be served either.
func (l *Ledger) CheckMod(ctx context.Context, path, version string, data []byte) error {
	if !l.Covers(path) {
		return nil
	}
	if err := module.Check(path, version); err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	got, err := hashMod(data)
	if err != nil {
		return fmt.Errorf("%s@%s: hashing go.mod: %w", path, version, err)
	}
	l.lock()
	err = l.checkLocked(ctx, path, version, fileMod, got)
	l.unlock()
	return l.report(err)
}

// CheckZip checks the module zip at zipPath, a local file, as CheckMod checks
// a go.mod. When the version's go.mod is recorded, the go.mod inside the zip
// must also have that hash (its File is "go.mod in zip" otherwise); a zip
// without go.mod, of a module that has none, skips that comparison.
func (l *Ledger) CheckZip(ctx context.Context, path, version, zipPath string) error {
	if !l.Covers(path) {
		return nil
	}
	if err := module.Check(path, version); err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	got, err := modhash.Zip(zipPath)
	if err != nil {
		return fmt.Errorf("%s@%s: hashing zip: %w", path, version, err)
	}
	zipMod, hasMod, err := hashZipGoMod(zipPath, path, version)
	if err != nil {
		return fmt.Errorf("%s@%s: hashing go.mod in zip: %w", path, version, err)
	}

	l.lock()
	err = l.checkZipLocked(ctx, path, version, got, zipMod, hasMod)
	l.unlock()
	return l.report(err)
}

// checkZipLocked is CheckZip once the hashes are known: got is the zip's,
// zipMod the go.mod's inside it (when hasMod). l.mu must be held.
func (l *Ledger) checkZipLocked(ctx context.Context, path, version, got, zipMod string, hasMod bool) error {
	_, zipKnown, err := l.backend.Lookup(ctx, key(path, version, fileZip))
	if err != nil {
		return fmt.Errorf("%s@%s: reading the ledger: %w", path, version, err)
	}
	// A recorded zip decides alone: it was accepted together with the
	// go.mod recorded then, whatever that was.
	if !zipKnown && hasMod {
		rec, ok, err := l.backend.Lookup(ctx, key(path, version, fileMod))
		if err != nil {
			return fmt.Errorf("%s@%s: reading the ledger: %w", path, version, err)
		}
		if ok && rec.Hash != zipMod {
			return &MovedError{Path: path, Version: version, File: fileZipMod, Recorded: rec.Hash, Got: zipMod, Since: rec.At}
		}
	}
	return l.checkLocked(ctx, path, version, fileZip, got)
}

// Lookup returns the recorded hashes of path@version's go.mod and zip; either
// is empty when not recorded, and ok reports whether any is. A backend
// that cannot be read reports nothing recorded.
func (l *Ledger) Lookup(path, version string) (mod, zip string, ok bool) {
	ctx := context.Background()
	m, okMod, _ := l.backend.Lookup(ctx, key(path, version, fileMod))
	z, okZip, _ := l.backend.Lookup(ctx, key(path, version, fileZip))
	return m.Hash, z.Hash, okMod || okZip
}

// Names of the checked files, as MovedError.File and log attributes say them.
const (
	fileMod    = "go.mod"
	fileZip    = "zip"
	fileZipMod = "go.mod in zip"
)

// key returns the records key of one file of path@version: the first two
// fields of its go.sum line.
func key(path, version, file string) string {
	if file == fileMod {
		return path + " " + version + "/go.mod"
	}
	return path + " " + version
}

// checkLocked records got as the hash of the file when none is recorded, and
// otherwise compares. The backend decides atomically which copy was first,
// also between replicas. l.mu must be held.
func (l *Ledger) checkLocked(ctx context.Context, path, version, file, got string) error {
	rec, created, err := l.backend.Record(ctx, key(path, version, file), Record{Hash: got, At: l.now().UTC().Truncate(time.Second)})
	if err != nil {
		return fmt.Errorf("%s@%s: recording %s hash: %w", path, version, file, err)
	}
	if rec.Hash != got {
		return &MovedError{Path: path, Version: version, File: file, Recorded: rec.Hash, Got: got, Since: rec.At}
	}
	if created {
		l.log.Info("recorded hash", "module", path, "version", version, "file", file, "hash", got)
	} else {
		l.log.Debug("hash matches record", "module", path, "version", version, "file", file)
	}
	return nil
}

// report logs a refusal and tells the OnMoved hook; it returns err unchanged.
// l.mu must not be held: the hook may take its time.
func (l *Ledger) report(err error) error {
	var moved *MovedError
	if !errors.As(err, &moved) {
		return err
	}
	l.log.Error("refused moved version", "module", moved.Path, "version", moved.Version, "file", moved.File,
		"recorded", moved.Recorded, "got", moved.Got, "since", moved.Since)
	if l.onMoved != nil {
		l.onMoved(moved.Path, moved.Version, moved.File, moved.Recorded, moved.Got)
	}
	return err
}

// hashMod computes the go.sum hash of a go.mod file as the go command does:
// the Hash1 of a tree holding only that file, named go.mod.
func hashMod(data []byte) (string, error) {
	return dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	})
}

// hashZipGoMod returns the hash of the module's go.mod inside the zip at
// zipPath, and false when the zip has none.
func hashZipGoMod(zipPath, path, version string) (string, bool, error) {
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		return "", false, err
	}
	defer zr.Close()
	name := path + "@" + version + "/go.mod"
	for _, f := range zr.File {
		if f.Name != name {
			continue
		}
		if f.UncompressedSize64 > modzip.MaxGoMod {
			return "", false, fmt.Errorf("go.mod is larger than %d bytes", modzip.MaxGoMod)
		}
		rc, err := f.Open()
		if err != nil {
			return "", false, err
		}
		data, err := io.ReadAll(io.LimitReader(rc, modzip.MaxGoMod+1))
		rc.Close()
		if err != nil {
			return "", false, err
		}
		h, err := hashMod(data)
		return h, true, err
	}
	return "", false, nil
}
