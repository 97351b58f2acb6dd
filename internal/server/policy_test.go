package server_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/audit"
	"github.com/modgate/modgate/internal/config"
	"github.com/modgate/modgate/internal/testenv"
)

// The policy end to end: a config file with a policy section, modgate in
// front of the fake upstream, and the real go command, which shows the
// developer what modgate answered.

// policyModule builds a fixture module version from a txtar archive (see
// testenv.ParseModule).
func policyModule(t *testing.T, archive string) *testenv.Module {
	t.Helper()
	m, err := testenv.ParseModule([]byte(archive))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// simpleModule is a module version with one package and the given LICENSE
// text ("" for none), dated at commit time when (RFC 3339).
func simpleModule(t *testing.T, path, version, when, license string) *testenv.Module {
	t.Helper()
	name := path[strings.LastIndex(path, "/")+1:]
	archive := fmt.Sprintf("module %s\nversion %s\ntime %s\n-- go.mod --\nmodule %s\n\ngo 1.21\n-- %s.go --\npackage %s\n\n// Version is the release.\nconst Version = %q\n",
		path, version, when, path, name, name, version)
	if license != "" {
		archive += "-- LICENSE --\n" + license
	}
	return policyModule(t, archive)
}

// policyFixtures are the starter fixtures plus modules the policy tests
// refuse or allow.
func policyFixtures(t *testing.T, extra ...*testenv.Module) []*testenv.Module {
	t.Helper()
	return append(testenv.Fixtures(t), extra...)
}

// writeConfigFile writes a modgate config file and gives it a modification
// time of its own: the server notices a change by the file's mtime, which
// a coarse file system clock could otherwise leave unchanged.
func writeConfigFile(t *testing.T, file, content string) {
	t.Helper()
	var prev time.Time
	if fi, err := os.Stat(file); err == nil {
		prev = fi.ModTime()
	}
	if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	mtime := time.Now()
	if !mtime.After(prev) {
		mtime = prev.Add(time.Second)
	}
	if err := os.Chtimes(file, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

// startPolicy starts modgate from a config file holding content (a policy
// section, usually) in front of up, as startModgate does otherwise; edit
// may change the loaded configuration. It returns the file, so that a test
// can change it and watch the policy reload.
func startPolicy(t *testing.T, up *testenv.Upstream, content string, edit func(*config.Config)) (*instance, string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "modgate.yaml")
	writeConfigFile(t, file, content)
	cfg, err := config.Load(file, func(string) string { return "" })
	if err != nil {
		t.Fatalf("loading the test config: %v", err)
	}
	return startWith(t, cfg, up, edit), file
}

// listTTL makes version lists expire at once, so every list request asks
// the upstream again and sees new versions.
func listTTL(c *config.Config) { c.Cache.ListTTL = config.Duration{Duration: time.Millisecond} }

// outputHas fails the test for every want that out lacks.
func outputHas(t *testing.T, what, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, out)
		}
	}
}

// upstreamAsked returns the upstream requests that mention module's path.
func upstreamAsked(up *testenv.Upstream, module string) []string {
	var asked []string
	for _, p := range up.Requests() {
		if strings.Contains(p, "/"+module+"/") || strings.Contains(p, "/"+module+"@") {
			asked = append(asked, p)
		}
	}
	return asked
}

// versionsOf runs `go list -m -versions module` and returns the versions.
func versionsOf(t *testing.T, env []string, module string) string {
	t.Helper()
	out := strings.TrimSpace(mustGo(t, t.TempDir(), env, "list", "-m", "-versions", module))
	got, ok := strings.CutPrefix(out, module)
	if !ok {
		t.Fatalf("go list -m -versions %s = %q", module, out)
	}
	return strings.TrimSpace(got)
}

// goGetLatest runs `go get module@latest` in a fresh consumer project and
// returns the version it chose.
func goGetLatest(t *testing.T, env []string, module string) string {
	t.Helper()
	dir := t.TempDir()
	testenv.WriteModule(t, dir, "module example.com/app\n\ngo 1.21\n", nil)
	mustGo(t, dir, env, "get", module+"@latest")
	out := mustGo(t, dir, env, "list", "-m", "-f", "{{.Version}}", module)
	return strings.TrimSpace(out)
}

// waitAuditRecord waits until the audit log has a record for which match
// is true (records are written in the background) and returns it.
func waitAuditRecord(t *testing.T, in *instance, what string, match func(audit.Record) bool) audit.Record {
	t.Helper()
	var found *audit.Record
	var seen []string
	pollUntil(t, 10*time.Second, func() string {
		seen = seen[:0]
		err := audit.Query(filepath.Join(in.DataDir, "audit"), audit.Filter{}, func(r audit.Record) error {
			if match(r) {
				found = &r
				return audit.ErrStop
			}
			seen = append(seen, fmt.Sprintf("%+v", r))
			return nil
		})
		if err != nil {
			return err.Error()
		}
		if found == nil {
			return fmt.Sprintf("no audit record %s; the log has:\n%s", what, strings.Join(seen, "\n"))
		}
		return ""
	})
	return *found
}

const denyEvil = `
policy:
  rules:
    - name: no-evil
      reason: use example.com/good instead
      contact: security@corp.example
      deny:
        modules: [example.com/evil]
`

// TestPolicyDeniedModule: a module denied as a whole fails the go command
// with the rule, its reason and contact in the developer's terminal, every
// file of it answers 403, and modgate never asks the upstream for it.
func TestPolicyDeniedModule(t *testing.T) {
	t.Parallel()
	evil := simpleModule(t, "example.com/evil", "v1.0.0", "2024-01-01T00:00:00Z", "")
	up := testenv.NewUpstream(t, policyFixtures(t, evil))
	in, _ := startPolicy(t, up, denyEvil, nil)
	env := goEnv(t, in, up)

	stderr := failGo(t, t.TempDir(), env, "mod", "download", "example.com/evil@v1.0.0")
	outputHas(t, "go mod download output", stderr,
		"403 Forbidden",
		`modgate: example.com/evil@v1.0.0 blocked by rule "no-evil": module is denied; use example.com/good instead; contact security@corp.example`)

	dir := t.TempDir()
	testenv.WriteModule(t, dir, "module example.com/app\n\ngo 1.21\n", nil)
	stderr = failGo(t, dir, env, "get", "example.com/evil@latest")
	outputHas(t, "go get output", stderr, `blocked by rule "no-evil"`)

	for _, p := range []string{"@v/list", "@latest", "@v/v1.0.0.info", "@v/v1.0.0.mod", "@v/v1.0.0.zip"} {
		code, body, _ := in.get(t, "/example.com/evil/"+p)
		if code != http.StatusForbidden || !strings.Contains(string(body), `blocked by rule "no-evil"`) {
			t.Errorf("GET %s: %d %q, want 403 naming the rule", p, code, body)
		}
	}
	if asked := upstreamAsked(up, "example.com/evil"); len(asked) > 0 {
		t.Errorf("modgate asked the upstream for the denied module: %q", asked)
	}
	// Other modules are served as usual.
	goDownload(t, env, "example.com/hello@v1.0.0")

	rec := waitAuditRecord(t, in, "of the refused zip", func(r audit.Record) bool {
		return r.Module == "example.com/evil" && r.File == "zip"
	})
	if rec.Result != "blocked" || rec.Rule != "no-evil" {
		t.Errorf("audit record of the refused zip: %+v, want result blocked, rule no-evil", rec)
	}
}

// TestPolicyLatestSkipsBlockedVersion: a version rule hides the newest
// release from list and latest, so `go get @latest` picks the highest
// allowed one; the blocked version's .zip answers 403 while its .info and
// .mod are served, so a build whose module graph mentions it still works.
func TestPolicyLatestSkipsBlockedVersion(t *testing.T) {
	t.Parallel()
	// example.com/greetnew requires the blocked version: the go command
	// reads its go.mod for the module graph but builds a newer one.
	greetnew := policyModule(t, `module example.com/greetnew
version v1.0.0
time 2024-03-01T10:00:00Z
-- go.mod --
module example.com/greetnew

go 1.21

require example.com/hello v1.1.0
-- greetnew.go --
package greetnew

import "example.com/hello"

// Greet greets.
func Greet() string { return hello.Hello() }
`)
	up := testenv.NewUpstream(t, policyFixtures(t, greetnew))
	in, _ := startPolicy(t, up, `
policy:
  rules:
    - name: hello-1.1-broken
      reason: v1.1.0 breaks the greeting
      deny:
        modules: [example.com/hello]
        versions: [v1.1.0]
`, nil)
	env := goEnv(t, in, up)

	if got, want := versionsOf(t, env, "example.com/hello"), "v1.0.0 v1.2.0-rc.1"; got != want {
		t.Errorf("go list -m -versions example.com/hello = %q, want %q (v1.1.0 hidden)", got, want)
	}
	if got := goGetLatest(t, env, "example.com/hello"); got != "v1.0.0" {
		t.Errorf("go get example.com/hello@latest chose %s, want v1.0.0, the highest allowed release", got)
	}
	code, body, _ := in.get(t, "/example.com/hello/@latest")
	var latest struct{ Version string }
	if code != http.StatusOK || json.Unmarshal(body, &latest) != nil || latest.Version != "v1.0.0" {
		t.Errorf("GET @latest: %d %s, want 200 naming v1.0.0", code, body)
	}

	stderr := failGo(t, t.TempDir(), env, "mod", "download", "example.com/hello@v1.1.0")
	outputHas(t, "go mod download output", stderr, "403 Forbidden",
		`example.com/hello@v1.1.0 blocked by rule "hello-1.1-broken": version is in the denied range v1.1.0; v1.1.0 breaks the greeting`)
	for _, tt := range []struct {
		file string
		want int
	}{
		{"v1.1.0.info", http.StatusOK},
		{"v1.1.0.mod", http.StatusOK},
		{"v1.1.0.zip", http.StatusForbidden},
		{"v1.0.0.zip", http.StatusOK},
	} {
		if code, body, _ := in.get(t, "/example.com/hello/@v/"+tt.file); code != tt.want {
			t.Errorf("GET %s: %d %q, want %d", tt.file, code, body, tt.want)
		}
	}

	// A build selecting v1.2.0-rc.1 whose graph names v1.1.0 (through
	// example.com/greetnew). "go 1.16" turns module graph pruning off,
	// so the go command reads every go.mod in the graph.
	dir := t.TempDir()
	testenv.WriteModule(t, dir, "module example.com/app\n\ngo 1.16\n\nrequire (\n\texample.com/greetnew v1.0.0\n\texample.com/hello v1.2.0-rc.1\n)\n", map[string]string{
		"main.go": "package main\n\nimport \"example.com/greetnew\"\n\nfunc main() { println(greetnew.Greet()) }\n",
	})
	benv := goEnv(t, in, up, "GOCACHE="+testenv.HostGoCache(t))
	mustGo(t, dir, benv, "mod", "tidy")
	mustGo(t, dir, benv, "build", "-o", filepath.Join(dir, "app"), ".")
	cache := filepath.Join(envValue(t, benv, "GOMODCACHE"), "cache", "download", "example.com", "hello", "@v")
	for file, want := range map[string]bool{"v1.1.0.mod": true, "v1.1.0.zip": false, "v1.2.0-rc.1.zip": true} {
		if _, err := os.Stat(filepath.Join(cache, file)); (err == nil) != want {
			t.Errorf("after the build, %s in the module cache: %v, want present=%v", file, err, want)
		}
	}
}

// envValue returns the value of key in a go command environment.
func envValue(t *testing.T, env []string, key string) string {
	t.Helper()
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	t.Fatalf("no %s in the go command's environment", key)
	return ""
}

// TestPolicyCooldownHidesFreshVersion: a version that appears in the list
// of a module modgate already watches is young, whatever its .info time
// says (here back-dated by years, as tagging an old commit does): it is
// hidden from list and latest and its zip is refused with the rule and the
// age; a module exempt from the rule shows its new version at once.
func TestPolicyCooldownHidesFreshVersion(t *testing.T) {
	t.Parallel()
	up := testenv.NewUpstream(t, policyFixtures(t,
		simpleModule(t, "example.com/fresh", "v1.0.0", "2024-01-01T00:00:00Z", ""),
		simpleModule(t, "example.com/trusted", "v1.0.0", "2024-01-01T00:00:00Z", ""),
	))
	in, _ := startPolicy(t, up, `
policy:
  rules:
    - name: cooldown
      reason: new releases wait three days
      cooldown:
        min_age: 72h
        exempt: [example.com/trusted]
`, listTTL)
	env := goEnv(t, in, up)

	// modgate starts watching both modules; their existing versions are
	// dated by their .info times, years ago.
	for _, mod := range []string{"example.com/fresh", "example.com/trusted"} {
		if got := versionsOf(t, env, mod); got != "v1.0.0" {
			t.Fatalf("go list -m -versions %s = %q, want v1.0.0", mod, got)
		}
	}
	goDownload(t, env, "example.com/fresh@v1.0.0")

	// New releases, tagged on commits dated long ago.
	up.AddModule(simpleModule(t, "example.com/fresh", "v1.1.0", "2020-01-01T00:00:00Z", ""))
	up.AddModule(simpleModule(t, "example.com/trusted", "v1.1.0", "2020-01-01T00:00:00Z", ""))

	if got := versionsOf(t, env, "example.com/fresh"); got != "v1.0.0" {
		t.Errorf("go list -m -versions example.com/fresh = %q, want v1.0.0 (v1.1.0 too young)", got)
	}
	if got := goGetLatest(t, env, "example.com/fresh"); got != "v1.0.0" {
		t.Errorf("go get example.com/fresh@latest chose %s, want v1.0.0", got)
	}
	stderr := failGo(t, t.TempDir(), env, "mod", "download", "example.com/fresh@v1.1.0")
	outputHas(t, "go mod download output", stderr, "403 Forbidden",
		// The age is a few seconds at most, however slow the machine.
		`example.com/fresh@v1.1.0 blocked by rule "cooldown": version is `,
		` old (since it first appeared in the module's version list), younger than the minimum age 72h; allowed from `,
		"; new releases wait three days")
	if code, _, _ := in.get(t, "/example.com/fresh/@v/v1.1.0.info"); code != http.StatusOK {
		t.Errorf("GET v1.1.0.info of the young version: %d, want 200", code)
	}
	if !in.stored("example.com/fresh/@v/v1.1.0.info") || in.stored("example.com/fresh/@v/v1.1.0.zip") {
		t.Error("want the young version's .info stored (the go command reads it) and its zip never fetched")
	}

	if got, want := versionsOf(t, env, "example.com/trusted"), "v1.0.0 v1.1.0"; got != want {
		t.Errorf("go list -m -versions example.com/trusted (exempt) = %q, want %q", got, want)
	}
	if got := goGetLatest(t, env, "example.com/trusted"); got != "v1.1.0" {
		t.Errorf("go get example.com/trusted@latest (exempt) chose %s, want v1.1.0", got)
	}
}

// osvVuln is one synthetic vulnerability of a fixture OSV database.
type osvVuln struct {
	id, module, fixed string // fixed "" for none
	aliases           []string
}

// entry returns the OSV entry's JSON.
func (v osvVuln) entry(t *testing.T) []byte {
	events := []map[string]string{{"introduced": "0"}}
	if v.fixed != "" {
		events = append(events, map[string]string{"fixed": strings.TrimPrefix(v.fixed, "v")})
	}
	e := map[string]any{
		"schema_version": "1.3.1",
		"id":             v.id,
		"modified":       "2026-01-02T03:04:05Z",
		"published":      "2026-01-01T00:00:00Z",
		"aliases":        v.aliases,
		"summary":        "Synthetic vulnerability in " + v.module,
		"details":        "A test fixture.",
		// govulncheck prints the URL under "More info" (and fails without one).
		"database_specific": map[string]string{"url": "https://vuln.corp.example/" + v.id},
		"affected": []any{map[string]any{
			"package": map[string]string{"name": v.module, "ecosystem": "Go"},
			"ranges":  []any{map[string]any{"type": "SEMVER", "events": events}},
		}},
	}
	data, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// serveVulnDB serves vulns as a vulnerability database in the served OSV
// layout (index/db.json, index/modules.json, ID/<id>.json) on 127.0.0.1,
// and returns its URL and the files by path.
func serveVulnDB(t *testing.T, vulns ...osvVuln) (string, map[string][]byte) {
	t.Helper()
	type ref struct {
		ID       string `json:"id"`
		Modified string `json:"modified"`
		Fixed    string `json:"fixed,omitempty"`
	}
	type mod struct {
		Path  string `json:"path"`
		Vulns []ref  `json:"vulns"`
	}
	files := map[string][]byte{"/index/db.json": []byte(`{"modified":"2026-01-02T03:04:05Z"}`)}
	var mods []mod
	for _, v := range vulns {
		files["/ID/"+v.id+".json"] = v.entry(t)
		mods = append(mods, mod{Path: v.module, Vulns: []ref{{ID: v.id, Modified: "2026-01-02T03:04:05Z", Fixed: strings.TrimPrefix(v.fixed, "v")}}})
	}
	index, err := json.Marshal(mods)
	if err != nil {
		t.Fatal(err)
	}
	files["/index/modules.json"] = index
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(data)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, files
}

// TestPolicyVulnerabilities: modgate syncs a vulnerability database from
// a URL, blocks a vulnerable version with the entry's ID and fixed version
// in the go command's output, serves the fixed version and a version whose
// vulnerability is an accepted risk, and serves its copy of the database
// again under /vulndb/.
func TestPolicyVulnerabilities(t *testing.T) {
	t.Parallel()
	dbURL, dbFiles := serveVulnDB(t,
		osvVuln{id: "GO-2099-0101", module: "example.com/vuln", fixed: "v1.0.1", aliases: []string{"CVE-2099-0101"}},
		osvVuln{id: "GO-2099-0102", module: "example.com/risky", aliases: []string{"CVE-2099-0102"}},
	)
	up := testenv.NewUpstream(t, policyFixtures(t,
		simpleModule(t, "example.com/vuln", "v1.0.0", "2024-01-01T00:00:00Z", ""),
		simpleModule(t, "example.com/vuln", "v1.0.1", "2024-02-01T00:00:00Z", ""),
		simpleModule(t, "example.com/risky", "v1.0.0", "2024-01-01T00:00:00Z", ""),
	))
	// A date accepts the risk through that day (UTC).
	lastDay := time.Now().AddDate(1, 0, 0).UTC()
	until := lastDay.Format(time.DateOnly)
	expires := time.Date(lastDay.Year(), lastDay.Month(), lastDay.Day()+1, 0, 0, 0, 0, time.UTC).Format(time.RFC3339)
	in, _ := startPolicy(t, up, fmt.Sprintf(`
policy:
  vulndb:
    url: %s
  rules:
    - name: no-vulns
      contact: security@corp.example
      vulnerabilities:
        allow:
          - id: CVE-2099-0102
            until: %q
`, dbURL, until), nil)
	env := goEnv(t, in, up)

	// The rule checks nothing until the first sync has finished, and
	// modgate serves its copy only from then on.
	pollUntil(t, 10*time.Second, func() string {
		code, body, _ := in.get(t, "/vulndb/index/db.json")
		if code != http.StatusOK {
			return fmt.Sprintf("GET /vulndb/index/db.json: %d %s", code, body)
		}
		return ""
	})
	for _, p := range []string{"/index/db.json", "/ID/GO-2099-0101.json", "/ID/GO-2099-0102.json"} {
		code, body, _ := in.get(t, "/vulndb"+p)
		if code != http.StatusOK || string(body) != string(dbFiles[p]) {
			t.Errorf("GET /vulndb%s: %d %s\nwant 200 %s", p, code, body, dbFiles[p])
		}
	}
	code, body, _ := in.get(t, "/vulndb/index/modules.json")
	if code != http.StatusOK || !strings.Contains(string(body), `"example.com/vuln"`) {
		t.Errorf("GET /vulndb/index/modules.json: %d %s", code, body)
	}

	stderr := failGo(t, t.TempDir(), env, "mod", "download", "example.com/vuln@v1.0.0")
	outputHas(t, "go mod download output", stderr, "403 Forbidden",
		`example.com/vuln@v1.0.0 blocked by rule "no-vulns": GO-2099-0101 (fixed in v1.0.1); contact security@corp.example`)
	if got := versionsOf(t, env, "example.com/vuln"); got != "v1.0.1" {
		t.Errorf("go list -m -versions example.com/vuln = %q, want v1.0.1 alone", got)
	}
	goDownload(t, env, "example.com/vuln@v1.0.1", "example.com/risky@v1.0.0")

	// The explain endpoint tells why the accepted risk passes.
	code, body, _ = in.get(t, "/policy/explain?module=example.com/risky&version=v1.0.0")
	outputHas(t, "explain of the accepted risk", string(body), `"verdict": "allow"`, "GO-2099-0102 (CVE-2099-0102) accepted until "+expires)
	if code != http.StatusOK {
		t.Errorf("GET /policy/explain: %d", code)
	}
}

// TestGovulncheckAgainstModgate runs the real govulncheck against
// modgate's copy of the vulnerability database (-db <modgate>/vulndb), the
// way a CI job in a closed network would: it must find the synced entry
// for a project that requires the vulnerable version, name the fixed
// version, and find nothing once the project is upgraded.
func TestGovulncheckAgainstModgate(t *testing.T) {
	t.Parallel()
	govulncheck := testenv.Govulncheck(t)
	dbURL, _ := serveVulnDB(t, osvVuln{id: "GO-2099-0201", module: "example.com/vuln", fixed: "v1.0.1", aliases: []string{"CVE-2099-0201"}})
	up := testenv.NewUpstream(t, policyFixtures(t,
		simpleModule(t, "example.com/vuln", "v1.0.0", "2024-01-01T00:00:00Z", ""),
		simpleModule(t, "example.com/vuln", "v1.0.1", "2024-02-01T00:00:00Z", ""),
	))
	in, _ := startPolicy(t, up, fmt.Sprintf("policy:\n  vulndb:\n    url: %s\n", dbURL), nil)
	pollUntil(t, 10*time.Second, func() string {
		if code, body, _ := in.get(t, "/vulndb/index/db.json"); code != http.StatusOK {
			return fmt.Sprintf("GET /vulndb/index/db.json: %d %s", code, body)
		}
		return ""
	})
	// -mod=mod lets the go command fill go.sum through modgate.
	env := goEnv(t, in, up, "GOFLAGS=-modcacherw -mod=mod")
	scan := func(version string) (string, error) {
		dir := t.TempDir()
		testenv.WriteModule(t, dir, "module example.com/app\n\ngo 1.21\n\nrequire example.com/vuln "+version+"\n", map[string]string{
			"main.go": "package main\n\nimport \"example.com/vuln\"\n\nfunc main() { println(vuln.Version) }\n",
		})
		cmd := exec.CommandContext(t.Context(), govulncheck, "-db", in.URL+"/vulndb", "-scan", "module")
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := scan("v1.0.0")
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Errorf("govulncheck on a vulnerable project: %v, want exit status 3 (vulnerabilities found)\n%s", err, out)
	}
	outputHas(t, "govulncheck output", out, "GO-2099-0201", "example.com/vuln@v1.0.0", "Fixed in: example.com/vuln@v1.0.1")
	if out, err := scan("v1.0.1"); err != nil || strings.Contains(out, "GO-2099-0201") {
		t.Errorf("govulncheck on the upgraded project: %v, want no finding\n%s", err, out)
	}
}

// licenseText returns a licence text from the policy package's test data.
func licenseText(t *testing.T, id string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "policy", "testdata", "licenses", id+".txt"))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestPolicyForbiddenLicense: a module whose zip carries a licence outside
// the allow list is refused once modgate has read the licence from the
// zip; a module under an allowed licence is served. The refused zip stays
// stored (lifting the rule then serves it without asking the upstream).
func TestPolicyForbiddenLicense(t *testing.T) {
	t.Parallel()
	up := testenv.NewUpstream(t, policyFixtures(t,
		simpleModule(t, "example.com/agpl", "v1.0.0", "2024-01-01T00:00:00Z", licenseText(t, "AGPL-3.0")),
		simpleModule(t, "example.com/mit", "v1.0.0", "2024-01-01T00:00:00Z", licenseText(t, "MIT")),
	))
	in, _ := startPolicy(t, up, `
policy:
  rules:
    - name: licences
      reason: ask legal before using copyleft code
      licenses:
        allow: [MIT, Apache-2.0, BSD-3-Clause]
`, nil)
	env := goEnv(t, in, up)

	stderr := failGo(t, t.TempDir(), env, "mod", "download", "example.com/agpl@v1.0.0")
	outputHas(t, "go mod download output", stderr, "403 Forbidden",
		`example.com/agpl@v1.0.0 blocked by rule "licences": licence AGPL-3.0 is not allowed (allowed: MIT, Apache-2.0, BSD-3-Clause); ask legal before using copyleft code`)
	if got := goDownload(t, env, "example.com/mit@v1.0.0"); got[0].Error != "" {
		t.Errorf("MIT module: %s", got[0].Error)
	}
	// Once the licence is known, list and latest leave the version out.
	if got := versionsOf(t, env, "example.com/agpl"); got != "" {
		t.Errorf("go list -m -versions example.com/agpl = %q, want no version", got)
	}
	if !in.stored("example.com/agpl/@v/v1.0.0.zip") {
		t.Error("the refused zip is not stored; lifting the rule would fetch it again")
	}
	code, body, _ := in.get(t, "/policy/explain?module=example.com/mit&version=v1.0.0")
	outputHas(t, "explain of the MIT module", string(body), `"outcome": "no-match"`, `"detail": "licence MIT is allowed"`)
	if code != http.StatusOK {
		t.Errorf("GET /policy/explain: %d", code)
	}
}

// TestPolicyLicenseJudgedBeforeListing: a module relicensed under a
// forbidden licence in its newest version, never downloaded before.
// "go get @latest" takes the newest version with an allowed licence: the
// list and latest answers judge the licence of the version the go command
// would take (fetching its zip) instead of listing it and refusing it.
func TestPolicyLicenseJudgedBeforeListing(t *testing.T) {
	t.Parallel()
	up := testenv.NewUpstream(t, policyFixtures(t,
		simpleModule(t, "example.com/relicensed", "v1.0.0", "2024-01-01T00:00:00Z", licenseText(t, "MIT")),
		simpleModule(t, "example.com/relicensed", "v1.1.0", "2024-02-01T00:00:00Z", licenseText(t, "AGPL-3.0")),
		simpleModule(t, "example.com/relicensed", "v1.2.0-rc.1", "2024-03-01T00:00:00Z", licenseText(t, "AGPL-3.0")),
	))
	in, _ := startPolicy(t, up, `
policy:
  rules:
    - name: licences
      licenses:
        allow: [MIT]
`, nil)
	env := goEnv(t, in, up)
	if got := goGetLatest(t, env, "example.com/relicensed"); got != "v1.0.0" {
		t.Errorf("go get example.com/relicensed@latest chose %q, want v1.0.0 (v1.1.0 is AGPL)", got)
	}
	// The pre-release is no candidate while a release is allowed, so its
	// licence is judged only when its zip is asked for.
	if got := versionsOf(t, env, "example.com/relicensed"); got != "v1.0.0 v1.2.0-rc.1" {
		t.Errorf("go list -m -versions = %q, want v1.0.0 v1.2.0-rc.1 (v1.1.0 judged and left out)", got)
	}
	code, body, _ := in.get(t, "/example.com/relicensed/@latest")
	if code != http.StatusOK || !strings.Contains(string(body), `"Version":"v1.0.0"`) {
		t.Errorf("GET @latest = %d %s, want v1.0.0", code, body)
	}
	// Only the candidates were fetched to judge them, not every version.
	if n := up.Count("/example.com/relicensed/@v/v1.2.0-rc.1.zip"); n != 0 {
		t.Errorf("the pre-release's zip was fetched %d times; only candidates the go command would take need judging", n)
	}
}

// TestPolicyWarnAndDryRun: a warn rule serves the file with the
// X-Modgate-Policy-Warning header and an audit record naming the rule and
// the warning; a dry-run rule, and every rule of a globally dry-run
// policy, serves everything and still records the rule that matched.
func TestPolicyWarnAndDryRun(t *testing.T) {
	t.Parallel()
	evil := simpleModule(t, "example.com/evil", "v1.0.0", "2024-01-01T00:00:00Z", "")
	up := testenv.NewUpstream(t, policyFixtures(t, evil))

	t.Run("warn", func(t *testing.T) {
		t.Parallel()
		in, _ := startPolicy(t, up, `
policy:
  rules:
    - name: old-hello
      action: warn
      reason: upgrade to v1.1.0
      deny:
        modules: [example.com/hello]
        versions: ["<v1.1.0"]
    - name: trial
      dry_run: true
      deny:
        modules: [example.com/greet]
`, nil)
		env := goEnv(t, in, up)
		goDownload(t, env, "example.com/hello@v1.0.0", "example.com/greet@v1.0.0")
		// A warned version stays in the list: warnings never hide.
		if got, want := versionsOf(t, env, "example.com/hello"), "v1.0.0 v1.1.0 v1.2.0-rc.1"; got != want {
			t.Errorf("go list -m -versions example.com/hello = %q, want %q", got, want)
		}

		code, body, hdr := in.get(t, "/example.com/hello/@v/v1.0.0.zip")
		if code != http.StatusOK || !bytes.Equal(body, up.Module("example.com/hello", "v1.0.0").Zip) {
			t.Errorf("GET the warned zip: %d, want 200 with the module's zip", code)
		}
		if got := hdr.Get("X-Modgate-Policy-Warning"); got != `rule "old-hello": version is in the denied range <v1.1.0; upgrade to v1.1.0` {
			t.Errorf("X-Modgate-Policy-Warning = %q", got)
		}
		if code, _, hdr := in.get(t, "/example.com/hello/@v/v1.1.0.zip"); code != http.StatusOK || hdr.Get("X-Modgate-Policy-Warning") != "" {
			t.Errorf("GET a version the rule does not match: %d, warning %q; want 200 without a warning", code, hdr.Get("X-Modgate-Policy-Warning"))
		}
		if _, _, hdr := in.get(t, "/example.com/greet/@v/v1.0.0.zip"); hdr.Get("X-Modgate-Policy-Warning") != "" {
			t.Errorf("a dry-run rule set the warning header: %q", hdr.Get("X-Modgate-Policy-Warning"))
		}

		rec := waitAuditRecord(t, in, "of the warned zip", func(r audit.Record) bool {
			return r.Module == "example.com/hello" && r.Version == "v1.0.0" && r.File == "zip"
		})
		if rec.Rule != "old-hello" || !strings.HasPrefix(rec.Detail, `warning: rule "old-hello": version is in the denied range <v1.1.0`) {
			t.Errorf("audit record of the warned zip: rule %q, detail %q", rec.Rule, rec.Detail)
		}
		rec = waitAuditRecord(t, in, "of the dry-run match", func(r audit.Record) bool {
			return r.Module == "example.com/greet" && r.File == "zip"
		})
		if rec.Rule != "trial" || rec.Result == audit.ResultBlocked {
			t.Errorf("audit record of the dry-run match: result %q, rule %q; want served, rule trial", rec.Result, rec.Rule)
		}
	})

	t.Run("global dry run", func(t *testing.T) {
		t.Parallel()
		in, _ := startPolicy(t, up, `
policy:
  dry_run: true
  rules:
    - name: no-evil
      deny:
        modules: [example.com/evil]
`, nil)
		env := goEnv(t, in, up)
		if got := goDownload(t, env, "example.com/evil@v1.0.0"); got[0].Error != "" {
			t.Fatalf("denied module under a dry-run policy: %s", got[0].Error)
		}
		if got := versionsOf(t, env, "example.com/evil"); got != "v1.0.0" {
			t.Errorf("go list -m -versions example.com/evil = %q, want v1.0.0", got)
		}
		if _, _, hdr := in.get(t, "/example.com/evil/@v/v1.0.0.zip"); hdr.Get("X-Modgate-Policy-Warning") != "" {
			t.Errorf("dry run set the warning header: %q", hdr.Get("X-Modgate-Policy-Warning"))
		}
		rec := waitAuditRecord(t, in, "of the dry-run zip", func(r audit.Record) bool {
			return r.Module == "example.com/evil" && r.File == "zip"
		})
		if rec.Rule != "no-evil" || rec.Result == audit.ResultBlocked {
			t.Errorf("audit record under a dry-run policy: result %q, rule %q; want served, rule no-evil", rec.Result, rec.Rule)
		}
	})
}

// TestPolicyHotReload: modgate reloads the policy when its config file
// changes. A broken policy is refused with the reason in the audit log and
// the old policy keeps working; a valid one applies within seconds, and a
// zip a lifted rule refused is served from storage without a new fetch.
func TestPolicyHotReload(t *testing.T) {
	t.Parallel()
	evil := simpleModule(t, "example.com/evil", "v1.0.0", "2024-01-01T00:00:00Z", "")
	up := testenv.NewUpstream(t, policyFixtures(t, evil))
	in, file := startPolicy(t, up, denyEvil+`
    - name: licences
      licenses:
        allow: [MIT]
`, nil)
	status := func(path string) int {
		code, _, _ := in.get(t, path)
		return code
	}
	const (
		evilInfo  = "/example.com/evil/@v/v1.0.0.info"
		greetInfo = "/example.com/greet/@v/v1.0.0.info"
		helloZip  = "/example.com/hello/@v/v1.0.0.zip"
	)
	// The fixture's LICENSE is not a licence the classifier knows.
	if code, body, _ := in.get(t, helloZip); code != http.StatusForbidden || !strings.Contains(string(body), `rule "licences": licence not recognised`) {
		t.Fatalf("GET %s: %d %q, want 403 from the licence rule", helloZip, code, body)
	}
	if got := status(evilInfo); got != http.StatusForbidden {
		t.Fatalf("GET %s: %d, want 403", evilInfo, got)
	}

	writeConfigFile(t, file, `
policy:
  rules:
    - name: no-greet
      deny:
        modules: [example.com/greet]
        versions: [">=banana"]
`)
	rec := waitAuditRecord(t, in, "of the refused reload", func(r audit.Record) bool {
		return r.Action == "policy.reload" && strings.HasPrefix(r.Detail, "refused")
	})
	outputHas(t, "audit record of the refused reload", rec.Detail, "config file changed", "policy.rules[0].deny.versions[0]", "banana")
	if got := status(evilInfo); got != http.StatusForbidden {
		t.Errorf("after a broken reload, GET %s: %d, want 403 (the old policy)", evilInfo, got)
	}
	if got := status(greetInfo); got != http.StatusOK {
		t.Errorf("after a broken reload, GET %s: %d, want 200 (the old policy)", greetInfo, got)
	}

	writeConfigFile(t, file, `
policy:
  rules:
    - name: no-greet
      reason: replaced by example.com/hello
      deny:
        modules: [example.com/greet]
`)
	pollUntil(t, 15*time.Second, func() string {
		if e, g := status(evilInfo), status(greetInfo); e != http.StatusOK || g != http.StatusForbidden {
			return fmt.Sprintf("evil .info %d, greet .info %d; want 200 and 403 under the new policy", e, g)
		}
		return ""
	})
	waitAuditRecord(t, in, "of the reload", func(r audit.Record) bool {
		return r.Action == "policy.reload" && r.Detail == "1 rules (config file changed)"
	})
	env := goEnv(t, in, up)
	goDownload(t, env, "example.com/evil@v1.0.0")
	stderr := failGo(t, t.TempDir(), env, "mod", "download", "example.com/greet@v1.0.0")
	outputHas(t, "go mod download output", stderr, `example.com/greet@v1.0.0 blocked by rule "no-greet": module is denied; replaced by example.com/hello`)

	code, body, _ := in.get(t, helloZip)
	if code != http.StatusOK || !bytes.Equal(body, up.Module("example.com/hello", "v1.0.0").Zip) {
		t.Errorf("GET %s after the licence rule was lifted: %d, want 200 with the zip", helloZip, code)
	}
	if n := up.Count(helloZip); n != 1 {
		t.Errorf("the upstream served %s %d times, want once: a refused zip stays stored", helloZip, n)
	}
}

// explanation is the JSON of GET /policy/explain.
type explanation struct {
	Module, Version, File, Verdict string
	Matches                        []struct {
		Rule, Action, Detail string
		ModuleWide           bool `json:"module_wide"`
	}
	Rules []struct{ Rule, Kind, Outcome, Detail string }
}

// TestPolicyExplain: GET /policy/explain names every rule of the policy,
// in order, with its outcome and why, for a module version (its zip) or a
// module (its list); bad parameters answer 400.
func TestPolicyExplain(t *testing.T) {
	t.Parallel()
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	in, _ := startPolicy(t, up, denyEvil+`
    - name: pin-hello
      pin:
        modules: [example.com/hello]
        versions: [v1.0.0]
    - name: cooldown
      cooldown:
        min_age: 72h
    - name: no-vulns
      vulnerabilities: {}
    - name: licences
      licenses:
        allow: [MIT]
        unknown: warn
`, nil)
	// The zip of v1.0.0 is stored and dated: licence and age are known.
	if code, body, _ := in.get(t, "/example.com/hello/@v/v1.0.0.zip"); code != http.StatusOK {
		t.Fatalf("GET the pinned zip: %d %q", code, body)
	}
	type rule struct{ rule, kind, outcome, detail string }
	tests := []struct {
		query        string
		file         string
		verdict      string
		rules        []rule
		moduleWide   bool
		matchedRules []string
	}{
		{
			query: "module=example.com/hello&version=v1.1.0", file: "zip", verdict: "block",
			rules: []rule{
				{"no-evil", "deny", "no-match", ""},
				{"pin-hello", "pin", "match", "version is not approved (approved: v1.0.0)"},
				{"cooldown", "cooldown", "not-checked", "age unknown: never seen in a list and no .info time"},
				{"no-vulns", "vulnerabilities", "not-checked", "no vulnerability database"},
				{"licences", "licenses", "not-checked", "licence not known yet (zip not seen)"},
			},
			matchedRules: []string{"pin-hello"},
		},
		{
			query: "module=example.com/hello&version=v1.0.0", file: "zip", verdict: "warn",
			rules: []rule{
				{"no-evil", "deny", "no-match", ""},
				{"pin-hello", "pin", "no-match", "version is approved"},
				{"cooldown", "cooldown", "no-match", ""}, // "N h old (by its .info time), minimum 72h"
				{"no-vulns", "vulnerabilities", "not-checked", "no vulnerability database"},
				{"licences", "licenses", "match", ""}, // "licence not recognised: ..."
			},
			matchedRules: []string{"licences"},
		},
		{
			query: "module=example.com/evil", file: "list", verdict: "block",
			rules: []rule{
				{"no-evil", "deny", "match", "module is denied"},
				{"pin-hello", "pin", "no-match", ""},
				{"cooldown", "cooldown", "not-applicable", "refuses only a version's .zip"},
				{"no-vulns", "vulnerabilities", "not-applicable", "refuses only a version's .zip"},
				{"licences", "licenses", "not-applicable", "refuses only a version's .zip"},
			},
			moduleWide:   true,
			matchedRules: []string{"no-evil"},
		},
	}
	for _, tt := range tests {
		code, body, hdr := in.get(t, "/policy/explain?"+tt.query)
		var got explanation
		if code != http.StatusOK || hdr.Get("Content-Type") != "application/json" || json.Unmarshal(body, &got) != nil {
			t.Errorf("GET /policy/explain?%s: %d %s %s, want 200 with JSON", tt.query, code, hdr.Get("Content-Type"), body)
			continue
		}
		q, _ := url.ParseQuery(tt.query)
		if got.Module != q.Get("module") || got.Version != q.Get("version") || got.File != tt.file || got.Verdict != tt.verdict {
			t.Errorf("%s: module %q version %q file %q verdict %q, want %q %q %q %q", tt.query,
				got.Module, got.Version, got.File, got.Verdict, q.Get("module"), q.Get("version"), tt.file, tt.verdict)
		}
		if len(got.Rules) != len(tt.rules) {
			t.Errorf("%s: %d rules evaluated, want all %d:\n%s", tt.query, len(got.Rules), len(tt.rules), body)
			continue
		}
		for i, want := range tt.rules {
			r := got.Rules[i]
			if r.Rule != want.rule || r.Kind != want.kind || r.Outcome != want.outcome || (want.detail != "" && r.Detail != want.detail) {
				t.Errorf("%s: rules[%d] = %+v, want %+v", tt.query, i, r, want)
			}
		}
		var matched []string
		for _, m := range got.Matches {
			matched = append(matched, m.Rule)
			if m.ModuleWide != tt.moduleWide {
				t.Errorf("%s: match %s module_wide = %v, want %v", tt.query, m.Rule, m.ModuleWide, tt.moduleWide)
			}
		}
		if strings.Join(matched, ",") != strings.Join(tt.matchedRules, ",") {
			t.Errorf("%s: matches %q, want %q", tt.query, matched, tt.matchedRules)
		}
	}

	for _, query := range []string{"", "module=example.com/hello&version=1.0", "module=..%2Fetc&version=v1.0.0"} {
		if code, body, _ := in.get(t, "/policy/explain?"+query); code != http.StatusBadRequest {
			t.Errorf("GET /policy/explain?%s: %d %q, want 400", query, code, body)
		}
	}
}
