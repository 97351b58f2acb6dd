// Package vulndb reads, keeps current and re-serves the Go vulnerability
// database, in OSV format, and answers one question fast: which known
// vulnerabilities affect module@version?
//
// # Data
//
// A database is a set of OSV entries (ID/GO-YYYY-NNNN.json) plus an index
// (index/db.json with the database's modification time, index/modules.json
// listing, per module, the entries affecting it). Open reads either that
// served layout or a flat directory of entries, such as the shared snapshot
// of the database's source repository, and rebuilds the index itself.
//
// Only affected[] items of ecosystem "Go" and ranges of type SEMVER are read.
// Versions in OSV are written without the "v" of Go module versions
// ("1.2.4", "0.0.0-20200124225646-8b5121be2f68", "2.0.0+incompatible");
// this package adds it and compares with golang.org/x/mod/semver, which
// orders pseudo-versions by their base version and timestamp and ignores
// "+incompatible" (build metadata). "stdlib" and "toolchain" are
// pseudo-modules for the standard library and the go command, with Go
// releases as versions (1.21.5).
//
// # Evaluation
//
// Each entry's ranges are compiled once into intervals [introduced, fixed)
// or [introduced, last_affected], per module, and a DB maps each module path
// to its entries, so a lookup is one map access plus a few semver
// comparisons, with no allocation when nothing is affected. An affected item
// with no ranges at all affects every version, as OSV specifies. Withdrawn
// entries affect nothing (they stay in the copy and its index: clients
// decide for themselves).
//
// The answer is per module version. Entries may narrow a vulnerability to
// some packages and symbols (affected[].ecosystem_specific.imports), which
// govulncheck uses to report only vulnerable code a program actually
// reaches. A module proxy serves whole modules and cannot know which
// packages a build imports, so a version is "affected" here as soon as it is
// in an entry's ranges; policy rules that block by vulnerability therefore
// block more than govulncheck would report, and their messages name the
// entry and its fixed version so users can upgrade or accept the risk.
//
// # Sync and the local copy
//
// A Syncer keeps a copy in a directory it owns (see disk.go for the layout).
// A sync from a URL fetches index/db.json and stops there when its
// "modified" is unchanged; otherwise it fetches index/modules.json and only
// the entries whose "modified" differs from the copy. A sync from a local
// directory reads it whole. Every file has a size bound and every entry is
// validated (id matches its name, versions are semver), then a complete new
// copy is written beside the old one, fsynced, and switched to with an
// atomic rename; only then does the in-memory DB change. A sync that fails
// at any point changes nothing, and after a restart the copy on disk
// answers without any network access.
//
// # Re-serving
//
// Syncer.Handler serves the copy in the same layout, with the ".json.gz"
// variants govulncheck requests, so `govulncheck -db <modgate URL>/<mount>`
// works in a closed network; the on-disk copy is also a valid file://
// database.
//
// This package does not decide anything: accepted-risk allow-lists, which
// rule blocks and what the user is told belong to package policy.
package vulndb
