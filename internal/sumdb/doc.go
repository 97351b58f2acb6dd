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
// change, so the Handler keeps them in memory only (plus a last-good copy
// in the Store for when the upstream is down). When one has expired and an
// older copy could answer, a request waits for the upstream at most
// HandlerConfig.RefreshWait, then gets the older copy marked stale while
// the fetch finishes in the background (wait.go): a hanging upstream costs
// a client seconds, not the fetch timeout per tile. The Verifier keeps the latest tree head it verified in a state
// directory, written atomically, so that a database that forks or rolls
// back is detected after a restart too, or, for replicas, in a HeadStore
// (headstore.go) that every replica advances by compare-and-set and none
// can move backwards (that is a security error: logged,
// reported to the OnSecurityEvent hook, and every check fails until an
// operator acts).
//
// That file can be lost (deleted by mistake or on purpose), and a Verifier
// without it trusts whatever signed tree the database serves next. Two
// cross-checks close that gap (heads.go). A HeadCopy (the server's audit
// log) receives every advance of the verified head, at most once per
// HeadInterval; when the state has no head, the Verifier resumes from the
// saved one, and the client then proves the database's current tree
// consistent with it, or reports the fork. A head adopted with no verified
// predecessor at all (no state, no copy) must also agree with the highest
// full tile of record hashes already in the Store. A disagreement, and a
// database that cannot prove its tree consistent with the recovered head,
// are security errors like the others.
//
// # What it does not do
//
// It does not decide which modules are private (the NoSumDB patterns come
// from configuration), does not record hashes of modules the database does
// not cover, and does not fetch module files: callers pass what they
// downloaded and store it only if the check passes.
package sumdb
