// Package mirror is modgate's module service: it answers every GOPROXY
// request from storage when it can and fills storage from the upstreams when
// it must, verifying everything before it is stored.
//
// # Data flow
//
// Versioned files (.info, .mod, .zip of a canonical version) are immutable:
//
//	store hit  → serve
//	store miss → negative cache? → single-flight fill:
//	             upstream fetch → size cap → validate (.info JSON, zip layout)
//	             → checksum database (Checker) → store.Put (temp file, fsync, rename)
//	             → serve from the store
//
// A .mod request fetches only the go.mod: the go command reads hundreds of
// go.mod files it never builds, and fetching whole versions for them would
// multiply the bytes pulled from the upstream.
//
// Verification costs round trips the go command itself does not make when
// its go.sum is complete: a checksum database lookup and the tiles proving
// it. Two things hide that latency: the lookup starts as soon as the
// upstream has answered, overlapping the download of the body (Checkers
// that can, Prefetch; not before, or every package-path prefix the go
// command probes would cost a lookup), and a go.mod
// filled for a client queues the go.mod files of its requirements for
// background workers (prefetch.go), because the go command, which loads the
// module graph only GOMAXPROCS files at a time, asks for them next.
//
// Mutable answers (@v/list, @latest, .info of a non-canonical query) are kept
// in memory with a TTL (Config.Now is the clock). A fresh answer is served
// as is and refreshed in the background when it nears the end of its TTL;
// an expired one is refreshed in line; when every upstream fails the last
// answer is served stale (Result Stale) instead of an error. A refresh asks
// the upstream for its state as of now (upstream.WithFreshSince), so a Git
// source's cached refs do not add their age to ours: a new tag appears
// within ListTTL. Lists merge what the upstream says with every version
// already stored, so an upstream that forgets or hides a version does not
// hide it from our clients.
//
// The last answer of every mutable request, "not found" included, is also
// durable (answers.go): lists and @latest at their protocol paths, as a
// file:// GOPROXY expects, and a record under "answers/{key}" for query
// answers and misses, which have no place in the module tree. NegativeTTL
// decides how long a "not found" is trusted without asking again, not
// whether it is still known: with every upstream down, a restarted server
// answers a package-path probe with the 404 it got online (a StaleMiss),
// not a 502 that would fail `go get -u`.
//
// # Single flight
//
// Any number of concurrent requests for one uncached file cause one upstream
// fetch. The fetch runs detached from any one request and is cancelled only
// when every request waiting for it has gone, so a client that gives up does
// not fail the others, and an abandoned fill does not keep pulling bytes.
// Replicas sharing one Store extend this across processes with a Leaser
// (lease.go): the flight that holds the file's lease fills, the others wait
// for the lease to go and read the stored file.
//
// # Fill limits
//
// Each upstream fetch costs a connection, a file descriptor and goroutines,
// so fetches from the proxy upstreams take one of a bounded number of slots
// (limit.go), below single flight: one slot per file however many clients
// wait for it. Background work has a budget of its own and never
// takes a client's slot.
//
// # Failure cases
//
//   - upstream says "not found" (404/410/403): trusted for NegativeTTL,
//     answered as fs.ErrNotExist (404 to the client, which may fall through
//     to its next GOPROXY entry); for mutable answers, kept as the last
//     answer (above);
//   - upstream down or slow: upstream.ErrUnavailable / ErrTimeout, never
//     cached; mutable answers fall back to stale copies. An upstream
//     marked down by its upstream.Guard fails at once, so the stale copy is
//     served at once too; a refresh that is merely slow is waited for at
//     most RefreshWait when an older copy exists, and then finishes in the
//     background (stale.go);
//   - too many fills at once: a fetch from Upstream waits up to
//     FillQueueTimeout for one of MaxFills slots, then fails with ErrBusy
//     (503 with Retry-After; it also matches upstream.ErrUnavailable, so
//     mutable answers fall back to stale copies). See limit.go;
//   - verification failure (hash differs from the checksum database, invalid
//     zip, oversized file, .info for another version): ErrVerification,
//     logged, counted, never stored and never cached, so a repaired upstream
//     is served correctly on the next request.
//
// What this package does not do: parse HTTP (package goproxy), decide policy
// (later), or know how storage or upstreams work (interfaces).
package mirror
