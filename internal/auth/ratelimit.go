package auth

import (
	"math"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxTrackedAddrs bounds the memory the failure limiter uses; beyond it,
// addresses whose buckets are full again are forgotten first.
const maxTrackedAddrs = 10000

// A failureLimiter rate-limits failed credential checks per client address:
// a token bucket of perMinute failures, refilled at perMinute per minute.
type failureLimiter struct {
	limit rate.Limit
	burst int

	mu    sync.Mutex
	addrs map[netip.Addr]*rate.Limiter
}

// newFailureLimiter returns a limiter, or nil (no limit) for perMinute <= 0.
func newFailureLimiter(perMinute int) *failureLimiter {
	if perMinute <= 0 {
		return nil
	}
	return &failureLimiter{
		limit: rate.Limit(float64(perMinute) / 60),
		burst: perMinute,
		addrs: make(map[netip.Addr]*rate.Limiter),
	}
}

// limitKey is the unit one client controls: its IPv4 address, or the /64 of
// an IPv6 address (one host usually has a whole /64 to pick from).
func limitKey(ip netip.Addr) netip.Addr {
	if ip.Is6() && !ip.Is4In6() {
		p, _ := ip.Prefix(64)
		return p.Addr()
	}
	return ip.Unmap()
}

// blocked returns how long the client at ip must wait before its
// credentials are checked again, 0 if they may be checked now.
func (l *failureLimiter) blocked(ip netip.Addr, now time.Time) time.Duration {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	lim := l.addrs[limitKey(ip)]
	if lim == nil {
		return 0
	}
	tokens := lim.TokensAt(now)
	if tokens >= 1 {
		return 0
	}
	return time.Duration(math.Ceil((1 - tokens) / float64(l.limit) * float64(time.Second)))
}

// fail records a failed check from ip.
func (l *failureLimiter) fail(ip netip.Addr, now time.Time) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	key := limitKey(ip)
	lim := l.addrs[key]
	if lim == nil {
		if len(l.addrs) >= maxTrackedAddrs {
			l.prune(now)
		}
		lim = rate.NewLimiter(l.limit, l.burst)
		l.addrs[key] = lim
	}
	lim.AllowN(now, 1)
}

// prune forgets addresses whose buckets have refilled, and if that is not
// enough (failures from very many addresses at once), arbitrary ones.
func (l *failureLimiter) prune(now time.Time) {
	for k, lim := range l.addrs {
		if lim.TokensAt(now) >= float64(l.burst) {
			delete(l.addrs, k)
		}
	}
	for k := range l.addrs {
		if len(l.addrs) < maxTrackedAddrs*9/10 {
			break
		}
		delete(l.addrs, k)
	}
}
