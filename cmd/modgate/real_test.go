package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modgate/modgate/internal/testenv"
)

// realModules are real modules at exact versions (the reachable upstream
// may refuse lists and @latest), chosen for protocol coverage: upper-case
// escaping, a /vN major version, a gopkg.in path, a module without go.mod.
var realModules = []string{
	"golang.org/x/mod@v0.42.0",
	"github.com/google/go-cmp@v0.7.0",
	"github.com/BurntSushi/toml@v1.4.0",
	"github.com/Masterminds/semver/v3@v3.3.1",
	"gopkg.in/yaml.v3@v3.0.1",
	"github.com/pkg/errors@v0.9.1",
}

// hostGoEnv reads the operator's go env, which is what modgate defaults to.
func hostGoEnv(t *testing.T) (goproxy, gosumdb string) {
	t.Helper()
	out, err := exec.Command("go", "env", "GOPROXY", "GOSUMDB").Output()
	if err != nil {
		t.Fatalf("go env: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 {
		t.Fatalf("go env printed %q", out)
	}
	return lines[0], lines[1]
}

// TestRealUpstream runs the real go command through a zero-configuration
// modgate against the upstream and checksum database of `go env`, and
// checks that the hashes equal those of a direct download. It runs only
// with MODGATE_E2E_REAL=1 (CI sets it), the one test allowed to dial
// beyond loopback (testenv.RealNetworkClient), and an unreachable upstream
// is then a failure; elsewhere the test skips loudly.
func TestRealUpstream(t *testing.T) {
	client := testenv.RealNetworkClient(t) // the one exception to the network guard
	goproxy, gosumdb := hostGoEnv(t)
	first := strings.FieldsFunc(goproxy, func(r rune) bool { return r == ',' || r == '|' })[0]
	if !reachable(client, first) {
		t.Fatal("REAL UPSTREAM UNREACHABLE (" + first + "): MODGATE_E2E_REAL=1 requires it")
	}
	if gosumdb == "off" {
		t.Fatal("go env GOSUMDB is off: the real-upstream test must verify through the checksum database")
	}
	dataDir := filepath.Join(t.TempDir(), "data")
	// Zero configuration: the upstream and checksum database come from the
	// inherited go env (GOPROXY/GOSUMDB, or the go command's defaults).
	// The machine's own proxy settings, if any, replace startBinary's dead
	// proxy: this modgate is the one allowed beyond loopback.
	env := []string{"MODGATE_DATA_DIR=" + dataDir, "HTTP_PROXY=", "HTTPS_PROXY=", "NO_PROXY="}
	for _, k := range []string{"GOPROXY", "GOSUMDB", "GONOSUMDB", "GOPRIVATE", "GONOPROXY", "GOFLAGS", "GOROOT", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	p := startBinary(t, env)

	through := download(t, testenv.GoEnv(t, p.URL, gosumdb), realModules)
	// The direct download is the one go command allowed beyond loopback.
	direct := download(t, testenv.GoEnv(t, goproxy, gosumdb, "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"), realModules)
	for _, m := range realModules {
		if through[m] == "" || through[m] != direct[m] {
			t.Errorf("%s: through modgate %q, direct %q", m, through[m], direct[m])
		}
	}

	// modgate verified what it stored against the checksum database itself
	// (its lookups are cached in the store), and the go command verified
	// through modgate's /sumdb/ proxy.
	name := strings.Fields(gosumdb)[0]
	name, _, _ = strings.Cut(name, "+")
	lookups, _ := filepath.Glob(filepath.Join(dataDir, "modules", "sumdb", name, "lookup", "golang.org", "x", "mod@v0.42.0"))
	if len(lookups) != 1 {
		t.Errorf("no checksum database lookup for golang.org/x/mod@v0.42.0 in the store")
	}
	resp, err := http.Get(p.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	metrics, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(metrics), `modgate_requests_total{artifact="sumdb"`) {
		t.Error("the go command did not use modgate's /sumdb/ proxy")
	}
	// The family is exported at zero from the start; any other value is a
	// failure.
	for line := range strings.SplitSeq(string(metrics), "\n") {
		if strings.HasPrefix(line, "modgate_verification_failures_total{") && !strings.HasSuffix(line, "} 0") {
			t.Errorf("verification failures on real modules: %s", line)
		}
	}

	// And a build through modgate alone.
	dir := t.TempDir()
	testenv.WriteModule(t, dir, "module example.com/app\n\ngo 1.21\n\nrequire github.com/Masterminds/semver/v3 v3.3.1\n", map[string]string{
		"main.go": "package main\n\nimport \"github.com/Masterminds/semver/v3\"\n\nfunc main() { println(semver.MustParse(\"1.2.3\").String()) }\n",
	})
	goenv := testenv.GoEnv(t, p.URL, gosumdb, "GOCACHE="+testenv.HostGoCache(t))
	if _, stderr, err := testenv.RunGo(t, dir, goenv, "mod", "tidy"); err != nil {
		t.Fatalf("go mod tidy through modgate: %v\n%s", err, stderr)
	}
	if out, stderr, err := testenv.RunGo(t, dir, goenv, "run", "."); err != nil || !strings.Contains(stderr+out, "1.2.3") {
		t.Fatalf("go run through modgate: %v\n%s%s", err, out, stderr)
	}
}

// download runs go mod download -json and returns module@version → h1 hash.
func download(t *testing.T, env []string, mods []string) map[string]string {
	t.Helper()
	out, stderr, err := testenv.RunGo(t, t.TempDir(), env, append([]string{"mod", "download", "-json"}, mods...)...)
	if err != nil {
		t.Fatalf("go mod download: %v\n%s\n%s", err, out, stderr)
	}
	sums := make(map[string]string)
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var d struct{ Path, Version, Sum, GoModSum string }
		if err := dec.Decode(&d); err != nil {
			t.Fatal(err)
		}
		sums[d.Path+"@"+d.Version] = d.Sum + " " + d.GoModSum
	}
	return sums
}

func reachable(c *http.Client, url string) bool {
	resp, err := c.Get(strings.TrimSuffix(url, "/") + "/golang.org/x/mod/@v/v0.42.0.info")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
