package mirror

import (
	"context"
	"io"
)

// A HitGuard checks a stored file before it is served from storage. It
// returns what to serve (body or an equivalent reader), or an error, in
// which case it has closed body and the file is not served; a corrupt
// file's error matches integrity.ErrCorrupt, and the guard has taken it
// out of the store, so the next request fills it again.
//
// Verified tells the guard that body, the stored file key, was just filled
// by this process: verified as it was stored, so its next hit needs no
// second hash.
type HitGuard interface {
	CheckHit(ctx context.Context, path, version, key string, body io.ReadCloser) (io.ReadCloser, error)
	Verified(key string, body io.Reader)
}

// Tombstones say which versions an operator purged (tombstone.Set). Check
// returns an error matching tombstone.ErrPurged for a purged version, whose
// text is the client's answer; CheckModule does for a module purged whole.
// Other errors (the store's) carry their own context.
// Filter returns whether each version of path is purged. Both read the
// shared store, so a purge by another process is seen at once.
type Tombstones interface {
	Check(ctx context.Context, path, version string) error
	CheckModule(ctx context.Context, path string) error
	Filter(ctx context.Context, path string) (func(version string) bool, error)
}

// purged refuses a purged version before anything is read or fetched:
// neither a stored copy nor an upstream's is served.
func (m *Mirror) purged(ctx context.Context, path, version string) error {
	if m.cfg.Tombstones == nil {
		return nil
	}
	return m.cfg.Tombstones.Check(ctx, path, version)
}

func (m *Mirror) guard(ctx context.Context, path, version, key string, body io.ReadCloser) (io.ReadCloser, error) {
	if m.cfg.Guard == nil {
		return body, nil
	}
	return m.cfg.Guard.CheckHit(ctx, path, version, key, body)
}

// dropPurged removes purged versions from a list answer. It filters the
// answer as it is served, not as it is stored, so every copy (memory,
// store, a stale one) loses them at once.
func (m *Mirror) dropPurged(ctx context.Context, path string, a *Answer, err error) (*Answer, error) {
	if err != nil || m.cfg.Tombstones == nil {
		return a, err
	}
	purged, err := m.cfg.Tombstones.Filter(ctx, path)
	if err != nil {
		return nil, err
	}
	b := *a
	b.Data = filterList(a.Data, purged)
	return &b, nil
}

// purgedModule refuses a latest or query request for a module purged
// whole, before the upstream is asked.
func (m *Mirror) purgedModule(ctx context.Context, path string) error {
	if m.cfg.Tombstones == nil {
		return nil
	}
	return m.cfg.Tombstones.CheckModule(ctx, path)
}

// refusePurged turns a latest or query answer naming a purged version into
// the purge's error.
func (m *Mirror) refusePurged(ctx context.Context, path string, a *Answer, err error) (*Answer, error) {
	if err != nil || m.cfg.Tombstones == nil {
		return a, err
	}
	in, perr := parseInfo(a.Data)
	if perr != nil {
		return a, nil
	}
	if err := m.purged(ctx, path, in.Version); err != nil {
		return nil, err
	}
	return a, nil
}

// filterList returns a list answer without the purged versions.
func filterList(data []byte, purged func(string) bool) []byte {
	vs := parseList(data)
	kept := vs[:0]
	for _, v := range vs {
		if !purged(v) {
			kept = append(kept, v)
		}
	}
	return formatList(kept)
}
