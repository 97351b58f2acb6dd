// Command modgate is a private Go module proxy: it caches public modules,
// verifies every file it stores against the checksum database, serves
// private modules from Git servers, applies a policy, controls access and
// keeps a tamper-evident audit log, and serves all of it to the go command
// over the GOPROXY protocol.
//
// Usage:
//
//	modgate serve [flags]                run the proxy
//	modgate explain MODULE[@VERSION]     say which upstreams, checksum database and policy apply to a module, and why
//	modgate check [go.mod|go.sum|DIR]    evaluate a build list against the policy, offline; exit 1 if anything is blocked
//	modgate prefetch [go.mod|go.sum|DIR|MODULE@VERSION ...]   fill modgate with a project's module graph
//	modgate export --key FILE -o BUNDLE [...]   write a signed bundle for an air-gapped site
//	modgate import --public-key FILE BUNDLE     check a bundle whole, then store it
//	modgate import --gomodcache DIR             seed from a module cache, verified against the checksum database
//	modgate token create|list|revoke     manage access tokens
//	modgate audit verify|query           check the audit log's hash chain, or search it
//	modgate source test NAME [MODULE]    check a private Git source
//	modgate verify [--repair]            re-hash every stored .mod and .zip; exit 1 on any problem
//	modgate purge MODULE[@VERSION]       remove a stored version and refuse to fetch it again
//	modgate migrate                      apply the shared state's PostgreSQL schema migrations
//	modgate import-data --from DIR       copy a single modgate's data directory into a cluster's S3 bucket and PostgreSQL
//	modgate version                      print the version
//	modgate help                         print this text
//
// # serve
//
// With no flags and no configuration file, modgate serve listens on
// 127.0.0.1:3000, keeps its data in the per-user data directory
// ($XDG_DATA_HOME/modgate or ~/.local/share/modgate), and takes its upstreams
// and checksum database from `go env GOPROXY` and `go env GOSUMDB`.
//
//	-config FILE      YAML configuration file (also MODGATE_CONFIG)
//	-listen ADDR      listen address, host:port (also MODGATE_LISTEN)
//	-data-dir DIR     data directory (also MODGATE_DATA_DIR)
//	-log-level LEVEL  debug, info, warn or error (also MODGATE_LOG_LEVEL)
//	-log-format FMT   text or json (also MODGATE_LOG_FORMAT)
//	-print-config     print the effective configuration, with where each value came from, and exit
//
// Flags override environment variables, which override the file, which
// overrides the built-in defaults. Example:
//
//	modgate serve -listen :8080 -data-dir /var/lib/modgate
//	export GOPROXY=http://localhost:8080
//
// The policy section of the configuration file is reloaded when the file
// changes or on SIGHUP; an invalid policy is refused and the previous one
// stays in force.
//
// # explain
//
//	modgate explain [-config FILE] golang.org/x/mod@v0.42.0
//
// prints the storage location, the upstreams asked in order (or the private
// Git source), whether the checksum database verifies the module (or which
// pattern excludes it), and the policy rules.
//
//	modgate explain --identity htpasswd:alice [MODULE]
//	modgate explain --identity ldap:alice --groups developers,staff [MODULE]
//	modgate explain --identity oidc --claims @claims.json [MODULE]
//
// prints which scopes an htpasswd user, an LDAP user with the given
// directory groups, or an OIDC token with the given claims (its decoded
// payload, unverified) gets, from which group or claim rule, and, given a
// MODULE, whether that identity may read it. It contacts nothing: no
// directory, no issuer, no password.
//
// # check
//
//	modgate check [--policy FILE] [--vulndb DIR] [--json] [go.mod|go.sum|DIR]
//
// evaluates every module of the build list (from go.sum, else go.mod)
// against the policy in FILE (a modgate configuration file), offline:
// vulnerabilities from the local database copy DIR, licences from the zips in
// the module cache, pseudo-versions mapped to the tags at their commit through
// the tags' .info files in the module cache. It prints a table (module, version, verdict, rule,
// reason, fix) or JSON and exits 1 when anything is blocked: a CI gate.
//
//	modgate check --policy /etc/modgate.yaml --vulndb /var/lib/modgate/vulndb .
//
// # prefetch
//
//	modgate prefetch [--server URL | --config FILE --data-dir DIR] [-j N] [-all] [--json] [go.mod|go.sum|DIR|MODULE@VERSION ...]
//
// resolves the module graph the go command would load for each go.mod
// (graph pruning of go 1.17 and later, the main module's replace and
// exclude), every version of each go.sum, or MODULE@VERSION (a version or
// a query such as latest) as a main module, and makes modgate store the
// go.mod of every version the graph visits and the .info, .mod and .zip of
// every module in the build list. A directory (default ".") means every
// go.mod and go.sum below it; -all fetches every listed version of each
// named MODULE instead.
//
//	-server URL   a running modgate: its policy, access control and audit apply;
//	              the token comes from MODGATE_TOKEN, else the .netrc entry for its host
//	-config FILE, -data-dir DIR
//	              without -server: build modgate in-process from this
//	              configuration, as serve does, and fill its data directory
//	              (one no running modgate serves: its audit log has one writer)
//	-j N          files requested at once (default 8)
//	-all          every listed version of the named modules
//	-json         print the summary as JSON
//
// It shows a progress bar (files, bytes, rate, ETA) on a terminal and one
// line per file otherwise, then a summary: fetched, already cached, refused
// (with modgate's answer, which names the rule) and failed. Exit status 1
// when anything was refused or failed. Running it again is cheap and
// finishes an interrupted run.
//
//	modgate prefetch --server https://modgate.corp.example ./...
//
// # export
//
//	modgate export --generate-key FILE
//	modgate export --key FILE -o BUNDLE [--config FILE] [--data-dir DIR] [--since MANIFEST] [--all | go.mod|go.sum|DIR|PATTERN ...]
//
// writes BUNDLE, a tar file for an air-gapped site: the module files of the
// selection under their GOPROXY paths (modules/...), the checksum-database
// lookups of those versions and every stored tile (modules/sumdb/...), the
// vulnerability database copy (vulndb/...), and last a manifest of every
// file's SHA-256 and go.sum hash signed with the ed25519 key in FILE (a
// golang.org/x/mod/sumdb/note signing key; --generate-key writes one, and
// FILE.pub for the importing site). The manifest is also written to
// BUNDLE.manifest. The selection is the module graph of each go.mod, the
// versions of each go.sum, stored modules matching a PATTERN
// (example.com/corp/... or a path.Match pattern), or --all; --since leaves
// out what a previous bundle (its .manifest or the bundle) carried with the
// same bytes. Files the selection needs that are not stored are listed and
// nothing is written (exit 1).
//
//	modgate export --key /etc/modgate/bundle.key -o week2.tar --since week1.tar.manifest --all
//
// # import
//
//	modgate import --public-key FILE [--config FILE] [--data-dir DIR] BUNDLE
//	modgate import --gomodcache DIR [--tiles BUNDLE] [--config FILE] [--data-dir DIR]
//
// checks the bundle whole before storing anything: the manifest's signature
// against the public key in FILE, every file's bytes and go.sum hash
// against the manifest, nothing missing and nothing extra, and every .mod
// and .zip with a lookup in the bundle against the checksum database of
// sumdb.gosumdb, offline, with the bundle's tiles. One altered byte refuses
// the whole bundle, naming the file (exit 1). Files already stored are kept.
//
// --gomodcache seeds the store from a module cache's cache/download
// directory: every .mod and .zip is verified against the checksum database
// (online through the configured upstream, or offline through the lookups
// and tiles of --tiles BUNDLE) and stored with the lookups and tiles that
// prove it; what the database does not vouch for is reported and not
// stored (exit 1), and modules matching sumdb.nosumdb are skipped.
//
//	modgate import --public-key /etc/modgate/siteA.pub /media/usb/week2.tar
//
// # token
//
//	modgate token create --name ci --scope read:corp.example.com/* [--expires 90d]
//	modgate token list
//	modgate token revoke ci
//
// Scopes are read:PATTERN, publish:PATTERN, admin, and metrics (reading
// /metrics only, for Prometheus). create prints the token once; it is
// stored only as a hash in
// {data_dir}/auth, or in the shared PostgreSQL database when the
// configuration sets state.postgres. Use it as the password in .netrc or
// through GOAUTH. Every running server sees every change at its next
// request. Each subcommand
// takes --config FILE and --data-dir DIR.
//
// # audit
//
//	modgate audit verify [--config FILE] [--data-dir DIR] [--dir DIR] [--public-key FILE] [--checkpoints FILE] [--as-of T]
//	modgate audit query [--config FILE] [--data-dir DIR] [--since 24h] [--until T] [--identity X] [--module PATTERN] [--result R] [--json]
//
// verify recomputes the hash chain and checks the signed checkpoints: it
// prints "ok: ..." and exits 0, or names the file, line and record that was
// edited, deleted, reordered or cut off and exits 1. A log whose end a
// running server would have signed by now (records more than
// audit.checkpoint_interval after the last checkpoint, or a last
// checkpoint that is old and not the final one of a clean shutdown) counts
// as cut off; --as-of T judges a copy as of when it was taken.
// --checkpoints FILE (default audit.anchor_file) also checks the log
// against an outside copy of the checkpoints and names the first record
// that disagrees; --public-key FILE takes the key from outside the data
// directory. query prints the matching records as a table or JSON lines.
// When the configuration sets state.postgres (and --dir is not given), both
// read the replicas' shared chain from PostgreSQL: verify lists the
// replicas that wrote records and names a changed or deleted row by its seq
// and replica, and query adds a REPLICA column.
//
//	modgate audit verify --checkpoints /mnt/anchor/checkpoints --public-key /etc/modgate/audit.key.pub
//
// # source
//
//	modgate source test [--config FILE] corp corp.example.com/platform/auth
//
// checks a private source: where the repository is, whether the Git server
// answers and accepts modgate's credentials, and what it lists. Exit status
// 1 when a check fails.
//
// # verify
//
//	modgate verify [--config FILE] [--data-dir DIR] [--quarantine] [--repair] [--json]
//
// re-hashes every stored .mod and .zip and compares it with the checksum
// database (its lookups cached in the store; missing ones are fetched) or,
// for private modules, the hash the ledger recorded. It prints a table
// (status, module, version, file, reason, action) and a summary with the
// rate in files/s, or JSON, and exits 1 when a corrupt, missing or
// unverifiable file remains. --quarantine moves corrupt files to
// quarantine/ in the store; --repair also fetches corrupt and missing files
// again through the mirror's verifying fill. Safe while the server runs.
//
//	modgate verify --repair --data-dir /var/lib/modgate
//
// # purge
//
//	modgate purge [--config FILE] [--data-dir DIR] [--reason TEXT] [--allow-refetch] [--json] MODULE[@VERSION]
//
// removes the stored files of a version (or of every version of a module)
// and leaves a tombstone in the store: the version answers 410 "purged by
// operator" and is never fetched again; lists, @latest and queries leave
// it out. Tombstones ignore the case of the module path; a version
// tombstone covers that exact version (purge a pseudo-version by name, or
// the whole module). --allow-refetch removes the files without a tombstone
// and lifts an existing one. A running server sees the purge at its next
// request. The admin API does the same with an audit record:
//
//	modgate purge --reason "legal takedown T-123" example.com/lib@v1.4.2
//	curl -X DELETE -H "Authorization: Bearer $ADMIN" "https://modgate.corp/admin/modules/example.com/lib@v1.4.2?reason=T-123"
//
// # migrate
//
//	MODGATE_POSTGRES_DSN=postgres://modgate:PW@db:5432/modgate modgate migrate --config /etc/modgate.yaml
//
// applies the schema migrations the shared state's PostgreSQL database
// (state.postgres.dsn_env or dsn_file) lacks, printing each one ("applied
// 0001_fill_leases.sql"), or "schema up to date". serve applies them at
// start as well; replicas starting at once apply each migration once.
// Exit status 1 when the database cannot be reached or a migration fails.
//
//	modgate migrate --config /etc/modgate.yaml --import /var/lib/modgate
//
// then copies a single modgate's state (tokens, the private-module ledger,
// verified tree heads, first-seen times, licence results) into the
// database; what the database holds already wins, and a ledger hash that
// contradicts it is reported (exit 1). Running it again adds nothing.
//
// # import-data
//
//	modgate import-data --config /etc/modgate-cluster.yaml --from /var/lib/modgate
//
// copies the data directory of a single modgate (stopped) into the shared
// stores of a cluster: module files into the S3 bucket, and the state into
// PostgreSQL (migrated first) as migrate --import does. Nothing there is
// replaced: the same content is skipped, so it can be run again; other
// content is reported as a conflict (exit status 1). The audit log stays in
// the directory.
//
// Planned subcommand (publish) arrives in a later release; modgate says so
// when asked for it.
//
// Exit status: 0 on success, 1 when serving failed (or a check found
// something), 2 for usage or configuration errors.
package main

import (
	"os"

	"github.com/modgate/modgate/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
