// Package postgres keeps the state modgate's replicas share in a
// PostgreSQL database: the tables behind the small state interfaces that
// their consumer packages own, one file each here:
//
//	tokens.go    auth.TokenStore         tokens (read at every authentication)
//	ledger.go    ledger.Backend          first hashes of private module files
//	heads.go     sumdb.HeadStore         the verified checksum-database tree head (never backwards)
//	ages.go      policy.AgeStore         first-seen times for the cooldown rule
//	licenses.go  policy.LicenseStore     licence results
//	webhook.go   webhook.DeliveryStore   webhook deliveries seen (replays)
//	leases.go    mirror.Leaser           one replica fills each file
//	vulndb.go    vulndb.SharedCopy       one replica syncs the vulnerability database
//	notify.go    LISTEN/NOTIFY           policy reloads, webhooks, new vulnerability database copies
//
// Each is written so that the database, not the replica, decides races: a
// unique key and INSERT ... ON CONFLICT for first writers, compare-and-set
// in one statement for the tree head, transactions for what must change
// together, advisory locks for one-at-a-time work, and the database's clock
// for lease expiry.
//
// Each consumer's file implementation stays its default; this package is
// used only when state.postgres names a database. The schema is created
// and changed by embedded migrations (migrations/NNNN_name.sql) that
// Migrate applies, each in one transaction, under an advisory lock, so
// that any number of replicas starting at once apply each one exactly
// once. `modgate migrate` runs them on their own.
//
// The package does not own the module files (package storage) or the
// audit chain's tables (package audit keeps those, migrations
// 0100-0199); it does own the connection pool both use.
//
// Every error from an operation that could not reach the database
// matches ErrUnavailable; callers decide what degrades (see the README,
// "Shared state in PostgreSQL").
package postgres
