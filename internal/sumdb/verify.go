package sumdb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/module"
	xsumdb "golang.org/x/mod/sumdb"
	"golang.org/x/mod/sumdb/dirhash"
	"golang.org/x/mod/sumdb/note"

	"github.com/modgate/modgate/internal/modhash"
	"github.com/modgate/modgate/internal/storage"
	"github.com/modgate/modgate/internal/upstream"
)

var (
	// ErrMismatch reports that a downloaded file's hash differs from the one
	// the checksum database holds for it. The file must not be stored or served.
	ErrMismatch = errors.New("checksum mismatch")
	// ErrNotInDB reports that the checksum database has no record of a module
	// version (or no hash for the file asked about), so it cannot be verified.
	// It deliberately does not match fs.ErrNotExist: the module may well exist.
	ErrNotInDB = errors.New("not found in checksum database")
	// ErrSecurity reports that the checksum database misbehaved: its log is
	// not consistent with a tree head verified earlier (a fork or a rollback).
	// It is the same value as golang.org/x/mod/sumdb.ErrSecurity.
	ErrSecurity = xsumdb.ErrSecurity
)

// maxClientLookups bounds the lookups one sumdb.Client serves before it is
// replaced: the client remembers every result it ever returned.
const maxClientLookups = 100_000

// VerifierConfig configures a Verifier.
type VerifierConfig struct {
	// DB is the checksum database (see ParseGOSUMDB). The zero DB (off)
	// makes a Verifier that covers nothing.
	DB DB
	// NoSumDB lists GONOSUMDB-style glob patterns (module.MatchPrefixPatterns)
	// of module paths the database does not cover, such as private modules.
	NoSumDB []string
	// Source fetches "sumdb/{name}/..." paths. Required unless DB is off.
	Source upstream.Source
	// Store caches lookups and tiles under "sumdb/{name}/...", shared with
	// the Handler. Nil means no cache.
	Store storage.Store
	// StateDir keeps the latest verified tree head in {StateDir}/{name}/latest,
	// so that a database that forks or rolls back is detected after a
	// restart too. Empty keeps it in memory only, for this process's life.
	StateDir string
	// HeadStore, when not nil, keeps the latest verified tree head where
	// every replica shares it (see HeadStore), instead of StateDir.
	HeadStore HeadStore
	// Logger receives security events (Error) and client chatter (Debug).
	// Nil discards.
	Logger *slog.Logger
	// OnSecurityEvent, when not nil, is called once per security event (a
	// checksum mismatch or a misbehaving database) with its description,
	// for example to count it in a metric.
	OnSecurityEvent func(msg string)
	// Heads keeps a second copy of the verified tree head (see HeadCopy):
	// every advance is saved, at most once per HeadInterval (zero means
	// DefaultHeadInterval) and the latest on Close; when the state has no
	// tree head, the Verifier resumes from the saved one. Nil: no copy.
	Heads        HeadCopy
	HeadInterval time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// LastActive, when not nil, returns when clients were last served:
	// background work of the Verifier that no request needs waits until
	// then is keeperIdle ago too (see filelayout.go).
	LastActive func() time.Time
}

// A Verifier checks downloaded module files against a checksum database
// before they are stored.
//
// Lookups go through a golang.org/x/mod/sumdb.Client, which authenticates
// every record with tile proofs against the latest signed tree head and
// refuses a tree that is inconsistent with one it verified before.
// That client remembers every lookup result, failures included, for as long
// as it lives, and flattens errors into text; the Verifier therefore replaces
// it (its state lives in the Store and StateDir, so a new one is cheap) after
// any failure other than a security error and after maxClientLookups lookups,
// and classifies failures from what its operations observed, never from text.
//
// A Verifier is safe for concurrent use. Checks of the .mod and .zip of the
// same version share one database lookup.
type Verifier struct {
	db         DB
	noSumDB    string
	source     upstream.Source
	store      storage.Store
	state      *state
	log        *slog.Logger
	onSecurity func(msg string)
	maxLookups int64

	seq atomic.Uint64            // numbers the events clientOps records
	cur atomic.Pointer[dbClient] // the client lookups use now

	heads        HeadCopy
	headInterval time.Duration
	now          func() time.Time
	headMu       sync.Mutex
	headSaved    time.Time // when a head was last saved
	headPending  []byte    // a verified head not saved yet
	recoverOnce  sync.Once
	recovered    []byte // the head recovered from the copy, nil if none

	// forked is set, for the rest of the process's life, when a tree head
	// adopted without a verified predecessor disagreed with the cache:
	// every lookup fails as a security error until an operator acts.
	forked atomic.Pointer[error]

	lookups sync.WaitGroup // background lookups, waited for by Close

	supported supportedMarks // see filelayout.go
	keeper    keeper         // see filelayout.go
}

// A dbClient is one sumdb.Client generation with its operations.
type dbClient struct {
	client  *xsumdb.Client
	ops     *clientOps
	lookups atomic.Int64
}

// NewVerifier returns a Verifier for cfg. It checks that the key is a valid
// verifier key for cfg.DB.Name and that a Source is given; it does not
// contact the database.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	v := &Verifier{
		db:         cfg.DB,
		noSumDB:    strings.Join(cfg.NoSumDB, ","),
		source:     cfg.Source,
		store:      cfg.Store,
		log:        logger.With("component", "sumdb"),
		onSecurity: cfg.OnSecurityEvent,
		maxLookups: maxClientLookups,
		heads:      cfg.Heads,
		now:        cfg.Now,
	}
	v.keeper.lastActive = cfg.LastActive
	v.headInterval = cfg.HeadInterval
	if v.headInterval <= 0 {
		v.headInterval = DefaultHeadInterval
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.db.Off() {
		return v, nil
	}
	verifier, err := note.NewVerifier(v.db.Key)
	if err != nil {
		return nil, fmt.Errorf("checksum database %q: invalid verifier key: %w", v.db.Name, err)
	}
	if verifier.Name() != v.db.Name {
		return nil, fmt.Errorf("checksum database %q: verifier key is for %q", v.db.Name, verifier.Name())
	}
	if err := checkDBName(v.db.Name); err != nil {
		return nil, err
	}
	if v.source == nil {
		return nil, fmt.Errorf("checksum database %s: no upstream source to reach it", v.db.Name)
	}
	v.state = newState(cfg.StateDir, v.db.Name)
	v.state.heads, v.state.name = cfg.HeadStore, v.db.Name
	v.cur.Store(v.newClient(false))
	return v, nil
}

// DB returns the database the Verifier checks against.
func (v *Verifier) DB() DB { return v.db }

// Covers reports whether files of modulePath are checked: false when the
// database is off or the path matches a NoSumDB pattern, in any case (a
// case variant of a private path is private too: looking it up would leak
// the name).
func (v *Verifier) Covers(modulePath string) bool {
	return !v.db.Off() && !module.MatchPrefixPatterns(strings.ToLower(v.noSumDB), strings.ToLower(modulePath))
}

// CheckMod checks data, the go.mod file of path@version, against the
// database's "path version/go.mod h1:..." line.
//
// It returns nil when the hash matches or the database does not cover path.
// Otherwise the error matches ErrMismatch (the file is not the published one:
// refuse it), ErrNotInDB (the database has no hash for it), ErrSecurity (the
// database misbehaved), upstream.ErrUnavailable or upstream.ErrTimeout (the
// database could not be reached or gave an unusable answer), or ctx's error.
func (v *Verifier) CheckMod(ctx context.Context, path, version string, data []byte) error {
	if !v.Covers(path) {
		return nil
	}
	if err := module.Check(path, version); err != nil {
		return fmt.Errorf("verifying go.mod against checksum database %s: %w", v.db.Name, err)
	}
	pending := v.startLookup(path, version+"/go.mod")
	got, err := dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	})
	if err != nil {
		return fmt.Errorf("%s@%s: hashing go.mod: %w", path, version, err)
	}
	return v.compare(ctx, pending, path, version, "go.mod", got)
}

// CheckZip checks the module zip at zipPath, a local file, against the
// database's "path version h1:..." line. It returns nil or an error as
// CheckMod does.
func (v *Verifier) CheckZip(ctx context.Context, path, version, zipPath string) error {
	if !v.Covers(path) {
		return nil
	}
	if err := module.Check(path, version); err != nil {
		return fmt.Errorf("verifying zip against checksum database %s: %w", v.db.Name, err)
	}
	// The lookup runs while the zip is hashed.
	pending := v.startLookup(path, version)
	got, err := modhash.Zip(zipPath)
	if err != nil {
		return fmt.Errorf("%s@%s: hashing zip: %w", path, version, err)
	}
	return v.compare(ctx, pending, path, version, "zip", got)
}

// Prefetch starts looking up path@version in the background, so that the
// lookup overlaps the download of the file a later CheckMod or CheckZip
// verifies: both share the client's record of the version. It returns at
// once and does nothing for paths not covered or invalid versions.
func (v *Verifier) Prefetch(path, version string) {
	if !v.Covers(path) || module.Check(path, version) != nil {
		return
	}
	v.startLookup(path, version)
}

// lookupResult is the outcome of one database lookup.
type lookupResult struct {
	lines []string
	err   error
}

// startLookup looks up the go.sum lines of path@vers (vers may end in
// "/go.mod") in the background. The lookup is shared with every other
// caller that asks for the same version and outlives a caller that stops
// waiting; fetchTimeout bounds each of its fetches.
func (v *Verifier) startLookup(path, vers string) <-chan lookupResult {
	ch := make(chan lookupResult, 1)
	v.keeper.lookupStarted()
	v.lookups.Go(func() {
		defer v.keeper.lookupEnded()
		lines, err := v.lookup(path, vers)
		ch <- lookupResult{lines, err}
	})
	return ch
}

// Close waits for the lookups still running in the background (each is
// bounded by its fetch timeouts), so that nothing writes to the store
// after it returns. The Verifier must not be used afterwards.
func (v *Verifier) Close() error {
	v.lookups.Wait()
	v.keeper.close()
	v.flushHead(true)
	return nil
}

// compare waits for the lookup and compares its h1: hash with got.
func (v *Verifier) compare(ctx context.Context, pending <-chan lookupResult, path, version, file, got string) error {
	var res lookupResult
	select {
	case res = <-pending:
	case <-ctx.Done():
		return fmt.Errorf("%s@%s: waiting for checksum database %s: %w", path, version, v.db.Name, ctx.Err())
	}
	if res.err != nil {
		return res.err
	}

	vers := version
	if file == "go.mod" {
		vers += "/go.mod"
	}
	prefix := path + " " + vers + " "
	var want []string
	for _, line := range res.lines {
		if h, ok := strings.CutPrefix(line, prefix); ok && strings.HasPrefix(h, "h1:") {
			want = append(want, h)
		}
	}
	if len(want) == 0 {
		// The go command accepts a record without a line for the file; a
		// mirror that must never store unverified bytes does not.
		return &classError{
			msg:   fmt.Sprintf("%s@%s: %s hash not found in checksum database %s", path, version, file, v.db.Name),
			class: ErrNotInDB,
		}
	}
	if slices.Contains(want, got) {
		return nil
	}
	msg := fmt.Sprintf("%s@%s: %s has hash %s but checksum database %s says %s: refusing to store or serve it (the upstream may be compromised)",
		path, version, file, got, v.db.Name, strings.Join(want, ", "))
	v.log.Error("checksum mismatch", "module", path, "version", version, "file", file,
		"got", got, "want", strings.Join(want, ", "), "db", v.db.Name)
	v.securityEvent(msg)
	return &classError{msg: msg, class: ErrMismatch}
}

// lookup returns the database's go.sum lines for path@vers, with a
// classified error.
func (v *Verifier) lookup(path, vers string) ([]string, error) {
	v.flushHead(false)
	for attempt := 0; ; attempt++ {
		if err := v.forked.Load(); err != nil {
			return nil, v.securityError(path, vers)
		}
		c := v.cur.Load()
		start := v.seq.Load()
		lines, err := c.client.Lookup(path, vers)
		if c.lookups.Add(1) >= v.maxLookups {
			v.replaceClient(c, false)
		}
		if err == nil {
			if c.ops.bypassCache {
				// The cache has been rewritten with verified data; use it again.
				v.replaceClient(c, false)
			}
			v.keepLookupTree(path, vers)
			return lines, nil
		}

		kind, err := c.ops.classify(path, vers, start, err)
		if kind == failSecurity {
			// The client is right and stays: every later lookup against
			// the inconsistent tree must fail the same way.
			return nil, err
		}
		// The client remembers the failure forever; start afresh.
		v.replaceClient(c, kind == failUnexplained)
		if kind == failUnexplained && attempt == 0 && !c.ops.bypassCache {
			// A record or tile that does not verify may come from the shared
			// cache (the Handler stores what the upstream sent). Ask the
			// database once more, ignoring the cache and rewriting it.
			v.log.Debug("retrying lookup without cache", "module", path, "version", vers, "err", err)
			continue
		}
		if kind == failUnexplained && v.unprovenRecovery() {
			return nil, v.refuseRecovered(path, vers, err)
		}
		return nil, err
	}
}

// replaceClient makes a new client current, unless old has already been
// replaced. A bypassCache client neither reads the cache nor trusts it, and
// overwrites it with what it verifies.
func (v *Verifier) replaceClient(old *dbClient, bypassCache bool) {
	v.cur.CompareAndSwap(old, v.newClient(bypassCache))
}

// newClient returns a new sumdb.Client generation.
func (v *Verifier) newClient(bypassCache bool) *dbClient {
	ops := &clientOps{v: v, bypassCache: bypassCache, lookupFailures: make(map[string]error)}
	return &dbClient{client: xsumdb.NewClient(ops), ops: ops}
}

// securityEvent reports msg to the OnSecurityEvent hook.
func (v *Verifier) securityEvent(msg string) {
	if v.onSecurity != nil {
		v.onSecurity(msg)
	}
}

// classError is an error with an exact message that matches one sentinel.
type classError struct {
	msg   string
	class error
}

func (e *classError) Error() string        { return e.msg }
func (e *classError) Is(target error) bool { return target == e.class }

// notInDB returns the ErrNotInDB error for path@version.
func (v *Verifier) notInDB(path, version string, reason error) error {
	v.log.Debug("not found in checksum database", "module", path, "version", version, "err", reason)
	return &classError{
		msg: fmt.Sprintf("%s@%s: not found in checksum database %s, so it cannot be verified "+
			"(a private module must match sumdb.nosumdb; a version published minutes ago may need a moment)", path, version, v.db.Name),
		class: ErrNotInDB,
	}
}

// isNotExist reports whether err means "no such file".
func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
