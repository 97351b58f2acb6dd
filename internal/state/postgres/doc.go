// Package postgres keeps the state modgate's replicas share in a
// PostgreSQL database: the tables behind the small state interfaces that
// their consumer packages own (auth's tokens, the private-module ledger,
// the cooldown rule's first-seen times, licence results, the checksum
// database's verified tree head, webhook delivery IDs), leases on fills,
// and the notifications that tell every replica about a change made
// through one of them.
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
