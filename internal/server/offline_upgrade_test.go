package server_test

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modgate/modgate/internal/config"
	"github.com/modgate/modgate/internal/testenv"
)

// upgradeFixtures are the fixtures plus a module whose package lives two
// directories down (the go command probes example.com/deep/sub/pkg and
// example.com/deep/sub as module paths) and a module with only a
// pseudo-version (empty list; its @latest is all there is).
func upgradeFixtures(t *testing.T) []*testenv.Module {
	t.Helper()
	mods := testenv.Fixtures(t)
	for _, archive := range []string{
		"module example.com/deep\nversion v1.0.0\ntime 2024-03-01T00:00:00Z\n" +
			"-- go.mod --\nmodule example.com/deep\n\ngo 1.21\n" +
			"-- sub/pkg/pkg.go --\npackage pkg\n\nfunc Deep() string { return \"deep\" }\n",
		"module example.com/pseudo\nversion v0.0.0-20240101000000-abcdefabcdef\ntime 2024-01-01T00:00:00Z\n" +
			"-- go.mod --\nmodule example.com/pseudo\n\ngo 1.21\n" +
			"-- pseudo.go --\npackage pseudo\n\nfunc Pseudo() string { return \"pseudo\" }\n",
	} {
		m, err := testenv.ParseModule([]byte(archive))
		if err != nil {
			t.Fatal(err)
		}
		mods = append(mods, m)
	}
	return mods
}

// TestOfflineUpgrades: after a project was upgraded once online, `go list
// -m -u all` and `go get -u ./...` keep working with the upstream down and
// modgate restarted: the "not found" answers to package-path probes are
// remembered on disk and served as they were, not turned into 502s.
func TestOfflineUpgrades(t *testing.T) {
	up := testenv.NewUpstream(t, upgradeFixtures(t))
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	cfg.Upstream.GOPROXY = up.URL()
	cfg.SumDB.GOSUMDB = up.VerifierKey()
	cfg.Upstream.Retries = 0
	cfg.Log.Level = config.LogLevelWarn
	in := startConfig(t, cfg)

	dir := t.TempDir()
	testenv.WriteModule(t, dir, "module example.com/app\n\ngo 1.21\n\nrequire (\n"+
		"\texample.com/deep v1.0.0\n\texample.com/pseudo v0.0.0-20240101000000-abcdefabcdef\n\texample.com/greet v1.0.0\n)\n",
		map[string]string{"main.go": "package main\n\nimport (\n\t\"example.com/deep/sub/pkg\"\n\t\"example.com/greet\"\n\t\"example.com/pseudo\"\n)\n\n" +
			"func main() { println(pkg.Deep(), greet.Greet(), pseudo.Pseudo()) }\n"})
	env := goEnv(t, in, up)
	mustGo(t, dir, env, "mod", "tidy")
	mustGo(t, dir, env, "get", "-u", "./...")
	online := mustGo(t, dir, env, "list", "-m", "-u", "all")

	// Down and restarted: nothing but the data directory remembers.
	in.shutdown(t)
	up.SetDown(true)
	in = startConfig(t, cfg)
	// The client keeps its module cache, as a developer's machine does;
	// list and latest queries still go to the proxy.
	var modcache string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "GOMODCACHE="); ok {
			modcache = v
		}
	}
	env = goEnv(t, in, up, "GOMODCACHE="+modcache)
	offline := mustGo(t, dir, env, "list", "-m", "-u", "all")
	if offline != online {
		t.Errorf("go list -m -u all offline =\n%s\nonline it was\n%s", offline, online)
	}
	mustGo(t, dir, env, "get", "-u", "./...")

	code, body, hdr := in.get(t, "/example.com/deep/sub/pkg/@v/list")
	if code != http.StatusNotFound || hdr.Get("X-Modgate-Cache") != "stale" || hdr.Get("Warning") == "" {
		t.Errorf("package-path probe offline = %d %q (X-Modgate-Cache %q, Warning %q); want the remembered 404, marked stale",
			code, body, hdr.Get("X-Modgate-Cache"), hdr.Get("Warning"))
	}
	// The records are not in the module tree: the data directory stays a
	// file:// GOPROXY.
	if in.stored("example.com/deep/sub/pkg/@v/list") || !strings.Contains(online, "example.com/pseudo") {
		t.Error("a not-found answer was stored in the module tree")
	}
}
