// Package integrity checks module files that are already stored: the .mod
// and .zip of every version, against the hash the checksum database
// publishes for them or, for private modules, the hash the ledger recorded
// when modgate first served them.
//
// Everything that reaches the store was verified before it was stored
// (package mirror), but a disk flips bits, an operator copies a tree by
// hand, a backup is restored from a bad medium. Without a check after the
// fact, a corrupt zip or go.mod is served as a cache hit, and a client
// that skips the checksum database (GONOSUMDB: every client of a private
// module) builds with it.
//
// The package has three users:
//
//   - Checker.Run walks the whole store (storage.Walker) for `modgate
//     verify` and the background scrub (Scrub): it re-hashes every file,
//     reports it OK, corrupt, missing (the ledger says modgate served it,
//     the store no longer has it) or unverifiable (no hash to compare
//     with: the database cannot be reached, or it and the ledger know
//     nothing of the version), and on request quarantines what is bad
//     and fetches it again through a repair function the caller gives
//     (the mirror's own fill path, which verifies what it stores).
//   - Guard checks a file on the serve path, the first time this process
//     serves it (see guard.go for exactly what is checked on which hit).
//   - Quarantine moves a bad file aside, never deleting it.
//
// Quarantined files keep their key under the prefix "quarantine/", a first
// path element without a dot, which never collides with a module path, and
// lives in the store itself so that replicas sharing a store share it too.
//
// Expected hashes come from Sources, tried in order (the first that
// covers a path answers): the checksum-database verifier (its Expected
// method uses the lookups and tiles cached in the store, going online only
// for what is not there) and the ledger (LedgerSource). The package does
// not fetch module files itself and does not decide where repairs come
// from.
package integrity
