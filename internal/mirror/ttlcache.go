package mirror

import (
	"strings"
	"sync"
	"time"
)

// ttlCache is a bounded in-memory map of values with the time they were
// stored. Freshness is decided by the caller, so one entry can be fresh for
// serving and still usable as a stale fallback. When full, put evicts an
// arbitrary entry: Go's map iteration order is random, which is a cheap
// approximation of random eviction and good enough for answers that are
// cheap to fetch again.
type ttlCache[V any] struct {
	mu  sync.Mutex
	max int
	now func() time.Time
	m   map[string]ttlEntry[V]
}

type ttlEntry[V any] struct {
	val    V
	stored time.Time
}

// newTTLCache returns a cache of at most max entries whose ages are
// measured with now.
func newTTLCache[V any](max int, now func() time.Time) *ttlCache[V] {
	return &ttlCache[V]{max: max, now: now, m: make(map[string]ttlEntry[V])}
}

// get returns the value for key if it was stored less than ttl ago.
func (c *ttlCache[V]) get(key string, ttl time.Duration) (V, bool) {
	v, stored, ok := c.lookup(key)
	if !ok || c.now().Sub(stored) >= ttl {
		var zero V
		return zero, false
	}
	return v, true
}

// lookup returns the value for key however old it is, and when it was stored.
func (c *ttlCache[V]) lookup(key string) (V, time.Time, bool) {
	c.mu.Lock()
	e, ok := c.m[key]
	c.mu.Unlock()
	return e.val, e.stored, ok
}

func (c *ttlCache[V]) put(key string, v V) {
	c.putAt(key, v, c.now())
}

func (c *ttlCache[V]) putAt(key string, v V, stored time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[key]; !ok && len(c.m) >= c.max {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[key] = ttlEntry[V]{val: v, stored: stored}
}

func (c *ttlCache[V]) remove(key string) {
	c.mu.Lock()
	delete(c.m, key)
	c.mu.Unlock()
}

// expirePrefix marks every entry whose key starts with prefix as expired
// without dropping it: the next request refreshes it, and a refresh that
// fails can still fall back to it.
func (c *ttlCache[V]) expirePrefix(prefix string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.m {
		if strings.HasPrefix(k, prefix) {
			e.stored = time.Time{}
			c.m[k] = e
		}
	}
}

// removePrefix drops every entry whose key starts with prefix.
func (c *ttlCache[V]) removePrefix(prefix string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.m {
		if strings.HasPrefix(k, prefix) {
			delete(c.m, k)
		}
	}
}
