package upstream

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"time"
)

// A ChainEntry is one Source of a Chain and how to leave it on failure.
type ChainEntry struct {
	Source Source
	// FallThroughOnAnyError makes the Chain try the next entry after any
	// error (GOPROXY separator '|'); otherwise it moves on only after an
	// error matching fs.ErrNotExist (separator ',').
	FallThroughOnAnyError bool
}

// A Chain is a Source that tries an ordered list of Sources with the go
// command's GOPROXY rules. It is safe for concurrent use.
type Chain struct {
	entries  []ChainEntry
	excluded []string

	// supports remembers which entries proxy which checksum databases
	// (see sumdbSupported), keyed by entry index and database name.
	mu       sync.Mutex
	supports map[supportKey]supportAnswer
}

// NewChain returns a Chain over entries, tried in order.
func NewChain(entries []ChainEntry) *Chain {
	return &Chain{entries: append([]ChainEntry(nil), entries...)}
}

// Fetch asks each entry in turn. The first success is returned. After an
// error, the next entry is tried if the error matches fs.ErrNotExist or
// the entry falls through on any error; otherwise the chain stops. For
// checksum database paths ("sumdb/{name}/..."), a "not found" from an entry
// that proxies the database is final (see sumdbSupported). The
// caller's context ending stops the chain at once, with the context's error.
//
// When only one entry was asked, its error is returned as it is. When more
// were, the error is a *ChainError naming each of them, classified by its
// Err (see ChainError).
func (c *Chain) Fetch(ctx context.Context, path string) (*Response, error) {
	if len(c.entries) == 0 {
		return nil, classify(ErrUnavailable, fmt.Errorf("fetching %s: %w", path, errNoUpstream))
	}
	var failures []Failure
	for i, e := range c.entries {
		if ctx.Err() != nil {
			return nil, chainCtxError(ctx, path, failures)
		}
		resp, err := e.Source.Fetch(ctx, path)
		if err == nil {
			return resp, nil
		}
		failures = append(failures, Failure{Upstream: e.Source.String(), Err: err})
		if ctx.Err() != nil {
			return nil, chainCtxError(ctx, path, failures)
		}
		if !e.FallThroughOnAnyError && !errors.Is(err, fs.ErrNotExist) {
			break
		}
		if db, ok := sumdbName(path); ok && errors.Is(err, fs.ErrNotExist) {
			// An entry that proxies the database speaks for it: its
			// "not found" is the database's (see sumdbSupported).
			if serr := c.sumdbSupported(ctx, i, db); serr == nil {
				break
			} else if !errors.Is(serr, fs.ErrNotExist) && !e.FallThroughOnAnyError {
				failures = append(failures, Failure{Upstream: e.Source.String(), Err: serr})
				break
			}
		}
	}
	if len(failures) == 1 {
		return nil, failures[0].Err
	}
	return nil, &ChainError{Path: path, Failures: failures, Err: decisive(failures)}
}

// supportTTL is how long a Chain remembers whether an entry proxies a
// checksum database.
const supportTTL = 10 * time.Minute

type supportKey struct {
	entry int
	db    string
}

type supportAnswer struct {
	err  error // nil: supported; matches fs.ErrNotExist: not proxied
	when time.Time
}

// sumdbName returns the database name of a checksum database path
// ("sumdb/{name}/...") other than "sumdb/{name}/supported".
func sumdbName(path string) (string, bool) {
	rest, ok := strings.CutPrefix(path, "sumdb/")
	if !ok {
		return "", false
	}
	name, file, ok := strings.Cut(rest, "/")
	return name, ok && name != "" && file != "supported"
}

// sumdbSupported reports whether entry i proxies checksum database db: nil
// when its "sumdb/{db}/supported" answers, an error matching fs.ErrNotExist
// when it says "not found", another error when it could not tell.
//
// This is the go command's rule for GOPROXY and checksum databases (see
// `go help goproxy`): the first proxy whose /sumdb/{db}/supported answers
// 200 is used for every request to that database and never left for the
// next entry; only a proxy that does not support the database is skipped.
// So when such a proxy says a lookup or tile is "not found", the chain
// stops there instead of asking the database host through "direct" (which
// may be unreachable, and would be asked about every path that is not a
// module). Definite answers are remembered for supportTTL.
func (c *Chain) sumdbSupported(ctx context.Context, i int, db string) error {
	key := supportKey{i, db}
	c.mu.Lock()
	a, ok := c.supports[key]
	c.mu.Unlock()
	if ok && time.Since(a.when) < supportTTL {
		return a.err
	}
	resp, err := c.entries[i].Source.Fetch(ctx, "sumdb/"+db+"/supported")
	if err == nil {
		resp.Body.Close()
	}
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		c.mu.Lock()
		if c.supports == nil {
			c.supports = make(map[supportKey]supportAnswer)
		}
		c.supports[key] = supportAnswer{err: err, when: time.Now()}
		c.mu.Unlock()
	}
	return err
}

// chainCtxError reports that the caller's context ended during a Chain
// fetch, naming what the upstreams had said so far.
func chainCtxError(ctx context.Context, path string, failures []Failure) error {
	var err error
	if len(failures) == 0 {
		err = fmt.Errorf("fetching %s: %w", path, ctx.Err())
	} else {
		err = fmt.Errorf("fetching %s: %w (after: %s)", path, ctx.Err(), joinFailures(failures))
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return classify(ErrTimeout, err)
	}
	return err
}

// String returns the chain as a GOPROXY list, with passwords redacted.
func (c *Chain) String() string {
	var b strings.Builder
	for i, e := range c.entries {
		if i > 0 {
			if c.entries[i-1].FallThroughOnAnyError {
				b.WriteByte('|')
			} else {
				b.WriteByte(',')
			}
		}
		b.WriteString(e.Source.String())
	}
	return b.String()
}

// Entries returns the String of every entry, in order (passwords
// redacted), for logs and explanations.
func (c *Chain) Entries() []string {
	out := make([]string, len(c.entries))
	for i, e := range c.entries {
		out[i] = e.Source.String()
	}
	return out
}

// Links returns every entry as an Entry: its String (passwords redacted)
// and whether any failure, not only "not found", moves on to the next one.
func (c *Chain) Links() []Entry {
	out := make([]Entry, len(c.entries))
	for i, e := range c.entries {
		out[i] = Entry{URL: e.Source.String(), FallThroughOnAnyError: e.FallThroughOnAnyError}
	}
	return out
}

// Excluded returns the GOPROXY entries (redacted) that Build left out
// because they point at modgate itself; nil for a Chain made by NewChain.
func (c *Chain) Excluded() []string { return append([]string(nil), c.excluded...) }

// A Failure is what one upstream of a Chain answered.
type Failure struct {
	Upstream string // the Source's String
	Err      error
}

// A ChainError reports that every upstream a Chain asked failed.
//
// Its class (Err, which Unwrap returns) is chosen so that the one answer
// the client gets is the most useful:
//   - if every upstream asked said "not found", the error matches
//     fs.ErrNotExist: an authoritative "no", so a client with its own
//     fallback (GOPROXY=modgate,direct) may move on;
//   - otherwise it is the most severe failure seen, as the go command
//     reports a list's most helpful error: an unclassified error (a bug or a
//     request no upstream can serve, which retrying elsewhere will not fix),
//     then ErrUnavailable (a definite fault: 5xx, refused connection), then
//     ErrTimeout (maybe only slowness); among equals the earliest, because
//     it comes from the upstream the operator prefers. With "a|b", a down
//     and b saying "not found" is therefore a failure, not a miss: the
//     module may well exist on a, and a miss would be remembered and let
//     clients route around modgate.
//
// Callers that must know whether any upstream failed for another reason
// than "not found" (for example before remembering a miss) can look at
// Failures.
type ChainError struct {
	Path     string
	Failures []Failure // in the order asked; at least two
	Err      error     // the decisive failure's error
}

func (e *ChainError) Error() string {
	return fmt.Sprintf("fetching %s: %s", e.Path, joinFailures(e.Failures))
}

func (e *ChainError) Unwrap() error { return e.Err }

// joinFailures joins the failures' messages with "; ". Every Source's
// errors name the source (see Source), so they are not prefixed again.
func joinFailures(failures []Failure) string {
	var b strings.Builder
	for i, f := range failures {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(f.Err.Error())
	}
	return b.String()
}

// decisive picks the error that classifies a ChainError (see there).
func decisive(failures []Failure) error {
	best, bestRank := failures[len(failures)-1].Err, -1
	for _, f := range failures {
		if r := severity(f.Err); r > bestRank {
			best, bestRank = f.Err, r
		}
	}
	return best
}

// severity ranks error classes for decisive.
func severity(err error) int {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return 0
	case errors.Is(err, ErrTimeout):
		return 1
	case errors.Is(err, ErrUnavailable):
		return 2
	default:
		return 3
	}
}
