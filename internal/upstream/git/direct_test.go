package git_test

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/testenv"
	"github.com/modgate/modgate/internal/upstream"
	"github.com/modgate/modgate/internal/upstream/git"
)

// newDirect returns a direct Source that reaches srv through its proxy.
// Host names resolve through hosts (unknown names do not resolve).
func newDirect(t *testing.T, srv *testenv.GitServer, hosts map[string]string, dir string) *git.Source {
	t.Helper()
	s, err := git.NewDirect(git.DirectConfig{
		Dir:        dir,
		RefsTTL:    time.Hour,
		Env:        srv.GitEnv(),
		HTTPClient: srv.Client(),
		LookupHost: func(_ context.Context, host string) ([]netip.Addr, error) {
			if a, ok := hosts[host]; ok {
				return []netip.Addr{netip.MustParseAddr(a)}, nil
			}
			return nil, errors.New("no such host")
		},
	})
	if err != nil {
		t.Fatalf("NewDirect: %v", err)
	}
	return s
}

// TestDirect serves a public module from a server that asks for no
// credentials and refuses what the go command would refuse, or what would
// make modgate reach into its own network.
func TestDirect(t *testing.T) {
	srv := testenv.NewGitServer(t, "", "")
	lib := srv.Repo(t, "public/lib")
	lib.Commit("v1", map[string]string{"go.mod": "module " + host + "/public/lib\n\ngo 1.21\n", "lib.go": "package lib\n"})
	lib.Tag("v1.0.0", "HEAD")
	lib.Commit("v1.1", map[string]string{"lib.go": "package lib\n\nconst V = 1\n"})
	lib.Tag("v1.1.0", "HEAD")
	lib.Commit("main", map[string]string{"lib.go": "package lib\n\nconst V = 2\n"})

	srv.SetMeta("public/hg", host+"/public/hg hg https://"+host+"/public/hg")
	srv.SetMeta("public/svn/sub", host+"/public/svn svn https://"+host+"/public/svn")
	srv.SetMeta("public/svn", host+"/public/svn svn https://"+host+"/public/svn")
	srv.SetMeta("public/plain", host+"/public/plain git http://"+host+"/public/lib.git")
	srv.SetMeta("public/ssh", host+"/public/ssh git ssh://git@"+host+"/public/lib.git")
	srv.SetMeta("public/file", host+"/public/file git file:///etc")
	srv.SetMeta("public/local", host+"/public/local git https://127.0.0.1:1/public/lib.git")
	srv.SetMeta("public/rebind", host+"/public/rebind git https://rebind.example/public/lib.git")
	srv.SetMeta("public/gone", host+"/public/gone git https://"+host+"/public/gone.git")
	// A tag at a shorter prefix must be confirmed by the prefix itself.
	srv.SetMeta("public/liar/sub", host+"/public/liar git https://"+host+"/public/lib.git")
	srv.SetMeta("public/liar", host+"/public/liar git https://"+host+"/public/other.git")

	dir := t.TempDir()
	src := newDirect(t, srv, map[string]string{"rebind.example": "10.1.2.3"}, dir)
	if src.String() != "direct" {
		t.Errorf("String() = %q, want direct", src.String())
	}
	mod := host + "/public/lib"
	if got := string(mustFetch(t, src, escaped(t, mod, "list"))); got != "v1.0.0\nv1.1.0\n" {
		t.Errorf("list = %q, want v1.0.0 and v1.1.0", got)
	}
	if i := parseInfo(t, mustFetch(t, src, escaped(t, mod, "main.info"))); !strings.HasPrefix(i.Version, "v1.1.1-0.") {
		t.Errorf("main.info = %s, want a pseudo-version after v1.1.0", i.Version)
	}
	zip := mustFetch(t, src, escaped(t, mod, "v1.0.0.zip"))
	if len(zip) == 0 {
		t.Error("empty zip")
	}
	for _, r := range srv.Requests() {
		if strings.Contains(r, "Authorization") {
			t.Errorf("credentials were sent: %s", r)
		}
	}

	tests := []struct {
		mod   string
		class error
		say   string
	}{
		{mod: host + "/public/hg", class: git.ErrUnsupportedVCS, say: "hg repository"},
		{mod: host + "/public/svn/sub", class: git.ErrUnsupportedVCS, say: "svn repository"},
		{mod: "example.com/repo.hg/sub", class: git.ErrUnsupportedVCS, say: "hg repository"},
		{mod: "chiselapp.com/user/x/repository/y", class: git.ErrUnsupportedVCS, say: "fossil"},
		{mod: host + "/public/plain", say: `scheme "http" refused`},
		{mod: host + "/public/ssh", say: `scheme "ssh" refused`},
		{mod: host + "/public/file", say: `scheme "file" refused`},
		{mod: host + "/public/local", class: git.ErrPrivateHost, say: "loopback address"},
		{mod: host + "/public/rebind", class: git.ErrPrivateHost, say: "resolves to private address 10.1.2.3"},
		{mod: "127.0.0.1/x/y", class: git.ErrPrivateHost, say: "loopback"},
		{mod: "192.168.1.1/x", class: git.ErrPrivateHost, say: "private"},
		{mod: "169.254.169.254/latest", class: git.ErrPrivateHost, say: "link-local"},
		{mod: "intranet.localhost/x", class: git.ErrPrivateHost, say: "localhost"},
		{mod: host + "/public/gone", say: "no such repository"},
		{mod: host + "/public/nothing", say: "HTTP 404"},
		{mod: host + "/public/liar/sub", say: "disagree"},
		{mod: "github.com/owner/repo.git", say: "invalid version control suffix"},
		{mod: "github.com/owner", say: "not a valid github.com repository path"},
	}
	for _, tt := range tests {
		t.Run(tt.mod, func(t *testing.T) {
			_, err := fetch(t, src, escaped(t, tt.mod, "list"))
			if !isNotExist(err) || tt.class != nil && !errors.Is(err, tt.class) || !strings.Contains(err.Error(), tt.say) {
				t.Errorf("Fetch(%s list) = %v, want not found (%v) saying %q", tt.mod, err, tt.class, tt.say)
			}
		})
	}
	for _, r := range srv.Requests() {
		if strings.Contains(r, "other.git") {
			t.Errorf("the disagreeing repository was contacted: %s", r)
		}
	}

	// Not module paths at all: invalid, not "not found" at the wrong place.
	for _, p := range []string{"Example/x/@v/list", "example.com/../x/@v/list"} {
		if _, err := src.Fetch(t.Context(), p); err == nil {
			t.Errorf("Fetch(%q) succeeded", p)
		}
	}
	// Repositories are mirrored in the source's own directory, named by URL.
	dirs, _ := filepath.Glob(filepath.Join(dir, "*.git"))
	if len(dirs) != 1 {
		t.Errorf("mirrors = %v, want the one repository fetched", dirs)
	}
}

// TestDirectUnreachable: a host that does not answer is a failure (502),
// not "not found", so a client does not silently fall through.
func TestDirectUnreachable(t *testing.T) {
	srv := testenv.NewGitServer(t, "", "")
	dir := t.TempDir()
	src := newDirect(t, srv, nil, dir)
	// The test proxy refuses every host but the Git server's.
	_, err := fetch(t, src, escaped(t, "elsewhere.example/x", "list"))
	if err == nil || isNotExist(err) || !errors.Is(err, upstream.ErrUnavailable) {
		t.Errorf("Fetch from an unreachable host = %v, want unavailable", err)
	}
	if dirs, _ := filepath.Glob(filepath.Join(dir, "*.git")); len(dirs) != 0 {
		t.Errorf("mirrors = %v after a failed lookup, want none", dirs)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestDirectRedirects: a go-import page or a ref listing that redirects
// to plain http or to a loopback or private host is not followed.
func TestDirectRedirects(t *testing.T) {
	var seen []string
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		seen = append(seen, r.URL.String())
		loc := map[string]string{
			"a.example": "http://a.example/x?go-get=1",
			"b.example": "https://127.0.0.1/x?go-get=1",
			"c.example": "https://inside.example/x?go-get=1",
		}[r.URL.Hostname()]
		if loc == "" {
			return &http.Response{StatusCode: http.StatusNotFound, Body: http.NoBody, Request: r}, nil
		}
		return &http.Response{StatusCode: http.StatusFound, Header: http.Header{"Location": {loc}}, Body: http.NoBody, Request: r}, nil
	})}
	src, err := git.NewDirect(git.DirectConfig{
		Dir:        t.TempDir(),
		HTTPClient: client,
		LookupHost: func(_ context.Context, host string) ([]netip.Addr, error) {
			if host == "inside.example" {
				return []netip.Addr{netip.MustParseAddr("192.168.0.1")}, nil
			}
			return []netip.Addr{netip.MustParseAddr("203.0.113.1")}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ mod, say string }{
		{"a.example/x", "https only"},
		{"b.example/x", "loopback"},
		{"c.example/x", "private address"},
	} {
		_, err := fetch(t, src, escaped(t, tt.mod, "list"))
		if !isNotExist(err) || errors.Is(err, upstream.ErrUnavailable) || !strings.Contains(err.Error(), tt.say) {
			t.Errorf("Fetch(%s) = %v, want not found (only) saying %q", tt.mod, err, tt.say)
		}
	}
	for _, u := range seen {
		if !strings.HasPrefix(u, "https://") || strings.Contains(u, "127.0.0.1") || strings.Contains(u, "inside.example") {
			t.Errorf("a refused redirect was followed: %s", u)
		}
	}
}
