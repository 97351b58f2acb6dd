package server_test

import (
	"strings"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/config"
	"github.com/modgate/modgate/internal/testenv"
)

// TestNewTagWithinListTTL measures, with the real go command, how long a
// tag pushed right after modgate listed a private module takes to appear
// in `go list -m -versions`: the README promises cache.list_ttl. The
// background refresh near the end of the TTL must read the Git refs as
// they are then, not reuse refs cached for another TTL (which made it up
// to ~1.75 times the TTL).
func TestNewTagWithinListTTL(t *testing.T) {
	const ttl = 2 * time.Second
	e := startPrivateWith(t, gitPassword, func(c *config.Config) {
		c.Cache.ListTTL = config.Duration{Duration: ttl}
	})
	mod := testenv.GitHost + "/platform/auth"
	env := e.clientEnv(t)
	listVersions := func() string {
		return strings.TrimSpace(mustGo(t, t.TempDir(), env, "list", "-m", "-versions", mod))
	}
	if got, want := listVersions(), mod+" v1.0.0 v1.1.0"; got != want {
		t.Fatalf("versions = %q, want %q", got, want)
	}
	// Pushed right after modgate read the refs for that list.
	e.auth.Commit("third", map[string]string{"auth.go": "package auth\n\nfunc Version() string { return \"v1.2.0\" }\n"})
	e.auth.Tag("v1.2.0", "HEAD")
	pushed := time.Now()

	// Ask as a busy client does, until the tag shows. "Within the TTL"
	// means that no request sent later than the TTL after the push misses
	// it: the last request that missed it must have been sent before.
	var lastMiss, seen time.Duration
	for deadline := pushed.Add(3 * ttl); time.Now().Before(deadline); {
		sent := time.Since(pushed)
		if strings.Contains(listVersions(), "v1.2.0") {
			seen = sent
			break
		}
		lastMiss = sent
	}
	t.Logf("a tag pushed right after a listing: last missed by a request sent %v after the push, first seen by one sent %v after (cache.list_ttl %v)",
		lastMiss.Round(10*time.Millisecond), seen.Round(10*time.Millisecond), ttl)
	if seen == 0 {
		t.Fatalf("the new tag did not appear within %v", 3*ttl)
	}
	if lastMiss > ttl {
		t.Errorf("a request sent %v after the push did not list the new tag; want it listed within cache.list_ttl (%v)", lastMiss, ttl)
	}
}
