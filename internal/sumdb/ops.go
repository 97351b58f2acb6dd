package sumdb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"golang.org/x/mod/module"
	xsumdb "golang.org/x/mod/sumdb"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/modgate/modgate/internal/storage"
	"github.com/modgate/modgate/internal/upstream"
)

// maxEvents bounds the failure events one clientOps keeps.
const maxEvents = 64

// errNoCache is what ReadCache returns when the cache is not consulted.
var errNoCache = errors.New("checksum database cache not used")

// A failKind classifies why a lookup failed.
type failKind int

const (
	failNotFound    failKind = iota + 1 // the database has no record (lookup 404/410)
	failRemote                          // a fetch failed: unavailable or timed out
	failSecurity                        // the database misbehaved
	failLocal                           // the state file could not be read or written
	failUnexplained                     // an answer did not verify (bad record, bad tile, bad note)
)

// An opsEvent is one failure seen by a clientOps, numbered by Verifier.seq
// so that a lookup can tell the events that happened while it ran.
type opsEvent struct {
	seq  uint64
	kind failKind
	err  error
}

// clientOps implements sumdb.ClientOps for one sumdb.Client generation.
//
// Besides doing the operations it records what went wrong in them: the
// client reports failures as flattened text, and the Verifier needs the
// classified errors. Lookup fetches are keyed by remote path (the client
// fetches a lookup path at most once in its life, so the entry is stable);
// other failures (tiles, state file, security) are kept as numbered events.
type clientOps struct {
	v           *Verifier
	bypassCache bool // do not read the cache; rewrite it with verified data

	mu             sync.Mutex
	lookupFailures map[string]error // remote lookup path -> classified fetch error
	events         []opsEvent
	sawSecurity    bool // the client memoises the lookups that failed this way
}

var _ xsumdb.ClientOps = (*clientOps)(nil)

// ReadRemote fetches "sumdb/{name}{path}" from the Source.
func (o *clientOps) ReadRemote(path string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
	defer cancel()
	data, err := fetchAll(ctx, o.v.source, "sumdb/"+o.v.db.Name+path)
	if err == nil {
		return data, nil
	}
	if strings.HasPrefix(path, "/lookup/") {
		o.mu.Lock()
		o.lookupFailures[path] = err
		o.mu.Unlock()
		return nil, err
	}
	if isNotExist(err) {
		// A database that cannot serve the tiles of its own tree is broken,
		// not missing a module: never let this read as "not found".
		err = fmt.Errorf("%w: database does not serve %s: %v", upstream.ErrUnavailable, path, err)
	}
	o.record(failRemote, err)
	return nil, err
}

// ReadConfig returns the verifier key or the latest verified tree head.
func (o *clientOps) ReadConfig(file string) ([]byte, error) {
	switch file {
	case "key":
		return []byte(o.v.db.Key), nil
	case o.v.db.Name + "/latest":
		data, err := o.v.state.readLatest()
		if err == nil && len(data) == 0 {
			// A first start, or the state file was deleted: resume from
			// the saved copy, if there is one.
			data, err = o.v.recoverLatest()
		}
		switch {
		case errors.Is(err, ErrSecurity):
			o.record(failSecurity, err)
		case err != nil:
			o.record(failLocal, err)
		}
		return data, err
	}
	err := fmt.Errorf("checksum database client asked for unknown configuration %q", file)
	o.record(failLocal, err)
	return nil, err
}

// WriteConfig replaces the latest verified tree head if it is still old.
func (o *clientOps) WriteConfig(file string, old, new []byte) error {
	if file != o.v.db.Name+"/latest" {
		err := fmt.Errorf("checksum database client wrote unknown configuration %q", file)
		o.record(failLocal, err)
		return err
	}
	if len(old) == 0 {
		// A head without a verified predecessor: its signature is all
		// that vouches for it, so it must at least agree with the cache.
		if err := o.v.crossCheck(new); err != nil {
			o.v.refuse(fmt.Errorf("refusing a tree head adopted without a verified predecessor: %w\n\n%s", err, new))
			o.record(failSecurity, ErrSecurity)
			return ErrSecurity
		}
	}
	err := o.v.state.swapLatest(old, new)
	if err != nil && err != xsumdb.ErrWriteConflict {
		o.record(failLocal, err)
	}
	if err == nil {
		o.v.headAdvanced(new)
	}
	return err
}

// ReadCache reads "sumdb/{file}" from the Store, or a partial tile from
// the state.
func (o *clientOps) ReadCache(file string) ([]byte, error) {
	if o.bypassCache {
		return nil, errNoCache
	}
	if t, ok := o.partialTile(file); ok {
		if data, ok := o.v.state.partialTile(t); ok {
			return data, nil
		}
		return nil, errNoCache
	}
	key := "sumdb/" + file
	if o.v.store == nil || storage.CheckName(key) != nil {
		return nil, errNoCache
	}
	ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
	defer cancel()
	rc, err := o.v.store.Get(ctx, key)
	if err != nil {
		if !isNotExist(err) {
			o.v.log.Warn("reading checksum database cache", "key", key, "err", err)
		}
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxBody+1))
	if err != nil {
		o.v.log.Warn("reading checksum database cache", "key", key, "err", err)
		return nil, err
	}
	if len(data) > maxBody {
		return nil, errNoCache
	}
	o.v.log.Debug("checksum database cache hit", "key", key)
	return data, nil
}

// WriteCache keeps data, which the client has verified, in the Store under
// "sumdb/{file}"; a partial tile also in the state (see state), which
// ReadCache reads it from. A partial tile is stored too because a client
// reading the Store as a file:// GOPROXY needs it to check a lookup made
// while the tree had that size (see filelayout.go).
func (o *clientOps) WriteCache(file string, data []byte) {
	if t, ok := o.partialTile(file); ok {
		if err := o.v.state.savePartialTile(t, data); err != nil {
			o.v.log.Warn("writing checksum database state", "err", err)
		}
	}
	key := "sumdb/" + file
	if o.v.store == nil {
		return
	}
	if err := storage.CheckName(key); err != nil {
		o.v.log.Debug("not caching checksum database file", "key", key, "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
	defer cancel()
	o.v.supported.mark(ctx, o.v.store, o.v.db.Name, o.v.log)
	if err := o.v.store.Put(ctx, key, bytes.NewReader(data)); err != nil {
		o.v.log.Warn("writing checksum database cache", "key", key, "err", err)
	}
}

// partialTile reports whether the client cache file "{name}/tile/..." is a
// partial hash tile, and which.
func (o *clientOps) partialTile(file string) (tlog.Tile, bool) {
	rest, ok := strings.CutPrefix(file, o.v.db.Name+"/")
	if !ok || !strings.HasPrefix(rest, "tile/") {
		return tlog.Tile{}, false
	}
	t, err := tlog.ParseTilePath(rest)
	return t, err == nil && t.L >= 0 && t.W != 1<<t.H
}

// Log records the client's chatter at Debug level.
func (o *clientOps) Log(msg string) {
	o.v.log.Debug("checksum database client", "detail", msg)
}

// SecurityError reports proof that the database misbehaved.
func (o *clientOps) SecurityError(msg string) {
	o.v.log.Error("checksum database misbehaviour detected", "db", o.v.db.Name, "detail", msg)
	o.record(failSecurity, ErrSecurity)
	o.v.securityEvent(msg)
}

// record notes a failure event.
func (o *clientOps) record(kind failKind, err error) {
	seq := o.v.seq.Add(1)
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.events) == maxEvents {
		o.events = append(o.events[:0], o.events[1:]...)
	}
	o.events = append(o.events, opsEvent{seq: seq, kind: kind, err: err})
	o.sawSecurity = o.sawSecurity || kind == failSecurity
}

// classify turns the client's flattened error for a lookup of path@vers,
// started when the event counter was at start, into a classified error.
func (o *clientOps) classify(path, vers string, start uint64, lookupErr error) (failKind, error) {
	version := strings.TrimSuffix(vers, "/go.mod")
	name := o.v.db.Name
	remote := ""
	if epath, err := module.EscapePath(path); err == nil {
		if evers, err := module.EscapeVersion(version); err == nil {
			remote = "/lookup/" + epath + "@" + evers
		}
	}

	o.mu.Lock()
	lookupErrSeen, ok := o.lookupFailures[remote]
	var recent []opsEvent
	for _, e := range o.events {
		if e.seq > start {
			recent = append(recent, e)
		}
	}
	sawSecurity := o.sawSecurity
	o.mu.Unlock()

	if ok {
		if isNotExist(lookupErrSeen) {
			return failNotFound, o.v.notInDB(path, version, lookupErrSeen)
		}
		return failRemote, fmt.Errorf("%s@%s: checksum database %s: %w", path, version, name, lookupErrSeen)
	}
	security := o.v.securityError(path, vers)
	if _, ok := pickEvent(recent, failSecurity); ok {
		return failSecurity, security
	}
	if e, ok := pickEvent(recent, failLocal); ok {
		return failLocal, fmt.Errorf("%s@%s: checksum database %s: %w", path, version, name, e.err)
	}
	if e, ok := pickEvent(recent, failRemote); ok {
		return failRemote, fmt.Errorf("%s@%s: checksum database %s: %w", path, version, name, e.err)
	}
	if sawSecurity {
		// Nothing happened during this lookup: the client returned an error
		// it remembered, and this client only stays after a security error.
		return failSecurity, security
	}
	return failUnexplained, fmt.Errorf("%s@%s: checksum database %s: %w: answer does not verify: %s",
		path, version, name, upstream.ErrUnavailable, firstLine(lookupErr.Error()))
}

// securityError is the error of a lookup of path@vers refused because the
// database misbehaved.
func (v *Verifier) securityError(path, vers string) error {
	version := strings.TrimSuffix(vers, "/go.mod")
	return &classError{
		msg: fmt.Sprintf("%s@%s: checksum database %s misbehaved: its log is inconsistent with the tree head verified earlier "+
			"(a fork or a rollback; details in the server log): refusing to verify against it: %v", path, version, v.db.Name, ErrSecurity),
		class: ErrSecurity,
	}
}

// pickEvent returns an event of the kind, preferring a timeout among
// remote failures so that a caller can answer 504 rather than 502.
func pickEvent(events []opsEvent, kind failKind) (opsEvent, bool) {
	var found opsEvent
	ok := false
	for _, e := range events {
		if e.kind != kind {
			continue
		}
		if !ok || errors.Is(e.err, upstream.ErrTimeout) && !errors.Is(found.err, upstream.ErrTimeout) {
			found, ok = e, true
		}
	}
	return found, ok
}

// firstLine returns s up to its first newline.
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
