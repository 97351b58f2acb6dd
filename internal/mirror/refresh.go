package mirror

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
)

// Refresh forgets every mutable answer of module path (list, @latest,
// branch and commit queries) and the misses remembered for it, and asks the
// upstream for the version list at once. It returns the versions that were
// not in the list before, for the caller to Prefetch. It is what a webhook
// calls after a push: the new tag is visible to the next client without
// waiting for the list TTL.
//
// An answer that cannot be refreshed is kept as a stale fallback.
func (m *Mirror) Refresh(ctx context.Context, path string) ([]string, error) {
	escPath, err := module.EscapePath(path)
	if err != nil {
		return nil, fmt.Errorf("refreshing %s: %w", path, err)
	}
	listKey := escPath + "/@v/list"
	before, _ := m.readStored(ctx, listKey)
	if data, _, ok := m.mutable.lookup(listKey); ok {
		before = data
	}
	m.mutable.expirePrefix(escPath + "/@")
	m.misses.removePrefix(escPath + "/@")

	v, err, _ := m.flights.do(ctx, listKey, m.refreshFunc(listKey, func(ctx context.Context) ([]byte, error) {
		return m.refreshList(ctx, path, escPath, listKey)
	}))
	if err != nil {
		return nil, err
	}
	old := parseList(before)
	var added []string
	for _, ver := range parseList(v.([]byte)) {
		if !slices.Contains(old, ver) {
			added = append(added, ver)
		}
	}
	semver.Sort(added)
	return added, nil
}

// Prefetch fetches, verifies and stores the .info, .mod and .zip of
// path@version unless they are stored already.
func (m *Mirror) Prefetch(ctx context.Context, path, version string) error {
	escPath, err := module.EscapePath(path)
	if err != nil {
		return err
	}
	escVer, err := module.EscapeVersion(version)
	if err != nil {
		return err
	}
	for _, ext := range []string{".info", ".mod", ".zip"} {
		f, err := m.file(ctx, path, version, escPath+"/@v/"+escVer+ext, Options{}, 0)
		if err != nil {
			return fmt.Errorf("prefetching %s@%s: %w", path, version, err)
		}
		f.Body.Close()
	}
	return nil
}

// Recheck fetches the .mod and .zip of path@version from its upstream again
// and runs the Checker on them without storing anything. It is how a moved
// Git tag is noticed for a version that is already stored: the Checker
// (for private modules, the ledger of first-seen hashes) refuses the new
// content, and the stored files keep being served. A nil error means the
// upstream still serves what was verified before, or that the version is
// not covered by any Checker.
func (m *Mirror) Recheck(ctx context.Context, path, version string) error {
	if m.cfg.Checker == nil || !m.cfg.Checker.Covers(path) {
		return nil
	}
	escPath, err := module.EscapePath(path)
	if err != nil {
		return err
	}
	escVer, err := module.EscapeVersion(version)
	if err != nil {
		return err
	}
	key := escPath + "/@v/" + escVer
	src := m.source(path)

	resp, err := src.Fetch(ctx, key+".mod")
	if err != nil {
		return fmt.Errorf("rechecking %s@%s: %w", path, version, err)
	}
	data, err := readSmall(resp.Body, maxGoModSize, path+"@"+version+" go.mod")
	resp.Body.Close()
	if err != nil {
		return err
	}
	if err := m.cfg.Checker.CheckMod(ctx, path, version, data); err != nil {
		m.verificationFailed("mod")
		return verificationError(err)
	}

	resp, err = src.Fetch(ctx, key+".zip")
	if err != nil {
		return fmt.Errorf("rechecking %s@%s: %w", path, version, err)
	}
	defer resp.Body.Close()
	tmp, err := os.CreateTemp(m.cfg.ScratchDir, "recheck-*.zip")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = io.Copy(tmp, io.LimitReader(resp.Body, maxZipSize+1))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("rechecking %s@%s: reading zip: %w", path, version, err)
	}
	if err := m.cfg.Checker.CheckZip(ctx, path, version, tmp.Name()); err != nil {
		m.verificationFailed("zip")
		return verificationError(err)
	}
	return nil
}

func (m *Mirror) verificationFailed(artifact string) {
	if m.cfg.Observer != nil {
		m.cfg.Observer.VerificationFailed(artifact)
	}
}

// CheckFirst returns a Checker that hands each module to the first of
// checkers that covers it: the checksum database for public modules, the
// ledger of first-seen hashes for private ones. Nil checkers are skipped.
// It forwards Prefetch to checkers that implement it.
func CheckFirst(checkers ...Checker) Checker {
	var cs firstChecker
	for _, c := range checkers {
		if c != nil {
			cs = append(cs, c)
		}
	}
	return cs
}

type firstChecker []Checker

func (cs firstChecker) pick(path string) Checker {
	for _, c := range cs {
		if c.Covers(path) {
			return c
		}
	}
	return nil
}

func (cs firstChecker) Covers(path string) bool { return cs.pick(path) != nil }

func (cs firstChecker) CheckMod(ctx context.Context, path, version string, data []byte) error {
	if c := cs.pick(path); c != nil {
		return c.CheckMod(ctx, path, version, data)
	}
	return nil
}

func (cs firstChecker) CheckZip(ctx context.Context, path, version, zipPath string) error {
	if c := cs.pick(path); c != nil {
		return c.CheckZip(ctx, path, version, zipPath)
	}
	return nil
}

func (cs firstChecker) Prefetch(path, version string) {
	if p, ok := cs.pick(path).(prefetcher); ok {
		p.Prefetch(path, version)
	}
}
