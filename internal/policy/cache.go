package policy

import (
	"sync"
	"time"
)

// Vulnerability lookups are cached per module@version for a short time:
// the same version is decided for its list, .info, .mod and .zip within
// seconds, and Filter decides every version of a list at once. The TTL
// bounds how long a database sync takes to show.
const (
	lookupCacheSize = 8192
	lookupTTL       = time.Minute
)

// A lookupCache remembers vulnerability answers for a bounded number of
// module versions. When full it starts over empty: the cache only saves
// work, so losing entries costs one lookup each, and starting over keeps
// an insert O(1) where scanning for the oldest entry would not be.
type lookupCache struct {
	max int
	ttl time.Duration

	mu      sync.Mutex
	entries map[string]lookupEntry
}

type lookupEntry struct {
	vulns   []Vuln
	expires time.Time
}

func newLookupCache(max int, ttl time.Duration) *lookupCache {
	return &lookupCache{max: max, ttl: ttl, entries: make(map[string]lookupEntry)}
}

// get returns the cached answer for module@version, or calls lookup and
// caches its answer. lookup runs outside the lock, so concurrent misses
// for one key may each call it; the answers are the same.
func (c *lookupCache) get(module, version string, now time.Time, lookup func(module, version string) []Vuln) []Vuln {
	key := module + "@" + version
	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.vulns
	}
	vulns := lookup(module, version)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		clear(c.entries)
	}
	c.entries[key] = lookupEntry{vulns: vulns, expires: now.Add(c.ttl)}
	return vulns
}
