package mirror

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
)

// answersPrefix is the storage prefix of the last answers to mutable
// requests (see record). Like "sumdb/", it has no dot, so it can never be
// the first element of a module path: the store stays a valid file://
// GOPROXY, in which a remembered "not found" is simply an absent file.
const answersPrefix = "answers/"

// maxRecordSize bounds a stored record: an .info answer or an error line.
const maxRecordSize = maxInfoSize + 4096

// A record is the last answer an upstream gave to a mutable request (list,
// @latest, query), kept in the store under answersPrefix + the request's
// key, so that a restarted server that cannot reach any upstream answers as
// it did online, "not found" included: the go command probes package paths
// and pseudo-version-only modules, and an upgrade (`go list -m -u`,
// `go get -u`) fails on a 502 where it accepts a 404.
//
// Positive lists and @latest answers live at their protocol paths (the
// store is a file:// GOPROXY); their record only says "found", and exists
// only once the key has been "not found" before, to overwrite that answer.
// A query's answer (.info of a branch, v28.5.2 of a +incompatible module)
// is kept in the record, not at its protocol path, where it would read as
// the .info of a version.
type record struct {
	Found bool   `json:"found"`
	Data  string `json:"data,omitempty"`  // a found query's answer
	Error string `json:"error,omitempty"` // why it was not found
}

// A StaleMiss is a "not found" that an upstream answered before, returned
// when every upstream fails now. It matches fs.ErrNotExist (and Err's
// classes), so the client gets the 404 it got online. Callers may mark the
// response stale.
type StaleMiss struct {
	Err   error // the remembered "not found"
	Cause error // why the upstreams could not be asked now
}

func (e *StaleMiss) Error() string {
	return e.Err.Error() + " (remembered answer: every upstream failed just now)"
}

func (e *StaleMiss) Unwrap() error { return e.Err }

// rememberedMiss is a "not found" read back from a record.
type rememberedMiss struct{ msg string }

func (e *rememberedMiss) Error() string        { return e.msg }
func (e *rememberedMiss) Is(target error) bool { return target == fs.ErrNotExist }

// readRecord returns the record of key; ok is false when there is none or
// it cannot be read.
func (m *Mirror) readRecord(ctx context.Context, key string) (rec record, ok bool) {
	rc, err := m.cfg.Store.Get(ctx, answersPrefix+key)
	if err != nil {
		return record{}, false
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxRecordSize))
	if err != nil || json.Unmarshal(data, &rec) != nil {
		return record{}, false
	}
	return rec, true
}

// remember stores the answer to key: data when err is nil, else the "not
// found" err. persist says whether the key's positive answer lives at its
// protocol path (lists, @latest). Failing to store is logged, not
// returned: serving the answer matters more.
func (m *Mirror) remember(ctx context.Context, key string, persist bool, data []byte, err error) {
	var rec record
	switch {
	case err != nil:
		rec.Error = err.Error()
	case persist:
		rec.Found = true
	default:
		rec.Found, rec.Data = true, string(data)
	}
	old, had := m.readRecord(ctx, key)
	if had && old == rec {
		return
	}
	if !had && rec.Found && persist {
		return // the protocol path says it all
	}
	enc, jerr := json.Marshal(rec)
	if jerr != nil || len(enc) > maxRecordSize {
		return
	}
	if perr := m.cfg.Store.Put(ctx, answersPrefix+key, bytes.NewReader(enc)); perr != nil {
		m.log.Warn("storing last answer failed", "key", key, "err", perr)
	}
}

// lastAnswer returns what key was last answered, for when every upstream
// fails: data, or an error matching fs.ErrNotExist for a remembered "not
// found"; ok is false when nothing is known. Memory is consulted first,
// then the store.
func (m *Mirror) lastAnswer(ctx context.Context, key string, persist bool) (data []byte, miss error, ok bool) {
	if data, _, ok := m.mutable.lookup(key); ok {
		return data, nil, true
	}
	if err, _, ok := m.misses.lookup(key); ok {
		return nil, err, true
	}
	rec, had := m.readRecord(ctx, key)
	switch {
	case had && !rec.Found:
		return nil, &rememberedMiss{msg: rec.Error}, true
	case had && !persist:
		return []byte(rec.Data), nil, true
	case persist:
		if data, err := m.readStored(ctx, key); err == nil {
			return data, nil, true
		}
	}
	return nil, nil, false
}

// isMiss reports whether err is an upstream's "not found" worth
// remembering (a verification failure is never remembered).
func isMiss(err error) bool {
	return errors.Is(err, fs.ErrNotExist) && !errors.Is(err, ErrVerification)
}

// persistsAtPath reports whether the positive answer to key is kept at its
// protocol path (lists and @latest; not queries).
func persistsAtPath(key string) bool {
	switch artifact(key) {
	case "list", "latest":
		return true
	}
	return false
}
