package sumdb

import (
	"context"
	"fmt"
	"strings"

	"golang.org/x/mod/module"
)

// Expected returns the database's h1: hashes of path@version's go.mod and
// zip, for checking a file that is already stored (modgate verify, the
// background scrub, the serve path). It makes one lookup, answered from the
// Store's cached lookup and tiles when they are there and from the database
// otherwise, authenticated either way. Unlike CheckMod and CheckZip it
// reports nothing as a security event: a stored file that differs is
// corruption of the store, not an upstream's attack, and the caller decides.
//
// Either hash is "" when the record has no line for it. Errors match
// ErrNotInDB, ErrSecurity, upstream.ErrUnavailable or upstream.ErrTimeout,
// or are ctx's; a path the Verifier does not cover is an error too.
func (v *Verifier) Expected(ctx context.Context, path, version string) (mod, zip string, err error) {
	if !v.Covers(path) {
		return "", "", fmt.Errorf("%s: not covered by checksum database %s", path, v.db.Name)
	}
	if err := module.Check(path, version); err != nil {
		return "", "", fmt.Errorf("looking up %s@%s in checksum database %s: %w", path, version, v.db.Name, err)
	}
	// The client answers a lookup with the lines of the file asked for
	// only; the record behind both is fetched (or read) once.
	zipC, modC := v.startLookup(path, version), v.startLookup(path, version+"/go.mod")
	for _, c := range []<-chan lookupResult{zipC, modC} {
		var res lookupResult
		select {
		case res = <-c:
		case <-ctx.Done():
			return "", "", fmt.Errorf("%s@%s: waiting for checksum database %s: %w", path, version, v.db.Name, ctx.Err())
		}
		if res.err != nil {
			return "", "", res.err
		}
		for _, line := range res.lines {
			f := strings.Fields(line)
			if len(f) != 3 || f[0] != path || !strings.HasPrefix(f[2], "h1:") {
				continue
			}
			switch f[1] {
			case version:
				zip = f[2]
			case version + "/go.mod":
				mod = f[2]
			}
		}
	}
	if mod == "" && zip == "" {
		return "", "", &classError{
			msg:   fmt.Sprintf("%s@%s: no hash in checksum database %s", path, version, v.db.Name),
			class: ErrNotInDB,
		}
	}
	return mod, zip, nil
}
