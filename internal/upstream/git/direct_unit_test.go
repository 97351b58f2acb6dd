package git

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"net/netip"
	"testing"

	"github.com/modgate/modgate/internal/upstream"
)

// TestStaticLocation checks the go command's static rules for hosting
// sites and version control suffixes (cmd/go/internal/vcs).
func TestStaticLocation(t *testing.T) {
	tests := []struct {
		mod      string
		root     string // "" when discovery decides
		url      string
		notFound bool
		vcs      bool // refused as another version control system
	}{
		{mod: "github.com/owner/repo", root: "github.com/owner/repo", url: "https://github.com/owner/repo"},
		{mod: "github.com/Owner/Repo/sub/v2", root: "github.com/Owner/Repo", url: "https://github.com/Owner/Repo"},
		{mod: "github.com/owner", notFound: true},
		{mod: "github.com/owner/repo.git", notFound: true},
		{mod: "github.com/owner/repo.hg/x", notFound: true},
		{mod: "bitbucket.org/team/repo/v3", root: "bitbucket.org/team/repo", url: "https://bitbucket.org/team/repo"},
		{mod: "git.apache.org/thrift.git/lib/go", root: "git.apache.org/thrift.git", url: "https://git.apache.org/thrift.git"},
		{mod: "chiselapp.com/user/u/repository/r", vcs: true},
		{mod: "example.com/repo.git", root: "example.com/repo.git", url: "https://example.com/repo"},
		{mod: "example.com/group/repo.git/sub", root: "example.com/group/repo.git", url: "https://example.com/group/repo"},
		{mod: "example.com:8443/repo.git", root: "example.com:8443/repo.git", url: "https://example.com:8443/repo"},
		{mod: "example.com/repo.hg", vcs: true},
		{mod: "example.com/repo.svn/x", vcs: true},
		{mod: "example.com/repo"},
		{mod: "golang.org/x/mod"},
	}
	for _, tt := range tests {
		loc, ok, err := staticLocation(tt.mod)
		switch {
		case tt.vcs:
			if !errors.Is(err, ErrUnsupportedVCS) || !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("staticLocation(%q) = %v, want unsupported version control, not found", tt.mod, err)
			}
		case tt.notFound:
			if !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("staticLocation(%q) = %v, want not found", tt.mod, err)
			}
		case err != nil:
			t.Errorf("staticLocation(%q) = %v", tt.mod, err)
		case tt.root == "" && ok:
			t.Errorf("staticLocation(%q) = %+v, want discovery", tt.mod, loc)
		case tt.root != "" && (!ok || loc.root != tt.root || loc.url != tt.url):
			t.Errorf("staticLocation(%q) = %+v, %v; want root %s url %s", tt.mod, loc, ok, tt.root, tt.url)
		}
	}
}

func TestHostGuard(t *testing.T) {
	lookup := func(_ context.Context, host string) ([]netip.Addr, error) {
		switch host {
		case "inside.example":
			return []netip.Addr{netip.MustParseAddr("203.0.113.9"), netip.MustParseAddr("10.0.0.1")}, nil
		case "outside.example":
			return []netip.Addr{netip.MustParseAddr("203.0.113.9")}, nil
		case "mapped.example":
			return []netip.Addr{netip.MustParseAddr("::ffff:127.0.0.1")}, nil
		case "gone.example":
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		}
		return nil, errors.New("server misbehaving")
	}
	// A host the resolver says does not exist holds no module: "not
	// found" (not a refusal), so a client's next GOPROXY entry may try.
	gone := &hostGuard{lookup: lookup, names: true}
	if err := gone.check(t.Context(), "gone.example"); !errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrPrivateHost) {
		t.Errorf("check(gone.example) = %v, want not found", err)
	}
	tests := []struct {
		host          string
		local, viaPxy bool // refused with local resolution, with a resolving proxy
	}{
		{host: "outside.example"},
		{host: "unknown.example"},
		{host: "inside.example", local: true},
		{host: "mapped.example", local: true},
		{host: "LOCALHOST", local: true, viaPxy: true},
		{host: "a.localhost.", local: true, viaPxy: true},
		{host: "127.0.0.2", local: true, viaPxy: true},
		{host: "[::1]", local: true, viaPxy: true},
		{host: "0.0.0.0", local: true, viaPxy: true},
		{host: "100.64.1.1", local: true, viaPxy: true},
		{host: "fe80::1", local: true, viaPxy: true},
		{host: "203.0.113.7"},
		{host: "", local: true, viaPxy: true},
	}
	for _, tt := range tests {
		for _, g := range []struct {
			g    *hostGuard
			want bool
		}{{&hostGuard{lookup: lookup, names: true}, tt.local}, {&hostGuard{lookup: lookup}, tt.viaPxy}} {
			err := g.g.check(t.Context(), tt.host)
			if got := err != nil; got != g.want || got && (!errors.Is(err, ErrPrivateHost) || !errors.Is(err, fs.ErrNotExist)) {
				t.Errorf("check(%q) with names=%v = %v, want refused %v", tt.host, g.g.names, err, g.want)
			}
		}
	}
}

func TestHostNotFound(t *testing.T) {
	dns := netError(&net.DNSError{Err: "no such host", Name: "nowhere.example", IsNotFound: true})
	if err := hostNotFound(dns); !errors.Is(err, fs.ErrNotExist) || errors.Is(err, upstream.ErrUnavailable) {
		t.Errorf("hostNotFound(no such host) = %v, want not found only", err)
	}
	down := netError(&net.DNSError{Err: "server misbehaving", Name: "x.example", IsTemporary: true})
	if err := hostNotFound(down); errors.Is(err, fs.ErrNotExist) || !errors.Is(err, upstream.ErrUnavailable) {
		t.Errorf("hostNotFound(resolver failure) = %v, want unavailable", err)
	}
}
