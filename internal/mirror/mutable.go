package mirror

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"

	"github.com/modgate/modgate/internal/storage"
	"github.com/modgate/modgate/internal/upstream"
)

// backgroundRefreshTimeout bounds a refresh no request is waiting for.
const backgroundRefreshTimeout = 2 * time.Minute

// List returns the @v/list answer for module path, whose escaped form is
// escPath: the union of the upstream's versions and every version stored.
func (m *Mirror) List(ctx context.Context, path, escPath string, opts Options) (*Answer, error) {
	key := escPath + "/@v/list"
	a, err := m.mutableAnswer(ctx, key, true, opts, func(ctx context.Context) ([]byte, error) {
		return m.refreshList(ctx, path, escPath, key)
	})
	return m.dropPurged(ctx, path, a, err)
}

// Latest returns the @latest answer for module path.
func (m *Mirror) Latest(ctx context.Context, path, escPath string, opts Options) (*Answer, error) {
	key := escPath + "/@latest"
	if err := m.purgedModule(ctx, path); err != nil {
		return nil, err
	}
	a, err := m.mutableAnswer(ctx, key, true, opts, func(ctx context.Context) ([]byte, error) {
		return m.refreshInfo(ctx, path, key, true)
	})
	return m.refusePurged(ctx, path, a, err)
}

// Query returns the .info answer for a non-canonical version query (a
// branch, a commit, a release known as +incompatible). key is the escaped
// request path. Query answers are never stored at their protocol path (it
// would read as a version's .info), only as the last answer (see record).
func (m *Mirror) Query(ctx context.Context, path, key string, opts Options) (*Answer, error) {
	if err := m.purgedModule(ctx, path); err != nil {
		return nil, err
	}
	a, err := m.mutableAnswer(ctx, key, false, opts, func(ctx context.Context) ([]byte, error) {
		data, err := m.refreshInfo(ctx, path, key, false)
		if err != nil {
			return nil, err
		}
		return data, checkQueryAnswer(key, data)
	})
	return m.refusePurged(ctx, path, a, err)
}

// checkQueryAnswer refuses an upstream's answer to an exact-version query
// that names another version. A query for a canonical version that is not
// valid for the path (v28.5.2 of a module without a go.mod) may only
// resolve to itself with "+incompatible"; anything else would let an
// upstream hand out a version the client did not ask for. (The go command
// checks this itself only for versions valid for the path.)
func checkQueryAnswer(key string, data []byte) error {
	esc, ok := strings.CutSuffix(key[strings.LastIndex(key, "/@v/")+len("/@v/"):], ".info")
	if !ok {
		return nil
	}
	query, err := module.UnescapeVersion(esc)
	if err != nil || module.CanonicalVersion(query) != query {
		return nil // a branch, a commit, a prefix: any version may answer
	}
	in, _ := parseInfo(data) // refreshInfo has parsed it already
	if in.Version == query || (semver.Build(query) == "" && in.Version == query+"+incompatible") {
		return nil
	}
	return fmt.Errorf("%w: %s: the upstream resolved the exact version %s to %s", ErrVerification, key, query, in.Version)
}

// mutableAnswer implements the freshness rules of doc.go for one key.
// persist says whether the answer is also kept at its protocol path.
func (m *Mirror) mutableAnswer(ctx context.Context, key string, persist bool, opts Options, refresh func(context.Context) ([]byte, error)) (*Answer, error) {
	ttl := m.cfg.ListTTL
	if data, stored, ok := m.mutable.lookup(key); ok {
		age := m.cfg.Now().Sub(stored)
		if opts.NoFetch || age < ttl {
			if !opts.NoFetch && age > ttl*3/4 {
				m.refreshInBackground(key, refresh)
			}
			return &Answer{Data: data, Result: Hit, Fetched: stored}, nil
		}
	}
	if opts.NoFetch {
		if data, miss, ok := m.lastAnswer(ctx, key, persist); ok {
			if miss != nil {
				return nil, miss
			}
			return &Answer{Data: data, Result: Hit}, nil
		}
		return nil, fmt.Errorf("%s is not cached and Disable-Module-Fetch is set: %w", key, fs.ErrNotExist)
	}
	if err, ok := m.misses.get(key, m.cfg.NegativeTTL); ok {
		return nil, err
	}
	var src string
	v, err := m.awaitRefresh(withSource(ctx, &src), key, persist, refresh) // stale.go
	if err == nil {
		data, stored, _ := m.mutable.lookup(key)
		if data == nil {
			data = v.([]byte)
		}
		return &Answer{Data: data, Result: Miss, Fetched: stored, Upstream: src}, nil
	}
	if isUpstreamFailure(err) {
		// The last answer, whatever it was, is better than a 502: the
		// negative TTL decides when to ask again, not whether a "not
		// found" is still known.
		if data, miss, ok := m.lastAnswer(ctx, key, persist); ok {
			if miss != nil {
				return nil, &StaleMiss{Err: miss, Cause: err}
			}
			_, stored, _ := m.mutable.lookup(key)
			return &Answer{Data: data, Result: Stale, Fetched: stored}, nil
		}
	}
	return nil, err
}

// refreshFunc wraps refresh so that its answer, a "not found" included, is
// remembered in memory and in the store (see record).
func (m *Mirror) refreshFunc(key string, refresh func(context.Context) ([]byte, error)) func(context.Context) (any, error) {
	return func(ctx context.Context) (any, error) {
		// The answer will be fresh for ListTTL from now, so the upstream
		// must not build it from older state it cached itself (a Git
		// source's refs): a new tag appears within ListTTL. Wall-clock
		// time, as the sources date their caches with it.
		ctx = upstream.WithFreshSince(ctx, time.Now())
		data, err := refresh(ctx)
		if err != nil {
			if isMiss(err) {
				m.misses.put(key, err)
				m.mutable.remove(key)
				m.remember(ctx, key, persistsAtPath(key), nil, err)
			}
			return nil, err
		}
		m.mutable.put(key, data)
		m.misses.remove(key)
		m.remember(ctx, key, persistsAtPath(key), data, nil)
		return data, nil
	}
}

// refreshInBackground refreshes an answer that is still fresh but near the
// end of its TTL, so popular answers never expire in front of a client.
func (m *Mirror) refreshInBackground(key string, refresh func(context.Context) ([]byte, error)) {
	if m.baseCtx.Err() != nil {
		return
	}
	// Claimed before the goroutine starts, so a burst of requests in the
	// refresh window starts one refresh, not one each.
	if _, busy := m.refreshing.LoadOrStore(key, true); busy {
		return
	}
	m.bg.Add(1)
	go func() {
		defer m.bg.Done()
		defer m.refreshing.Delete(key)
		ctx, cancel := context.WithTimeout(asBackground(m.baseCtx), backgroundRefreshTimeout)
		defer cancel()
		if _, err, _ := m.flights.do(ctx, key, m.refreshFunc(key, refresh)); err != nil {
			m.log.Warn("background refresh failed", "key", key, "err", err)
		}
	}()
}

func (m *Mirror) readStored(ctx context.Context, key string) ([]byte, error) {
	rc, err := m.cfg.Store.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, maxListSize))
}

// refreshList asks the upstream for the version list and merges it with
// every version already known. An upstream "not found" still answers with
// the versions we have: a module's files do not vanish because an upstream
// forgot them or refuses to list them.
func (m *Mirror) refreshList(ctx context.Context, path, escPath, key string) ([]byte, error) {
	var upVersions []string
	resp, fetchErr := m.source(path).Fetch(ctx, key)
	if fetchErr == nil {
		noteSource(ctx, resp.Upstream)
	}
	if fetchErr != nil {
		if !errors.Is(fetchErr, fs.ErrNotExist) {
			return nil, fmt.Errorf("listing %s: %w", path, fetchErr)
		}
	} else {
		data, err := readSmall(resp.Body, maxListSize, path+" version list")
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		upVersions = parseList(data)
		if m.cfg.OnList != nil {
			m.cfg.OnList(path, upVersions)
		}
	}
	prev, prevErr := m.readStored(ctx, key)
	known := append(parseList(prev), m.storedVersions(ctx, escPath)...)
	merged := mergeVersions(upVersions, known)
	if fetchErr != nil && len(merged) == 0 {
		return nil, fmt.Errorf("listing %s: %w", path, fetchErr)
	}
	data := formatList(merged)
	// An empty list is an answer too (a module with only pseudo-versions),
	// and must be there for an offline restart.
	if prevErr != nil || !bytes.Equal(data, prev) {
		if err := m.cfg.Store.Put(ctx, key, bytes.NewReader(data)); err != nil {
			// Serving the fresh list matters more than persisting it.
			m.log.Warn("storing version list failed", "module", path, "err", err)
		}
	}
	return data, nil
}

// storedVersions returns the release versions that have a stored .info or
// .mod file, when the store can list.
func (m *Mirror) storedVersions(ctx context.Context, escPath string) []string {
	l, ok := m.cfg.Store.(storage.Lister)
	if !ok {
		return nil
	}
	names, err := l.List(ctx, escPath+"/@v/")
	if err != nil {
		m.log.Warn("listing stored versions failed", "module", escPath, "err", err)
		return nil
	}
	var vs []string
	for _, name := range names {
		esc, ok := strings.CutSuffix(name, ".info")
		if !ok {
			esc, ok = strings.CutSuffix(name, ".mod")
		}
		if !ok {
			continue
		}
		if v, err := module.UnescapeVersion(esc); err == nil && !module.IsPseudoVersion(v) {
			vs = append(vs, v)
		}
	}
	return vs
}

// refreshInfo fetches a .info-shaped answer (@latest or a query) and checks
// that it names a valid canonical version of path.
func (m *Mirror) refreshInfo(ctx context.Context, path, key string, persist bool) ([]byte, error) {
	resp, err := m.source(path).Fetch(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("resolving %s: %w", key, err)
	}
	defer resp.Body.Close()
	noteSource(ctx, resp.Upstream)
	data, err := readSmall(resp.Body, maxInfoSize, key)
	if err != nil {
		return nil, err
	}
	in, err := parseInfo(data)
	if err == nil && module.CanonicalVersion(in.Version) != in.Version {
		err = fmt.Errorf("version %q is not canonical", in.Version)
	}
	if err == nil {
		err = module.Check(path, in.Version)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s from %s: %v", ErrVerification, key, resp.Upstream, err)
	}
	if persist {
		if err := m.cfg.Store.Put(ctx, key, bytes.NewReader(data)); err != nil {
			m.log.Warn("storing answer failed", "key", key, "err", err)
		}
	}
	return data, nil
}

// parseList returns the valid semantic versions of a list answer, one per
// line, ignoring anything after the first field (as the go command does).
func parseList(data []byte) []string {
	var vs []string
	for line := range strings.SplitSeq(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 0 && semver.IsValid(f[0]) {
			vs = append(vs, f[0])
		}
	}
	return vs
}

func mergeVersions(lists ...[]string) []string {
	seen := make(map[string]bool)
	var out []string
	for _, l := range lists {
		for _, v := range l {
			if !seen[v] {
				seen[v] = true
				out = append(out, v)
			}
		}
	}
	semver.Sort(out)
	return out
}

func formatList(vs []string) []byte {
	var b bytes.Buffer
	for _, v := range vs {
		b.WriteString(v)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func isUpstreamFailure(err error) bool {
	return errors.Is(err, upstream.ErrUnavailable) || errors.Is(err, upstream.ErrTimeout)
}

// sourceKey carries, in a refresh's context, where to note the upstream
// that answered, for Answer.Upstream. Only the request that started a
// flight learns it; requests that joined see "".
type sourceKey struct{}

func withSource(ctx context.Context, dst *string) context.Context {
	return context.WithValue(ctx, sourceKey{}, dst)
}

func noteSource(ctx context.Context, name string) {
	if dst, ok := ctx.Value(sourceKey{}).(*string); ok {
		*dst = name
	}
}
