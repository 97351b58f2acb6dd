package server_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/config"
	"github.com/modgate/modgate/internal/testenv"
)

const (
	gitUser     = "modgate-bot"
	gitPassword = "s3cret-git-token"
	hookSecret  = "webhook-secret"
)

// privateEnv is a company Git server with a few module layouts, a public
// upstream, and a modgate serving both.
type privateEnv struct {
	git   *testenv.GitServer
	up    *testenv.Upstream
	mg    *instance
	auth  *testenv.GitRepo
	heads map[string]string // name -> commit
}

// startPrivate builds the repositories and starts modgate with one private
// source whose password is in a file, as an operator would configure it.
// password is what modgate sends (the right one unless a test wants it
// wrong).
func startPrivate(t *testing.T, password string) *privateEnv {
	t.Helper()
	return startPrivateWith(t, password, nil)
}

// startPrivateWith is startPrivate with edit applied to the configuration
// last.
func startPrivateWith(t *testing.T, password string, edit func(*config.Config)) *privateEnv {
	t.Helper()
	gs := testenv.NewGitServer(t, gitUser, gitPassword)
	e := &privateEnv{git: gs, heads: map[string]string{}}

	// corp.example.com/platform/auth: tags, a branch, a subdirectory module
	// and a retracted version.
	e.auth = gs.Repo(t, "platform/auth")
	e.heads["v1.0.0"] = e.auth.Commit("first", map[string]string{
		"go.mod":  "module corp.example.com/platform/auth\n\ngo 1.21\n",
		"auth.go": "package auth\n\nfunc Version() string { return \"v1.0.0\" }\n",
		// export-ignore must not change what is in the zip.
		".gitattributes": "secret.txt export-ignore\n",
		"secret.txt":     "kept in the module zip\n",
	})
	e.auth.Tag("v1.0.0", "HEAD")
	e.heads["v1.1.0"] = e.auth.Commit("second", map[string]string{
		"auth.go":          "package auth\n\nfunc Version() string { return \"v1.1.0\" }\n",
		"client/go.mod":    "module corp.example.com/platform/auth/client\n\ngo 1.21\n",
		"client/client.go": "package client\n",
	})
	e.auth.Tag("v1.1.0", "HEAD")
	e.auth.Tag("client/v0.1.0", "HEAD")
	e.heads["main"] = e.auth.Commit("work in progress", map[string]string{
		"auth.go": "package auth\n\nfunc Version() string { return \"main\" }\n",
	})

	// corp.example.com/platform/lib/v2 in the major-branch layout.
	lib := gs.Repo(t, "platform/lib")
	lib.Commit("v1", map[string]string{"go.mod": "module corp.example.com/platform/lib\n", "lib.go": "package lib\n"})
	lib.Tag("v1.0.0", "HEAD")
	lib.Commit("v2", map[string]string{"go.mod": "module corp.example.com/platform/lib/v2\n", "lib.go": "package lib\n\nconst Major = 2\n"})
	lib.Tag("v2.0.0", "HEAD")

	// corp.example.com/platform/legacy has no go.mod; its v2.0.0 is
	// v2.0.0+incompatible.
	legacy := gs.Repo(t, "platform/legacy")
	legacy.Commit("old code", map[string]string{"legacy.go": "package legacy\n"})
	legacy.Tag("v1.0.0", "HEAD")
	legacy.Tag("v2.0.0", "HEAD")

	e.up = testenv.NewUpstream(t, testenv.Fixtures(t))
	pwFile := filepath.Join(t.TempDir(), "git-password")
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hookFile := filepath.Join(t.TempDir(), "webhook-secret")
	if err := os.WriteFile(hookFile, []byte(hookSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	e.mg = startModgate(t, e.up, func(c *config.Config) {
		c.Cache.ListTTL = config.Duration{Duration: 3600e9} // only a webhook makes new tags visible
		c.Private.Webhook.SecretFile = hookFile
		c.Private.Sources = []config.PrivateSource{{
			Name:         "corp",
			Patterns:     []string{testenv.GitHost + "/*/*"},
			URL:          "https://" + gs.Addr() + "/{path}.git",
			Username:     gitUser,
			PasswordFile: pwFile,
			CAFile:       gs.CAFile,
		}}
		if edit != nil {
			edit(c)
		}
	})
	return e
}

// clientEnv is a developer's go command: GOPROXY is modgate, GONOSUMDB
// names the private host (modgate has no checksum database of its own yet),
// and PATH holds only the go command, so no git can be run and no Git
// credential exists.
func (e *privateEnv) clientEnv(t *testing.T) []string {
	return goEnv(t, e.mg, e.up,
		"GONOSUMDB="+testenv.GitHost,
		"PATH="+filepath.Dir(testenv.GoBinary(t)))
}

// downloadJSON runs "go mod download -json" for one query and returns its
// answer keyed by the query.
func downloadJSON(t *testing.T, env []string, query string) map[string]testenv.GoDownload {
	t.Helper()
	stdout, stderr, err := testenv.RunGo(t, t.TempDir(), env, "mod", "download", "-json", query)
	var d testenv.GoDownload
	if derr := json.Unmarshal([]byte(stdout), &d); derr != nil {
		t.Fatalf("go mod download -json %s: %v (err %v)\n%s", query, derr, err, stderr)
	}
	return map[string]testenv.GoDownload{query: d}
}

// TestPrivateModulesMatchGoDirect drives the real go command through
// modgate for every layout and compares versions and hashes with what the
// go command computes itself from the same repositories (GOPROXY=direct,
// with Git credentials).
func TestPrivateModulesMatchGoDirect(t *testing.T) {
	e := startPrivate(t, gitPassword)
	h := testenv.GitHost + "/platform/"
	queries := []string{
		h + "auth@v1.0.0",
		h + "auth@v1.1.0",
		h + "auth@latest",
		h + "auth@main",
		h + "auth@" + e.heads["v1.1.0"][:12],
		h + "auth@" + e.heads["main"],
		h + "auth/client@v0.1.0",
		h + "lib/v2@v2.0.0",
		h + "lib@latest",
		h + "legacy@v1.0.0",
		h + "legacy@v2.0.0", // an exact tag the go command sends as a query
	}
	// The reference resolves each distinct version once; modgate is asked
	// every query on its own and must land on the same version and hashes.
	want := e.git.GoDirect(t, h+"auth@v1.0.0", h+"auth@v1.1.0", h+"auth@main", h+"auth/client@v0.1.0", h+"lib/v2@v2.0.0", h+"lib@latest", h+"legacy@v1.0.0", h+"legacy@v2.0.0")
	byVersion := map[string]testenv.GoDownload{}
	for q, d := range want {
		if d.Error != "" {
			t.Fatalf("reference go command failed on %s: %s", q, d.Error)
		}
		byVersion[d.Path+"@"+d.Version] = d
	}
	got := map[string]testenv.GoDownload{}
	env := e.clientEnv(t)
	for _, q := range queries {
		g := downloadJSON(t, env, q)[q]
		got[q] = g
		w, ok := byVersion[g.Path+"@"+g.Version]
		switch {
		case g.Error != "":
			t.Errorf("%s through modgate: %s", q, g.Error)
		case !ok:
			t.Errorf("%s through modgate resolved to %s@%s, which the go command never did", q, g.Path, g.Version)
		case g.Sum != w.Sum || g.GoModSum != w.GoModSum:
			t.Errorf("%s: modgate gave %s %s; go direct gave %s %s", q, g.Sum, g.GoModSum, w.Sum, w.GoModSum)
		}
	}
	for q, v := range map[string]string{
		h + "auth@latest":                    "v1.1.0",
		h + "auth@" + e.heads["v1.1.0"][:12]: "v1.1.0",
		h + "auth@" + e.heads["main"]:        want[h+"auth@main"].Version,
		h + "legacy@v2.0.0":                  "v2.0.0+incompatible",
	} {
		if got[q].Version != v {
			t.Errorf("%s resolved to %s, want %s", q, got[q].Version, v)
		}
	}
	for _, r := range e.up.Requests() {
		if strings.Contains(r, testenv.GitHost) {
			t.Errorf("the public upstream was asked about a private module: %s", r)
		}
	}

	// A build works with nothing but GOPROXY.
	env = e.clientEnv(t)
	dir := t.TempDir()
	testenv.WriteModule(t, dir, "module example.com/app\n\ngo 1.21\n\nrequire "+h+"auth v1.1.0\n", map[string]string{
		"main.go": "package main\n\nimport \"" + h + "auth\"\n\nfunc main() { println(auth.Version()) }\n",
	})
	mustGo(t, dir, env, "mod", "tidy")
	mustGo(t, dir, env, "build", "./...")

	// Repeated requests reuse the mirror: nothing is cloned or fetched again.
	before := len(e.git.Requests())
	downloadJSON(t, e.clientEnv(t), h+"auth@v1.0.0")
	downloadJSON(t, e.clientEnv(t), h+"lib/v2@v2.0.0")
	for _, r := range e.git.Requests()[before:] {
		if strings.Contains(r, "git-upload-pack") && strings.HasPrefix(r, "POST") {
			t.Errorf("a second download of stored versions fetched from Git: %s", r)
		}
	}
}

// TestPrivateWebhookAndMovedTag checks freshness and integrity: a new tag
// is invisible until a signed webhook arrives (the list TTL is an hour),
// an unsigned one changes nothing, and a tag moved to other code is
// refused while the recorded version keeps being served.
func TestPrivateWebhookAndMovedTag(t *testing.T) {
	e := startPrivate(t, gitPassword)
	mod := testenv.GitHost + "/platform/auth"
	env := e.clientEnv(t)
	listVersions := func() string {
		return strings.TrimSpace(mustGo(t, t.TempDir(), env, "list", "-m", "-versions", mod))
	}
	if got, want := listVersions(), mod+" v1.0.0 v1.1.0"; got != want {
		t.Fatalf("versions = %q, want %q", got, want)
	}
	first := downloadJSON(t, env, mod+"@v1.0.0")[mod+"@v1.0.0"]

	e.auth.Commit("third", map[string]string{"auth.go": "package auth\n\nfunc Version() string { return \"v1.2.0\" }\n"})
	e.auth.Tag("v1.2.0", "HEAD")
	if got := listVersions(); strings.Contains(got, "v1.2.0") {
		t.Fatalf("v1.2.0 listed before any webhook (list TTL is an hour): %q", got)
	}

	repoURL := "https://" + e.git.Addr() + "/platform/auth.git"
	payload := fmt.Sprintf(`{"ref":"refs/tags/v1.2.0","after":"%s","repository":{"clone_url":%q}}`, strings.Repeat("a", 40), repoURL)
	if code := postHook(t, e.mg, payload, "wrong-secret"); code != http.StatusUnauthorized {
		t.Fatalf("webhook with a bad signature = %d, want 401", code)
	}
	if got := listVersions(); strings.Contains(got, "v1.2.0") {
		t.Fatalf("a refused webhook made v1.2.0 visible: %q", got)
	}
	if code := postHook(t, e.mg, payload, hookSecret); code != http.StatusAccepted {
		t.Fatalf("signed webhook = %d, want 202", code)
	}
	if got, want := listVersions(), mod+" v1.0.0 v1.1.0 v1.2.0"; got != want {
		t.Fatalf("versions after the webhook = %q, want %q", got, want)
	}

	// Move v1.0.0 to other code and tell modgate.
	e.auth.Commit("rewritten history", map[string]string{"auth.go": "package auth\n\nfunc Version() string { return \"evil\" }\n"})
	e.auth.Tag("v1.0.0", "HEAD")
	payload = fmt.Sprintf(`{"ref":"refs/tags/v1.0.0","after":"%s","repository":{"clone_url":%q}}`, strings.Repeat("b", 40), repoURL)
	if code := postHook(t, e.mg, payload, hookSecret); code != http.StatusAccepted {
		t.Fatalf("signed webhook = %d, want 202", code)
	}
	waitFor(t, "the moved tag to be reported in /metrics", func() bool {
		_, body, _ := e.mg.get(t, "/metrics")
		return metricValue(string(body), "modgate_moved_versions_total") >= 1
	})
	waitFor(t, "the moved tag to be in the audit log", func() bool {
		return auditContains(t, e.mg, `"action":"tag.moved"`, mod+"@v1.0.0")
	})
	again := downloadJSON(t, e.clientEnv(t), mod+"@v1.0.0")[mod+"@v1.0.0"]
	if again.Error != "" || again.Sum != first.Sum || again.GoModSum != first.GoModSum {
		t.Errorf("after the tag moved, v1.0.0 = %+v; want the recorded %s", again, first.Sum)
	}
}

// TestPrivateBadCredentials checks that a Git server refusing modgate's
// credentials gives the developer a clear answer naming the cause.
func TestPrivateBadCredentials(t *testing.T) {
	e := startPrivate(t, "not-the-password")
	stderr := failGo(t, t.TempDir(), e.clientEnv(t), "mod", "download", testenv.GitHost+"/platform/auth@v1.0.0")
	if !strings.Contains(stderr, "authentication rejected") || !strings.Contains(stderr, "502") {
		t.Errorf("go mod download with bad Git credentials said:\n%s\nwant a 502 naming \"authentication rejected\"", stderr)
	}
	if strings.Contains(stderr, "not-the-password") {
		t.Error("the password appears in the error")
	}
}

func postHook(t *testing.T, in *instance, payload, secret string) int {
	t.Helper()
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(payload))
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, in.URL+"/webhook/github", bytes.NewReader([]byte(payload)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// metricValue returns the sum of the samples of a metric in Prometheus
// text format.
func metricValue(text, name string) float64 {
	var sum float64
	for line := range strings.SplitSeq(text, "\n") {
		if rest, ok := strings.CutPrefix(line, name); ok && (strings.HasPrefix(rest, " ") || strings.HasPrefix(rest, "{")) {
			f := strings.Fields(rest)
			var v float64
			fmt.Sscan(f[len(f)-1], &v)
			sum += v
		}
	}
	return sum
}

// waitFor polls cond until it holds, failing the test after 30 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	pollUntil(t, 30*time.Second, func() string {
		if cond() {
			return ""
		}
		return "waiting for " + what
	})
}

// auditContains reports whether one line of the instance's audit log
// contains every one of subs. Records reach the files within the audit
// log's sync interval, so callers poll.
func auditContains(t *testing.T, in *instance, subs ...string) bool {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(in.DataDir, "audit", "*.jsonl"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
	lines:
		for line := range strings.SplitSeq(string(data), "\n") {
			for _, sub := range subs {
				if !strings.Contains(line, sub) {
					continue lines
				}
			}
			return true
		}
	}
	return false
}

// TestPrivateOverSSH serves a private source from a real sshd with a key
// and a known_hosts file held by modgate: the go command, with no Git and
// no key, gets the same versions and hashes as the go command fetching the
// same repository itself, and a key the server refuses gives a 502 naming
// the cause.
func TestPrivateOverSSH(t *testing.T) {
	gs := testenv.NewGitServer(t, gitUser, gitPassword)
	repo := gs.Repo(t, "platform/keys")
	repo.Commit("v1", map[string]string{
		"go.mod":  "module corp.example.com/platform/keys\n\ngo 1.21\n",
		"keys.go": "package keys\n\nconst Version = \"v1.0.0\"\n",
	})
	repo.Tag("v1.0.0", "HEAD")
	repo.Commit("work", map[string]string{"keys.go": "package keys\n\nconst Version = \"main\"\n"})
	sshd := testenv.NewSSHServer(t, gs.Root)
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	start := func(key string) *instance {
		return startModgate(t, up, func(c *config.Config) {
			c.Private.Sources = []config.PrivateSource{{
				Name:              "corp-ssh",
				Patterns:          []string{testenv.GitHost + "/*/*"},
				URL:               sshd.URLTemplate(),
				SSHKeyFile:        key,
				SSHKnownHostsFile: sshd.KnownHostsFile,
			}}
		})
	}
	mg := start(sshd.KeyFile)
	env := goEnv(t, mg, up, "GONOSUMDB="+testenv.GitHost, "PATH="+filepath.Dir(testenv.GoBinary(t)))
	mod := testenv.GitHost + "/platform/keys"
	want := gs.GoDirect(t, mod+"@v1.0.0", mod+"@main")
	for _, q := range []string{mod + "@v1.0.0", mod + "@main"} {
		g, w := downloadJSON(t, env, q)[q], want[q]
		if w.Error != "" {
			t.Fatalf("reference go command failed on %s: %s", q, w.Error)
		}
		if g.Error != "" || g.Version != w.Version || g.Sum != w.Sum || g.GoModSum != w.GoModSum {
			t.Errorf("%s through modgate over ssh = %s %s %s (%s); go direct gave %s %s %s", q, g.Version, g.Sum, g.GoModSum, g.Error, w.Version, w.Sum, w.GoModSum)
		}
	}

	refused := start(sshd.OtherKeyFile)
	stderr := failGo(t, t.TempDir(), goEnv(t, refused, up, "GONOSUMDB="+testenv.GitHost), "mod", "download", mod+"@v1.0.0")
	if !strings.Contains(stderr, "502") || !strings.Contains(stderr, "authentication rejected") {
		t.Errorf("go mod download with a key the Git server refuses said:\n%s\nwant a 502 naming \"authentication rejected\"", stderr)
	}
	if t.Failed() {
		t.Logf("sshd log:\n%s", sshd.Log())
	}
}
