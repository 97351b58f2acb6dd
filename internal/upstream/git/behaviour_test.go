package git_test

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/upstream"
	"github.com/modgate/modgate/internal/upstream/git"
)

// zipFiles returns the names in a module zip, without the module prefix,
// and the content of each.
func zipFiles(t *testing.T, data []byte) map[string]string {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("reading zip: %v", err)
	}
	files := make(map[string]string)
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		_, name, _ := strings.Cut(f.Name, "@")
		_, name, _ = strings.Cut(name, "/")
		files[name] = string(b)
	}
	return files
}

// testZipContents checks what the hash comparison implies, file by file:
// export-ignore and export-subst do not apply, a subdirectory module gets
// the root LICENSE, nested modules and vendor directories stay out.
func testZipContents(t *testing.T, src *git.Source) {
	root := zipFiles(t, mustFetch(t, src, escaped(t, host+"/platform/auth", "v1.0.0.zip")))
	if root["ignored.txt"] == "" {
		t.Errorf("v1.0.0.zip lacks ignored.txt (export-ignore must not apply); files: %v", keys(root))
	}
	if got := root["subst.txt"]; got != "$Format:%H$\n" {
		t.Errorf("subst.txt = %q, want it unexpanded", got)
	}
	rc := zipFiles(t, mustFetch(t, src, escaped(t, host+"/platform/auth", "v1.3.0-rc.1.zip")))
	for name := range rc {
		if strings.HasPrefix(name, "sub/") || strings.HasPrefix(name, "v2/") || strings.HasPrefix(name, "vendor/") {
			t.Errorf("v1.3.0-rc.1.zip contains %s, which belongs to another module or is vendored", name)
		}
	}
	sub := zipFiles(t, mustFetch(t, src, escaped(t, host+"/platform/auth/sub", "v0.1.0.zip")))
	if sub["LICENSE"] != "Copyright Corp.\n" || sub["go.mod"] == "" || sub["README"] == "" {
		t.Errorf("sub@v0.1.0.zip files %v, want go.mod, README, sub.go and the root LICENSE", keys(sub))
	}
	if got := string(mustFetch(t, src, escaped(t, host+"/platform/legacy", "v1.0.0.mod"))); got != "module corp.example.com/platform/legacy\n" {
		t.Errorf("legacy@v1.0.0.mod = %q, want the synthesized go.mod", got)
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// testNotFound checks the answers that must be 404s.
func testNotFound(t *testing.T, src *git.Source) {
	tests := []struct {
		name, path string
	}{
		{"missing repository", escaped(t, host+"/platform/nothere", "list")},
		{"missing repository info", escaped(t, host+"/platform/nothere", "v1.0.0.info")},
		{"directory that is not a module", escaped(t, host+"/platform/auth/docs", "list")},
		{"directory that is not a module, latest", escaped(t, host+"/platform/auth/nowhere/deep", "latest")},
		{"unknown version", escaped(t, host+"/platform/auth", "v9.9.9.info")},
		{"unknown version zip", escaped(t, host+"/platform/auth", "v9.9.9.zip")},
		{"unknown branch", escaped(t, host+"/platform/auth", "nobranch.info")},
		{"unknown commit", escaped(t, host+"/platform/auth", "abcdef0123.info")},
		{"version of another major", escaped(t, host+"/platform/auth", "v2.0.0.info")},
		{"incompatible not allowed", escaped(t, host+"/platform/auth", "v2.0.0+incompatible.mod")},
		{"non-canonical mod", escaped(t, host+"/platform/auth", "v1.2.mod")},
		{"pseudo-version with wrong time", escaped(t, host+"/platform/notags", "v0.0.0-20200101000000-8651888088cd.info")},
		{"module outside the patterns", "example.com/other/@v/list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := fetch(t, src, tt.path)
			if !isNotExist(err) {
				t.Fatalf("Fetch(%q) = %v, want an error matching fs.ErrNotExist", tt.path, err)
			}
			if !strings.Contains(err.Error(), `git source "corp"`) {
				t.Errorf("error %q does not name the source", err)
			}
		})
	}
}

// testCredentials checks that rejected credentials fail at once, clearly,
// without a prompt and without showing the secret.
func testCredentials(t *testing.T, w *world) {
	src := newSource(t, w.srv, func(c *git.Config) { c.Credentials.Password = "wrong-" + password })
	for _, file := range []string{"list", "v1.0.0.zip"} {
		_, err := fetch(t, src, escaped(t, host+"/platform/auth", file))
		if !errors.Is(err, upstream.ErrUnavailable) || !errors.Is(err, git.ErrAuthentication) {
			t.Fatalf("Fetch %s with wrong credentials = %v, want ErrUnavailable and ErrAuthentication", file, err)
		}
		msg := err.Error()
		if !strings.Contains(msg, "authentication rejected (HTTP 401)") || !strings.Contains(msg, "https://corp.example.com/platform/auth.git") {
			t.Errorf("error %q does not say which repository rejected the credentials", msg)
		}
		if strings.Contains(msg, password) {
			t.Errorf("error %q shows the password", msg)
		}
	}
	// No credentials at all: git itself must fail instead of prompting.
	anon := newSource(t, w.srv, func(c *git.Config) { c.Credentials = git.Credentials{} })
	if _, err := fetch(t, anon, escaped(t, host+"/platform/auth", "list")); !errors.Is(err, git.ErrAuthentication) {
		t.Errorf("Fetch without credentials = %v, want ErrAuthentication", err)
	}
}

// testUnreachable checks that a server nobody answers for fails fast as
// unavailable.
func testUnreachable(t *testing.T, w *world) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	src := newSource(t, w.srv, func(c *git.Config) { c.URL = "https://" + addr + "/{path}.git" })
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	_, err = src.Fetch(ctx, escaped(t, host+"/platform/auth", "list"))
	if !errors.Is(err, upstream.ErrUnavailable) || ctx.Err() != nil {
		t.Fatalf("Fetch from a closed port = %v (context: %v), want ErrUnavailable before the deadline", err, ctx.Err())
	}
}

// testMirrorReused checks that the mirror is fetched once and then reused,
// within a process and by a new Source on the same directory (a restart).
func testMirrorReused(t *testing.T, w *world) {
	dir := t.TempDir()
	withDir := func(c *git.Config) { c.Dir = dir }
	src := newSource(t, w.srv, withDir)
	const repo = "platform/major"
	before := w.srv.UploadPacks(repo)

	// Concurrent first requests share one fetch.
	var wg sync.WaitGroup
	for _, file := range []string{"v2.0.0.zip", "v2.1.0.zip", "v2.0.0.mod", "v2.1.0.info", "list", "latest"} {
		wg.Go(func() {
			if _, err := fetch(t, src, escaped(t, host+"/platform/major/v2", file)); err != nil {
				t.Errorf("Fetch %s: %v", file, err)
			}
		})
	}
	wg.Wait()
	if got := src.Fetches(); got != 1 {
		t.Errorf("concurrent first requests ran %d fetches, want 1", got)
	}
	first := w.srv.UploadPacks(repo)
	if first == before {
		t.Fatalf("the server saw no fetch")
	}
	mustFetch(t, src, escaped(t, host+"/platform/major", "v1.0.0.zip"))
	mustFetch(t, src, escaped(t, host+"/platform/major/v2", "v2.0.0.zip"))
	if got := src.Fetches(); got != 1 {
		t.Errorf("Source.Fetches() = %d after repeated requests, want 1", got)
	}

	restarted := newSource(t, w.srv, withDir)
	mustFetch(t, restarted, escaped(t, host+"/platform/major/v2", "v2.1.0.zip"))
	if _, err := fetch(t, restarted, escaped(t, host+"/platform/major/v2", "master.info")); !isNotExist(err) {
		t.Errorf("unknown branch: %v, want not found", err) // and no fetch for it either
	}
	if got := w.srv.UploadPacks(repo); got != first || restarted.Fetches() != 0 {
		t.Errorf("a restarted source fetched again: %d upload-pack requests, want %d", got, first)
	}
}

// testForget checks that a webhook's Forget makes a new tag visible before
// the refs TTL ends, whatever form of the repository URL it names.
func testForget(t *testing.T, w *world) {
	repo := w.srv.Repo(t, "platform/fresh")
	repo.Commit("one", map[string]string{"go.mod": "module corp.example.com/platform/fresh\n"})
	repo.Tag("v1.0.0", "HEAD")
	src := newSource(t, w.srv, nil)
	mod := host + "/platform/fresh"
	if got := string(mustFetch(t, src, escaped(t, mod, "list"))); got != "v1.0.0\n" {
		t.Fatalf("list = %q, want v1.0.0", got)
	}
	repo.Commit("two", map[string]string{"f.go": "package fresh\n"})
	repo.Tag("v1.1.0", "HEAD")
	if got := string(mustFetch(t, src, escaped(t, mod, "list"))); got != "v1.0.0\n" {
		t.Fatalf("list within the refs TTL = %q, want the cached v1.0.0", got)
	}
	for _, form := range []string{"https://corp.example.com/platform/fresh", "git@corp.example.com:platform/fresh.git", "ssh://git@corp.example.com:2222/Platform/Fresh.git"} {
		if got := src.Forget(form); !slices.Equal(got, []string{mod}) {
			t.Errorf("Forget(%q) = %q, want [%s]", form, got, mod)
		}
	}
	if got := src.Forget("https://corp.example.com/platform/other"); len(got) != 0 {
		t.Errorf("Forget of another repository = %q, want none", got)
	}
	if got := string(mustFetch(t, src, escaped(t, mod, "list"))); got != "v1.0.0\nv1.1.0\n" {
		t.Errorf("list after Forget = %q, want v1.0.0 and v1.1.0", got)
	}
	if got := parseInfo(t, mustFetch(t, src, escaped(t, mod, "latest"))); got.Version != "v1.1.0" {
		t.Errorf("latest after Forget = %s, want v1.1.0", got.Version)
	}
}

// testHungServer checks that a repository whose server hangs blocks
// neither other repositories nor, past its timeout, its own callers.
func testHungServer(t *testing.T, w *world) {
	src := newSource(t, w.srv, nil)
	release := w.srv.Hold(t, "platform/legacy")
	defer release()

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	hung := make(chan error, 1)
	go func() {
		_, err := src.Fetch(ctx, escaped(t, host+"/platform/legacy", "list"))
		hung <- err
	}()
	// Meanwhile another repository is served.
	if got := string(mustFetch(t, src, escaped(t, host+"/platform/pre", "list"))); got != "v0.1.0-beta.1\n" {
		t.Errorf("list of another repository = %q", got)
	}
	if err := <-hung; !errors.Is(err, upstream.ErrTimeout) {
		t.Errorf("Fetch from a hung server = %v, want ErrTimeout", err)
	}
}

// testDiscovery checks go-import discovery: the same answers as the
// template.
func testDiscovery(t *testing.T, w *world, tmpl *git.Source) {
	src := newSource(t, w.srv, func(c *git.Config) { c.URL = ""; c.Patterns = []string{host} })
	for mod, files := range map[string][]string{
		host + "/platform/auth":     {"v1.2.0.info", "latest", "main.info", "list"},
		host + "/platform/auth/sub": {"v0.1.0.info", "latest", "list"},
	} {
		for _, file := range files {
			got := mustFetch(t, src, escaped(t, mod, file))
			want := mustFetch(t, tmpl, escaped(t, mod, file))
			if !bytes.Equal(got, want) {
				t.Errorf("%s %s with discovery = %s, with the template %s", mod, file, got, want)
			}
		}
	}
	if _, err := fetch(t, src, escaped(t, host+"/platform/nothere", "list")); !isNotExist(err) {
		t.Errorf("discovery of a missing repository = %v, want not found", err)
	}
}

// testSources checks routing by pattern.
func testSources(t *testing.T, w *world, corp *git.Source) {
	other := newSource(t, w.srv, func(c *git.Config) { c.Name = "other"; c.Patterns = []string{"other.example/*"} })
	ss := git.NewSources(other, corp)
	if !ss.Matches(host+"/platform/auth") || !ss.Matches("other.example/x") || ss.Matches("example.com/public") {
		t.Errorf("Matches disagrees with the patterns")
	}
	resp, err := ss.Fetch(t.Context(), escaped(t, host+"/platform/auth", "v1.0.0.info"))
	if err != nil {
		t.Fatalf("Sources.Fetch: %v", err)
	}
	resp.Body.Close()
	if resp.Upstream != "corp" {
		t.Errorf("served by %q, want corp", resp.Upstream)
	}
	if _, err := ss.Fetch(t.Context(), "example.com/public/@v/list"); !isNotExist(err) {
		t.Errorf("Sources.Fetch of an unmatched module = %v, want not found", err)
	}
	if got := ss.Forget("https://corp.example.com/platform/auth.git"); !slices.Contains(got, host+"/platform/auth") {
		t.Errorf("Sources.Forget = %q, want it to name %s/platform/auth", got, host)
	}
}

// testReport checks `modgate source test` on good and bad settings.
func testReport(t *testing.T, w *world) {
	tests := []struct {
		name   string
		mod    func(*git.Config)
		module string
		ok     bool
		says   string
	}{
		{"good", nil, host + "/platform/auth", true, "accepted"},
		{"pattern without wildcards", func(c *git.Config) { c.Patterns = []string{host + "/platform/auth"} }, "", true, "branches"},
		{"bad password", func(c *git.Config) { c.Credentials.Password = "nope" }, host + "/platform/auth", false, "authentication rejected (HTTP 401)"},
		{"missing repository", nil, host + "/platform/nothere", false, "no such repository (HTTP 404)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newSource(t, w.srv, tt.mod)
			rep, err := src.Test(t.Context(), tt.module)
			if err != nil {
				t.Fatalf("Test: %v", err)
			}
			if rep.OK() != tt.ok || !strings.Contains(rep.String(), tt.says) {
				t.Errorf("Test report (OK %v, want %v), want it to say %q:\n%s", rep.OK(), tt.ok, tt.says, rep)
			}
			if strings.Contains(rep.String(), password) || strings.Contains(rep.String(), "nope") {
				t.Errorf("report shows the password:\n%s", rep)
			}
		})
	}
	src := newSource(t, w.srv, nil)
	if _, err := src.Test(t.Context(), ""); err == nil {
		t.Errorf("Test with only wildcard patterns and no module: no error")
	}
}

// testForgetAfterRestart checks that a new Source on the same directory (a
// restarted server) still knows which modules it served from a
// repository, so that a webhook refreshes them.
func testForgetAfterRestart(t *testing.T, w *world) {
	dir := t.TempDir()
	first := newSource(t, w.srv, func(c *git.Config) { c.Dir = dir })
	auth := host + "/platform/auth"
	mustFetch(t, first, escaped(t, auth, "list"))
	mustFetch(t, first, escaped(t, auth+"/sub", "v0.1.0.info"))
	mustFetch(t, first, escaped(t, host+"/platform/legacy", "list"))

	restarted := newSource(t, w.srv, func(c *git.Config) { c.Dir = dir })
	if got, want := restarted.Forget("https://corp.example.com/platform/auth.git"), []string{auth, auth + "/sub"}; !slices.Equal(got, want) {
		t.Errorf("Forget after a restart = %q, want %q", got, want)
	}
	if got := restarted.Forget("https://corp.example.com/platform/notags"); len(got) != 0 {
		t.Errorf("Forget of a repository never served = %q, want none", got)
	}
	// A module served after the restart joins the recorded ones.
	mustFetch(t, restarted, escaped(t, auth+"/v2", "list"))
	again := newSource(t, w.srv, func(c *git.Config) { c.Dir = dir })
	if got, want := again.Forget("https://corp.example.com/platform/auth"), []string{auth, auth + "/sub", auth + "/v2"}; !slices.Equal(got, want) {
		t.Errorf("Forget after a second restart = %q, want %q", got, want)
	}
}
