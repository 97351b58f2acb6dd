package storage

import (
	"strings"

	"golang.org/x/mod/module"
)

// Immutable reports whether the content stored under name can never
// change once written, so a store shared by several processes may keep the
// first copy and refuse to replace it (the S3 store writes such names with
// a conditional put), and a cache may keep it without asking again.
//
// The rule is by name:
//
//   - "{path}/@v/{version}.info", ".mod" and ".zip" where {version} is
//     the escaped form of a canonical semantic version (a release,
//     a pseudo-version, "+incompatible"): the checksum database fixes
//     their content (the .info carries the commit time, which does not
//     change either);
//   - "sumdb/{name}/lookup/..." and "sumdb/{name}/tile/...": lookups and
//     tiles (full or partial, whose width is part of the name) are signed
//     parts of an append-only log.
//
// Everything else is mutable and replaced by Put: version lists, @latest,
// query answers and remembered misses under "answers/", and the checksum
// database's "supported", "latest" and "fallback/..." files.
func Immutable(name string) bool {
	if strings.HasPrefix(name, "answers/") {
		// A remembered "not found" for a version is replaced once the
		// version appears.
		return false
	}
	if rest, ok := strings.CutPrefix(name, "sumdb/"); ok {
		_, rest, ok = strings.Cut(rest, "/")
		return ok && (strings.HasPrefix(rest, "lookup/") || strings.HasPrefix(rest, "tile/"))
	}
	_, file, ok := strings.Cut(name, "/@v/")
	if !ok || strings.Contains(file, "/") {
		return false
	}
	var esc string
	for _, ext := range []string{".info", ".mod", ".zip"} {
		if e, ok := strings.CutSuffix(file, ext); ok {
			esc = e
			break
		}
	}
	if esc == "" {
		return false
	}
	v, err := module.UnescapeVersion(esc)
	return err == nil && module.CanonicalVersion(v) == v
}
