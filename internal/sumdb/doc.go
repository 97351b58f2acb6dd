// Package sumdb connects modgate to a Go checksum database. It has two jobs:
//
//   - A Verifier checks every .mod and .zip modgate downloads for a public
//     module against the database before it is stored (CheckMod, CheckZip),
//     so a tampered upstream can never poison the cache.
//   - A Handler proxies /sumdb/{name}/... for clients, so the go command can
//     reach the database through modgate (it asks
//     {GOPROXY}/sumdb/{name}/supported first).
//
// ParseGOSUMDB reads the database the way the go command reads GOSUMDB.
//
// # Shared cache
//
// Both halves keep what never changes in the Store under the database's
// protocol paths: lookups under "sumdb/{name}/lookup/{path}@{version}" and
// full tiles under "sumdb/{name}/tile/...". Those are exactly the cache file
// names golang.org/x/mod/sumdb.Client uses ("{name}/lookup/...",
// "{name}/tile/...") with "sumdb/" in front, so a lookup the Verifier made is
// served to clients from the Store, and a tile a client fetched through the
// Handler saves the Verifier a fetch. The Handler stores what the upstream
// sent without checking signatures; the Verifier's client authenticates
// everything it reads from the cache, and when something there does not
// verify, the Verifier asks the database once more without the cache and
// overwrites the entry with verified data.
//
// The Verifier also stores the partial tiles it verified under their
// protocol paths, and the tiles proving each lookup in the lookup's own
// tree, and both halves write "sumdb/{name}/supported", so that
// the disk store's tree is a complete file:// GOPROXY, database included
// (see filelayout.go). The latest tree head and unverified partial tiles
// change, so the Handler keeps them in memory only. The Verifier keeps the latest tree head it verified in a state
// directory, written atomically, so that a database that forks or rolls
// back is detected after a restart too (that is a security error: logged,
// reported to the OnSecurityEvent hook, and every check fails until an
// operator acts).
//
// # What it does not do
//
// It does not decide which modules are private (the NoSumDB patterns come
// from configuration), does not record hashes of modules the database does
// not cover, and does not fetch module files: callers pass what they
// downloaded and store it only if the check passes.
package sumdb
