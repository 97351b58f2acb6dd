package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/modgate/modgate/internal/testenv"
)

// prefetchProject writes a project that builds against example.com/greet
// (which requires example.com/hello) and returns its directory.
func prefetchProject(t *testing.T, up *testenv.Upstream) string {
	t.Helper()
	dir := t.TempDir()
	testenv.WriteModule(t, dir, "module example.com/app\n\ngo 1.21\n\nrequire (\n\texample.com/greet v1.0.0\n\texample.com/hello v1.0.0 // indirect\n)\n", map[string]string{
		"go.sum":  up.Module("example.com/greet", "v1.0.0").GoSum() + up.Module("example.com/hello", "v1.0.0").GoSum(),
		"main.go": "package main\n\nimport \"example.com/greet\"\n\nfunc main() { println(greet.Greet()) }\n",
	})
	return dir
}

// runPrefetch runs `modgate prefetch` with args and returns its exit
// status, stdout and stderr.
func runPrefetch(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	return runModgate(t, env, append([]string{"prefetch"}, args...)...)
}

type prefetchSummary struct {
	Fetched, Cached int
	Refused, Failed []struct{ Module, Version, File, Error string }
}

func decodeSummary(t *testing.T, out string) prefetchSummary {
	t.Helper()
	var s prefetchSummary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("summary is not JSON: %v\n%s", err, out)
	}
	return s
}

// buildOffline builds the project through proxyURL with a fresh module
// cache; the test has taken the upstream down before.
func buildOffline(t *testing.T, dir, proxyURL string, up *testenv.Upstream) {
	t.Helper()
	env := testenv.GoEnv(t, proxyURL, up.VerifierKey(), "GOCACHE="+testenv.HostGoCache(t))
	if _, stderr, err := testenv.RunGo(t, dir, env, "build", "-o", os.DevNull, "."); err != nil {
		t.Fatalf("build with the upstream gone: %v\n%s", err, stderr)
	}
}

// TestPrefetchServerThenBuildOffline: prefetch through a running modgate
// warms everything the build needs; with the upstream down the real go
// command builds the project from a fresh module cache. A second run finds
// everything cached, and a module the policy denies is reported with its
// rule and exit status 1.
func TestPrefetchServerThenBuildOffline(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	cfg := filepath.Join(t.TempDir(), "modgate.yaml")
	if err := os.WriteFile(cfg, []byte("data_dir: "+filepath.Join(t.TempDir(), "data")+
		"\npolicy:\n  rules:\n    - name: no-legacy\n      deny: {modules: [example.com/legacy]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startBinary(t, []string{"GOPROXY=" + up.URL(), "GOSUMDB=" + up.VerifierKey()}, "-config", cfg)
	dir := prefetchProject(t, up)

	code, out, stderr := runPrefetch(t, nil, "--server", p.URL, "--json", "-j", "3", dir)
	if code != 0 {
		t.Fatalf("prefetch exit %d\n%s\n%s", code, out, stderr)
	}
	s := decodeSummary(t, out)
	// greet and hello: .info, .mod, .zip each. The server may have fetched
	// a .info ahead (with its go.mod) before prefetch asked for it.
	if s.Fetched+s.Cached != 6 || s.Fetched < 4 {
		t.Errorf("first run fetched %d, cached %d; want 6 files, at least 4 fetched\n%s", s.Fetched, s.Cached, out)
	}
	if n := up.Count("/example.com/hello/@v/v1.0.0.zip"); n != 1 {
		t.Errorf("upstream served hello's zip %d times, want 1", n)
	}

	code, out, _ = runPrefetch(t, nil, "--server", p.URL, "--json", dir)
	if s := decodeSummary(t, out); code != 0 || s.Fetched != 0 || s.Cached != 6 {
		t.Errorf("second run: exit %d, fetched %d, cached %d; want 0, 0, 6", code, s.Fetched, s.Cached)
	}

	up.SetDown(true)
	buildOffline(t, dir, p.URL, up)

	up.SetDown(false)
	code, out, _ = runPrefetch(t, nil, "--server", p.URL, "example.com/legacy@v2.0.0+incompatible", "example.com/hello@v1.1.0")
	if code != 1 || !strings.Contains(out, `refused example.com/legacy@v2.0.0+incompatible .mod`) || !strings.Contains(out, `no-legacy`) {
		t.Errorf("denied module: exit %d, want 1 and a refusal naming rule no-legacy:\n%s", code, out)
	}
	// Its .info may have been fetched ahead with its go.mod: "cached".
	var fetched, cached int
	if m := regexp.MustCompile(`(\d+) fetched, (\d+) already cached`).FindStringSubmatch(out); m != nil {
		fetched, _ = strconv.Atoi(m[1])
		cached, _ = strconv.Atoi(m[2])
	}
	if fetched+cached != 3 || fetched < 2 {
		t.Errorf("hello@v1.1.0 was not fetched beside the refusal:\n%s", out)
	}

	// -all: every listed version.
	code, out, stderr = runPrefetch(t, nil, "--server", p.URL, "--json", "-all", "example.com/hello")
	if s := decodeSummary(t, out); code != 0 || s.Fetched != 3+1 || s.Cached != 6 {
		// list, v1.2.0-rc.1's three files; v1.0.0 and v1.1.0 were stored before.
		t.Errorf("-all: exit %d, fetched %d, cached %d; want 0, 4, 6\n%s\n%s", code, s.Fetched, s.Cached, out, stderr)
	}
	if _, err := os.Stat(filepath.Join(dataDirOf(cfg), "modules", "example.com", "hello", "@v", "v1.2.0-rc.1.zip")); err != nil {
		t.Errorf("-all did not store v1.2.0-rc.1: %v", err)
	}
}

// dataDirOf reads data_dir from a test configuration file.
func dataDirOf(cfg string) string {
	data, _ := os.ReadFile(cfg)
	line, _, _ := strings.Cut(string(data), "\n")
	return strings.TrimPrefix(line, "data_dir: ")
}

// TestPrefetchDataDirThenServeOffline: without --server, prefetch builds
// modgate in-process from the configuration and fills its data directory;
// a modgate serving that directory with the upstream gone builds the
// project. A module the upstream does not have fails the run (exit 1).
func TestPrefetchDataDirThenServeOffline(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	data := filepath.Join(t.TempDir(), "data")
	dir := prefetchProject(t, up)
	env := []string{"GOPROXY=" + up.URL(), "GOSUMDB=" + up.VerifierKey()}

	code, out, stderr := runPrefetch(t, env, "--data-dir", data, "--json", filepath.Join(dir, "go.mod"))
	// A .info may have been fetched ahead with its go.mod (cached).
	if s := decodeSummary(t, out); code != 0 || s.Fetched+s.Cached != 6 || s.Fetched < 4 {
		t.Fatalf("prefetch: exit %d, fetched %d, cached %d; want 0 and 6 files, at least 4 fetched\n%s\n%s", code, s.Fetched, s.Cached, out, stderr)
	}
	if _, err := os.Stat(filepath.Join(data, "modules", "example.com", "greet", "@v", "v1.0.0.zip")); err != nil {
		t.Errorf("greet's zip is not in the data directory: %v", err)
	}

	code, out, _ = runPrefetch(t, env, "--data-dir", data, "--json", "example.com/nosuch@v1.0.0")
	if s := decodeSummary(t, out); code != 1 || len(s.Failed) != 1 || s.Failed[0].Module != "example.com/nosuch" {
		t.Errorf("missing module: exit %d, summary %+v; want 1 and one failure", code, s)
	}

	up.SetDown(true)
	p := startBinary(t, env, "-data-dir", data)
	buildOffline(t, dir, p.URL, up)
}

// TestPrefetchWithToken: a modgate that requires a token refuses a
// prefetch without one; MODGATE_TOKEN or the .netrc entry for its host
// (the go command's rule) gets everything through.
func TestPrefetchWithToken(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	dir := t.TempDir()
	cfg := filepath.Join(dir, "modgate.yaml")
	if err := os.WriteFile(cfg, []byte("data_dir: "+filepath.Join(dir, "data")+
		"\nauth:\n  anonymous:\n    enabled: false\n  tokens:\n    enabled: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := mustRun(t, nil, "token", "create", "-config", cfg, "--name", "ci", "--scope", "read")
	var token string
	for l := range strings.Lines(out) {
		if f := strings.Fields(l); len(f) == 1 && len(f[0]) > 20 {
			token = f[0]
			break
		}
	}
	if token == "" {
		t.Fatalf("no token in:\n%s", out)
	}
	p := startBinary(t, []string{"GOPROXY=" + up.URL(), "GOSUMDB=" + up.VerifierKey()}, "-config", cfg)

	if code, out, _ := runPrefetch(t, nil, "--server", p.URL, "example.com/hello@v1.0.0"); code != 1 || !strings.Contains(out, "1 failed") || !strings.Contains(out, "anonymous clients may not read") {
		t.Errorf("without a token: exit %d, want 1 and modgate's refusal:\n%s", code, out)
	}
	if code, out, stderr := runPrefetch(t, []string{"MODGATE_TOKEN=" + token}, "--server", p.URL, "example.com/hello@v1.0.0"); code != 0 {
		t.Errorf("with MODGATE_TOKEN: exit %d\n%s\n%s", code, out, stderr)
	}
	netrc := filepath.Join(dir, "netrc")
	host := strings.TrimPrefix(p.URL, "http://")
	if err := os.WriteFile(netrc, []byte("machine "+host+"\n  login token\n  password "+token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, stderr := runPrefetch(t, []string{"NETRC=" + netrc}, "--server", p.URL, "example.com/greet@v1.0.0"); code != 0 {
		t.Errorf("with .netrc: exit %d\n%s\n%s", code, out, stderr)
	}
}
