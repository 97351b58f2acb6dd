package server_test

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modgate/modgate/internal/config"
	"github.com/modgate/modgate/internal/testenv"
)

// TestDirectPublicModules drives the real go command through modgate with
// upstream.goproxy "<fake upstream>,direct", where the fake upstream lacks
// the modules: they come from a public HTTPS Git server found through its
// go-import meta tag, and every version and h1: hash must equal what the
// go command computes itself with GOPROXY=direct. Direct fetches are
// verified against the checksum database like proxy fetches; other
// version control systems, non-https repositories and missing
// repositories answer "not found".
func TestDirectPublicModules(t *testing.T) {
	gs := testenv.NewGitServer(t, "", "") // public: no credentials anywhere
	const base = testenv.GitHost + "/public/"
	lib := gs.Repo(t, "public/lib")
	lib.Commit("first", map[string]string{
		"go.mod": "module " + base + "lib\n\ngo 1.21\n",
		"lib.go": "package lib\n\nfunc Version() string { return \"v1.0.0\" }\n",
		// export-ignore must not change what is in the zip.
		".gitattributes": "notes.txt export-ignore\n",
		"notes.txt":      "kept in the module zip\n",
	})
	lib.Tag("v1.0.0", "HEAD")
	v110 := lib.Commit("second", map[string]string{"lib.go": "package lib\n\nfunc Version() string { return \"v1.1.0\" }\n"})
	lib.Tag("v1.1.0", "HEAD")
	lib.Commit("work in progress", map[string]string{"lib.go": "package lib\n\nfunc Version() string { return \"main\" }\n"})
	bad := gs.Repo(t, "public/bad")
	bad.Commit("first", map[string]string{"go.mod": "module " + base + "bad\n\ngo 1.21\n", "bad.go": "package bad\n"})
	bad.Tag("v1.0.0", "HEAD")
	secret := gs.Repo(t, "public/secret")
	secret.Commit("first", map[string]string{"go.mod": "module " + base + "secret\n", "s.go": "package secret\n"})
	secret.Tag("v1.0.0", "HEAD")
	gs.SetMeta("public/hgmod", base+"hgmod hg https://"+testenv.GitHost+"/public/hgmod")
	gs.SetMeta("public/insecure", base+"insecure git http://"+testenv.GitHost+"/public/lib.git")
	gs.SetMeta("public/gone", base+"gone git https://"+testenv.GitHost+"/public/gone.git")

	// The reference: the go command's own GOPROXY=direct download.
	want := gs.GoDirect(t, base+"lib@v1.0.0", base+"lib@v1.1.0", base+"lib@main", base+"bad@v1.0.0")
	byVersion := map[string]testenv.GoDownload{}
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	forged := sha256.Sum256([]byte("not the code in the repository"))
	for q, d := range want {
		if d.Error != "" {
			t.Fatalf("reference go command failed on %s: %s", q, d.Error)
		}
		byVersion[d.Path+"@"+d.Version] = d
		// The test checksum database holds the hashes the go command
		// computed, except for bad@v1.0.0, whose zip hash it contradicts.
		sum := d.Sum
		if d.Path == base+"bad" {
			sum = "h1:" + base64.StdEncoding.EncodeToString(forged[:])
		}
		up.AddChecksums(d.Path, d.Version, sum, d.GoModSum)
	}

	in := startModgate(t, up, func(c *config.Config) {
		c.Upstream.GOPROXY = up.URL() + ",direct"
		c.Upstream.Direct = config.UpstreamDirect{Proxy: gs.ProxyURL, CAFile: gs.CAFile}
		c.Upstream.NoProxy = []string{base + "secret"} // a private name: never looked up in public
	})
	// The client has nothing but the go command: no git, no GONOSUMDB.
	env := goEnv(t, in, up, "PATH="+filepath.Dir(testenv.GoBinary(t)))
	for _, q := range []string{
		base + "lib@v1.0.0",
		base + "lib@v1.1.0",
		base + "lib@latest",
		base + "lib@main",
		base + "lib@" + v110[:12],
	} {
		g := downloadJSON(t, env, q)[q]
		w, ok := byVersion[g.Path+"@"+g.Version]
		switch {
		case g.Error != "":
			t.Errorf("%s through modgate: %s", q, g.Error)
		case !ok:
			t.Errorf("%s through modgate resolved to %s@%s, which the go command never did", q, g.Path, g.Version)
		case g.Sum != w.Sum || g.GoModSum != w.GoModSum:
			t.Errorf("%s: modgate gave %s %s; go direct gave %s %s", q, g.Sum, g.GoModSum, w.Sum, w.GoModSum)
		}
		if q == base+"lib@latest" && g.Version != "v1.1.0" || q == base+"lib@"+v110[:12] && g.Version != "v1.1.0" {
			t.Errorf("%s resolved to %s, want v1.1.0", q, g.Version)
		}
	}
	// The chain asked the fake upstream first, and verified with the
	// checksum database.
	reqs := strings.Join(up.Requests(), "\n")
	for _, w := range []string{"/" + base + "lib/@v/v1.0.0.info", "/sumdb/" + up.SumDBName() + "/lookup/" + base + "lib@v1.0.0"} {
		if !strings.Contains(reqs, w) {
			t.Errorf("the fake upstream never saw %s; it saw:\n%s", w, reqs)
		}
	}
	if dirs, _ := filepath.Glob(filepath.Join(in.DataDir, "git-direct", "*.git")); len(dirs) != 1 {
		t.Errorf("direct mirrors = %v, want one in {data_dir}/git-direct", dirs)
	}

	// A build works with nothing but GOPROXY.
	dir := t.TempDir()
	testenv.WriteModule(t, dir, "module example.com/app\n\ngo 1.21\n\nrequire "+base+"lib v1.1.0\n", map[string]string{
		"main.go": "package main\n\nimport \"" + base + "lib\"\n\nfunc main() { println(lib.Version()) }\n",
	})
	mustGo(t, dir, env, "mod", "tidy")
	mustGo(t, dir, env, "build", "./...")

	// A zip that contradicts the checksum database is refused with 502
	// and never stored, exactly as from a proxy.
	stderr := failGo(t, t.TempDir(), env, "mod", "download", base+"bad@v1.0.0")
	for _, w := range []string{"502 Bad Gateway", "checksum database", base + "bad@v1.0.0"} {
		if !strings.Contains(stderr, w) {
			t.Errorf("go command output lacks %q:\n%s", w, stderr)
		}
	}
	if code, body, _ := in.get(t, "/"+base+"bad/@v/v1.0.0.zip"); code != http.StatusBadGateway {
		t.Errorf("GET bad@v1.0.0.zip = %d %s, want 502", code, body)
	}
	if in.stored(base + "bad/@v/v1.0.0.zip") {
		t.Error("the zip that failed verification was stored")
	}

	// What direct cannot or must not fetch is "not found", with the reason,
	// so that a client's own fallback may try.
	for _, tt := range []struct{ mod, say string }{
		{base + "hgmod", "hg repository"},
		{base + "insecure", "https only"},
		{base + "gone", "no such repository"},
		{base + "nothing", "HTTP 404"},
	} {
		code, body, _ := in.get(t, "/"+tt.mod+"/@v/list")
		if code != http.StatusNotFound && code != http.StatusGone || !strings.Contains(string(body), tt.say) {
			t.Errorf("GET %s/@v/list = %d %q, want 404 or 410 saying %q", tt.mod, code, body, tt.say)
		}
	}
	// A module matching upstream.noproxy never reaches direct: its name is
	// not asked about in public.
	if code, body, _ := in.get(t, "/"+base+"secret/@v/list"); code != http.StatusNotFound {
		t.Errorf("GET secret/@v/list = %d %s, want 404", code, body)
	}
	for _, r := range gs.Requests() {
		if strings.Contains(r, "/public/secret") {
			t.Errorf("direct asked about a noproxy module: %s", r)
		}
	}
	if _, err := os.Stat(filepath.Join(in.DataDir, "git")); err == nil {
		t.Error("direct wrote into {data_dir}/git, the private sources' directory")
	}
}
