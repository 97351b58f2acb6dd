package tombstone

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/modgate/modgate/internal/storage"
)

// Most stores never hold a tombstone, and then the listing of a module's
// tombstones on every request for one of its files (a failed open of a
// directory on a disk store) is a system call spent on a certain answer:
// on a cache hit it was the largest cost modgate added to serving the
// file. A Set that reads the store on every check (New) therefore first
// asks whether the store holds any tombstone at all, at most once every
// noneFresh, and lists a module's only when it does.
//
// That keeps the promise that a purge made by another process (the
// command line) is seen at the server's next request: Add waits
// 2 × noneFresh after writing a tombstone before it returns, so any
// "none at all" a server read before the tombstone existed has expired by
// the time the purge has finished. (The clocks compared are one machine's,
// which holds for a disk store; a Set of NewCached, for stores shared by
// several machines, does not use this and has its own freshness.) Once a
// store holds tombstones, checks list the module's on every request again,
// as they always did.

// noneFresh is how long "the store holds no tombstone" answers checks
// without asking again.
const noneFresh = time.Millisecond

// errFound stops the walk at the first tombstone.
var errFound = errors.New("found a tombstone")

// noneSeen is what a Set last learned about the store as a whole.
type noneSeen struct {
	at   time.Time // when the store was seen to hold no tombstone
	some bool      // the store held tombstones (then at is zero)
}

// none reports whether the store holds no tombstone at all, as seen within
// noneFresh. It is false whenever that is unknown.
func (s *Set) none(ctx context.Context) bool {
	if s.fresh > 0 {
		return false
	}
	w, ok := s.store.(storage.Walker)
	if !ok {
		return false
	}
	if seen := s.noneSeen.Load(); seen != nil {
		if seen.some {
			return false
		}
		if s.now().Sub(seen.at) < noneFresh {
			return true
		}
	}
	at := s.now()
	err := w.Walk(ctx, Prefix, func(string) error { return errFound })
	switch {
	case err == nil:
		s.noneSeen.Store(&noneSeen{at: at})
		return true
	case errors.Is(err, errFound):
		// Tombstones stay (Remove deletes one, and Purge with
		// AllowRefetch is rare): from now on, list per module.
		s.noneSeen.Store(&noneSeen{some: true})
	}
	return false
}

// tombstoneWritten makes this Set list per module from now on, and waits
// until no other process can still answer from a "none at all" read
// before the tombstone was written.
func (s *Set) tombstoneWritten() {
	s.noneSeen.Store(&noneSeen{some: true})
	if s.fresh <= 0 {
		s.sleep(2 * noneFresh)
	}
}

// noneState is embedded in Set.
type noneState struct {
	noneSeen atomic.Pointer[noneSeen]
}
