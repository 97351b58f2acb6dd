// Package state holds what the shared-state backends have in common and
// what other packages may classify without importing them: the sentinel
// of a state database that cannot be reached. The backends themselves live
// in its sub-packages (state/postgres); each consumer package owns the
// small interface it needs (auth.TokenStore, ledger.Backend,
// sumdb.HeadStore, policy.AgeStore, policy.LicenseStore,
// webhook.DeliveryStore, mirror.Leaser, vulndb.SharedCopy), with its file
// implementation as the default and a conformance suite both pass.
package state

import "errors"

// ErrUnavailable matches every error of an operation that could not reach
// the shared state's database (refused or dropped connections, a server
// shutting down): the operation may succeed once it is back. Clients get
// 503.
var ErrUnavailable = errors.New("shared state database unavailable")
