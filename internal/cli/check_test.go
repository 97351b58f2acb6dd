package cli

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/module"

	"github.com/modgate/modgate/internal/policy"
)

// checkNow is the fixed "now" of the check tests.
var checkNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// checkVulns is the fake local vulnerability database.
type checkVulns map[string][]policy.Vuln

func (v checkVulns) Affecting(module, version string) []policy.Vuln { return v[module+"@"+version] }

var fixtureVulns = checkVulns{
	"example.com/vuln@v1.2.3":     {{ID: "GO-2025-0001", Aliases: []string{"CVE-2025-0001"}, Fixed: "v1.2.4"}},
	"example.com/accepted@v1.0.0": {{ID: "GO-2025-0007", Fixed: "v1.0.1"}},
}

// cachedModule is a module version put in the fake module cache.
type cachedModule struct {
	path, version string
	license       string    // file in ../policy/testdata/licenses, without .txt
	time          time.Time // the .info Time
}

// writeModCache builds a module cache download directory holding the
// .info and .zip of mods, as `go mod download` leaves them.
func writeModCache(t *testing.T, mods []cachedModule) string {
	t.Helper()
	cache := t.TempDir()
	for _, m := range mods {
		mv := module.Version{Path: m.path, Version: m.version}
		text, err := os.ReadFile(filepath.Join("..", "policy", "testdata", "licenses", m.license+".txt"))
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		prefix := m.path + "@" + m.version + "/"
		for name, content := range map[string][]byte{"LICENSE": text, "go.mod": []byte("module " + m.path + "\n")} {
			w, err := zw.Create(prefix + name)
			if err != nil {
				t.Fatal(err)
			}
			w.Write(content)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		zipName, err := cacheFile(cache, mv, ".zip")
		if err != nil {
			t.Fatal(err)
		}
		infoName, _ := cacheFile(cache, mv, ".info")
		if err := os.MkdirAll(filepath.Dir(zipName), 0o755); err != nil {
			t.Fatal(err)
		}
		info := fmt.Sprintf(`{"Version":%q,"Time":%q}`, m.version, m.time.Format(time.RFC3339))
		if err := os.WriteFile(infoName, []byte(info), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(zipName, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return cache
}

// fixtureCache is the module cache for the fixture projects. Some modules
// (corp.example/internal, example.com/accepted) are deliberately missing.
func fixtureCache(t *testing.T) string {
	old := checkNow.Add(-90 * 24 * time.Hour)
	return writeModCache(t, []cachedModule{
		{"example.com/agpl", "v1.0.0", "AGPL-3.0", old},
		{"example.com/evil", "v1.0.0", "MIT", old},
		{"example.com/good", "v1.0.0", "MIT", old},
		{"example.com/lib", "v1.5.0", "Apache-2.0", old},
		{"example.com/vuln", "v1.2.3", "BSD-3-Clause", old},
		{"example.com/vuln", "v1.2.4", "BSD-3-Clause", old},
		{"example.com/young", "v1.0.0", "MIT", checkNow.Add(-time.Hour)},
	})
}

// runCheckCmd runs check with the fixture policy, the fake vulnerability
// database and cache, and returns the exit status and outputs.
func runCheckCmd(t *testing.T, cache string, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	deps := checkDeps{
		getenv: func(k string) string { return env[k] },
		goModCache: func(context.Context) (string, error) {
			if cache == "" {
				return "", errors.New("no go command")
			}
			return cache, nil
		},
		openVulns: func(dir string) (policy.VulnSource, error) {
			if dir != "/srv/vulndb" {
				return nil, fmt.Errorf("opened vulnerability database %q, want /srv/vulndb", dir)
			}
			return fixtureVulns, nil
		},
		now: func() time.Time { return checkNow },
	}
	code := check(t.Context(), args, &stdout, &stderr, deps)
	return code, stdout.String(), stderr.String()
}

var fixturePolicy = filepath.Join("testdata", "check", "policy.yaml")

// tableRow finds the table row for module and rule and returns its cells
// (split on runs of two or more spaces).
func tableRow(t *testing.T, out, module, rule string) []string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		var cells []string
		for _, c := range strings.Split(line, "  ") {
			if c = strings.TrimSpace(c); c != "" {
				cells = append(cells, c)
			}
		}
		if len(cells) == 6 && cells[0] == module && cells[3] == rule {
			return cells
		}
	}
	t.Errorf("no row for %s and rule %q in:\n%s", module, rule, out)
	return nil
}

func TestCheckBlocked(t *testing.T) {
	code, out, errOut := runCheckCmd(t, fixtureCache(t), nil,
		"--policy", fixturePolicy, "--vulndb", "/srv/vulndb", filepath.Join("testdata", "check", "blocked"))
	if code != 1 {
		t.Fatalf("exit status %d, want 1\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	tests := []struct {
		module, rule string
		want         []string // version, verdict, reason, fix
	}{
		{"example.com/evil", "no-evil", []string{"v1.0.0", "block", "module is denied; use example.com/good instead; contact security@corp.example", "-"}},
		{"example.com/vuln", "no-vulns", []string{"v1.2.3", "block", "GO-2025-0001", "v1.2.4"}},
		{"example.com/agpl", "licences", []string{"v1.0.0", "block", "licence AGPL-3.0 is not allowed (allowed: MIT, Apache-2.0, BSD-3-Clause)", "-"}},
		{"example.com/young", "cooldown", []string{"v1.0.0", "block", "version is 1h old (by its .info time), younger than the minimum age 72h; allowed from 2026-03-04T11:00:00Z", "-"}},
		{"example.com/lib", "old-lib", []string{"v1.5.0", "warn", "version is in the denied range <v2.0.0", "-"}},
		{"example.com/good", "trial", []string{"v1.0.0", "dry run: block", "version is not approved (approved: v9.0.0)", "-"}},
		{"corp.example/internal", "-", []string{"v0.1.0", "allow", "-", "-"}},
	}
	for _, tt := range tests {
		row := tableRow(t, out, tt.module, tt.rule)
		if row == nil {
			continue
		}
		got := []string{row[1], row[2], row[4], row[5]}
		if strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("row for %s, rule %q = %q, want %q", tt.module, tt.rule, got, tt.want)
		}
	}
	// Blocked rows come first, and the module only in the module graph
	// (example.com/evil/v2, a go.mod line) is not checked.
	if strings.Contains(out, "example.com/evil/v2") {
		t.Errorf("report lists a module without a zip hash line:\n%s", out)
	}
	lines := strings.Split(out, "\n")
	if !strings.Contains(lines[1], "block") || strings.Contains(lines[1], "dry run") {
		t.Errorf("first row is not a blocked module: %q", lines[1])
	}
	if want := "go.sum: 7 modules: 4 blocked, 1 warned, 2 allowed"; !strings.Contains(out, want) {
		t.Errorf("summary: no %q in:\n%s", want, out)
	}
}

func TestCheckClean(t *testing.T) {
	code, out, errOut := runCheckCmd(t, fixtureCache(t), map[string]string{"MODGATE_CONFIG": fixturePolicy},
		"--vulndb", "/srv/vulndb", filepath.Join("testdata", "check", "clean", "go.sum"))
	if code != 0 {
		t.Fatalf("exit status %d, want 0\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"3 modules: 0 blocked, 0 warned, 3 allowed",
		// example.com/accepted is not in the module cache.
		`rule "cooldown" not checked for 1 module `,
		`rule "licences" not checked for 1 module `,
		"example.com/accepted@v1.0.0: licence not known yet",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output has no %q:\n%s", want, out)
		}
	}
}

func TestCheckJSON(t *testing.T) {
	code, out, errOut := runCheckCmd(t, fixtureCache(t), nil,
		"--json", "--policy", fixturePolicy, "--vulndb", "/srv/vulndb", filepath.Join("testdata", "check", "blocked"))
	if code != 1 {
		t.Fatalf("exit status %d, want 1\nstderr:\n%s", code, errOut)
	}
	var rep struct {
		Source  string
		Summary struct{ Modules, Blocked, Warned, Allowed int }
		Modules []struct {
			Module, Version, Verdict string
			Matches                  []struct{ Rule, Detail, Fix string }
			Rules                    []struct{ Rule, Outcome string }
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	if rep.Summary.Modules != 7 || rep.Summary.Blocked != 4 || rep.Summary.Warned != 1 || rep.Summary.Allowed != 2 {
		t.Errorf("summary = %+v, want 7 modules: 4 blocked, 1 warned, 2 allowed", rep.Summary)
	}
	found := false
	for _, m := range rep.Modules {
		if len(m.Rules) != 6 {
			t.Errorf("%s: %d rule evaluations, want all 6 rules", m.Module, len(m.Rules))
		}
		if m.Module == "example.com/vuln" {
			found = true
			if m.Verdict != "block" || len(m.Matches) != 1 || m.Matches[0].Detail != "GO-2025-0001" || m.Matches[0].Fix != "v1.2.4" {
				t.Errorf("example.com/vuln = %+v, want blocked by GO-2025-0001, fixed in v1.2.4", m)
			}
		}
	}
	if !found {
		t.Errorf("no example.com/vuln in %s", out)
	}
}

func TestCheckGoModOnly(t *testing.T) {
	// No go.sum: the go.mod requirements, with the replacement applied and
	// the local directory left out. The policy has no vulnerabilities rule
	// here, so no database is needed.
	dir := t.TempDir()
	pol := filepath.Join(dir, "modgate.yaml")
	os.WriteFile(pol, []byte("policy:\n  rules:\n    - name: no-evil\n      deny: {modules: [example.com/evil]}\n"), 0o644)
	code, out, errOut := runCheckCmd(t, "", nil, "--policy", pol, filepath.Join("testdata", "check", "gomod"))
	if code != 1 {
		t.Fatalf("exit status %d, want 1\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	tableRow(t, out, "example.com/evil", "no-evil")
	if strings.Contains(out, "corp.example/local") || !strings.Contains(out, "2 modules: 1 blocked") {
		t.Errorf("want example.com/good and the replacement example.com/evil only:\n%s", out)
	}
	if !strings.Contains(errOut, "warning: no module cache") {
		t.Errorf("stderr has no module cache warning: %q", errOut)
	}
}

func TestCheckUsageErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("policy:\n  rules:\n    - name: r\n      pin: {modules: [example.com/x]}\n    - name: s\n      action: maybe\n      vulnerabilities: {}\n"), 0o644)
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want []string
	}{
		{"no policy", nil, []string{"testdata/check/clean"}, []string{"no policy: pass --policy FILE"}},
		{"invalid policy", nil, []string{"--policy", bad, "--vulndb", "/srv/vulndb", "testdata/check/clean"}, []string{
			"invalid policy", "policy.rules[0].pin.versions: empty", `policy.rules[1].action: unknown action "maybe"`,
		}},
		{"missing policy file", nil, []string{"--policy", filepath.Join(dir, "nope.yaml")}, []string{"reading config file"}},
		{"no vulnerability database", nil, []string{"--policy", fixturePolicy, "testdata/check/clean"}, []string{
			`rule "no-vulns" checks vulnerabilities: pass --vulndb DIR`,
		}},
		{"missing project", nil, []string{"--policy", fixturePolicy, "--vulndb", "/srv/vulndb", filepath.Join(dir, "none")}, []string{"reading the build list"}},
		{"two projects", nil, []string{"a", "b"}, []string{"want at most one go.mod, go.sum or directory, got 2 arguments"}},
		{"bad flag", nil, []string{"--frobnicate"}, []string{"flag provided but not defined"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCheckCmd(t, t.TempDir(), tt.env, tt.args...)
			if code != 2 {
				t.Errorf("exit status %d, want 2\nstdout:\n%s", code, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr has no %q:\n%s", w, errOut)
				}
			}
		})
	}
}

func TestParseGoSumErrors(t *testing.T) {
	_, err := parseGoSum("go.sum", []byte("example.com/a v1.0.0 h1:x\nexample.com/b\n"))
	if err == nil || !strings.Contains(err.Error(), "go.sum:2:") {
		t.Errorf("parseGoSum = %v, want an error on line 2", err)
	}
	_, err = parseGoSum("go.sum", []byte("Example.com/a v1.0.0 h1:x\n"))
	if err == nil || !strings.Contains(err.Error(), "go.sum:1:") {
		t.Errorf("parseGoSum = %v, want an error for an invalid path", err)
	}
}

// TestCheckVulnDB reads a real (one-entry) database copy with vulndb.Open.
func TestCheckVulnDB(t *testing.T) {
	vulnDir := filepath.Join("testdata", "check", "vulndb")
	var stdout, stderr bytes.Buffer
	deps := checkDeps{
		getenv:     func(string) string { return "" },
		goModCache: func(context.Context) (string, error) { return fixtureCache(t), nil },
		openVulns:  openVulnDB,
		now:        func() time.Time { return checkNow },
	}
	project := t.TempDir()
	os.WriteFile(filepath.Join(project, "go.sum"), []byte(
		"example.com/vuln v1.2.3 h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"+
			"example.com/good v1.0.0 h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"), 0o644)
	code := check(t.Context(), []string{"--policy", fixturePolicy, "--vulndb", vulnDir, project}, &stdout, &stderr, deps)
	if code != 1 {
		t.Fatalf("exit status %d, want 1\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	row := tableRow(t, stdout.String(), "example.com/vuln", "no-vulns")
	if row != nil && (row[4] != "GO-2099-0101" || row[5] != "v1.2.4") {
		t.Errorf("row = %q, want GO-2099-0101 fixed in v1.2.4", row)
	}

	stderr.Reset()
	code = check(t.Context(), []string{"--policy", fixturePolicy, "--vulndb", t.TempDir(), project}, &stdout, &stderr, deps)
	if code != 2 || !strings.Contains(stderr.String(), "reading the vulnerability database") {
		t.Errorf("empty database directory: exit %d, stderr %q; want 2 and the reason", code, stderr.String())
	}
}

// TestCheckMapsPseudoVersionsFromCache: check maps a pseudo-version to the
// tag at its commit through the .info files in the module cache, as the
// proxy does through its stored ones.
func TestCheckMapsPseudoVersionsFromCache(t *testing.T) {
	cache := t.TempDir()
	write := func(path, version, hash string) {
		name, err := cacheFile(cache, module.Version{Path: path, Version: version}, ".info")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		info := fmt.Sprintf(`{"Version":%q,"Time":"2024-01-01T00:00:00Z","Origin":{"VCS":"git","Hash":%q}}`, version, hash)
		if err := os.WriteFile(name, []byte(info), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("github.com/Acme/lib", "v1.1.0", "a110a110a110a110a110a110a110a110a110a110")
	write("github.com/Acme/lib", "v1.0.0", "1000000000000000000000000000000000000000")
	write("github.com/Acme/lib", "v0.0.0-20240101000000-a110a110a110", "a110a110a110a110a110a110a110a110a110a110")

	x := policy.NewTagIndex(cacheInfos(cache))
	got, err := x.Tags("github.com/Acme/lib", "a110a110a110")
	if err != nil || len(got) != 1 || got[0] != "v1.1.0" {
		t.Errorf("Tags(github.com/Acme/lib, a110a110a110) = %q, %v; want [v1.1.0]", got, err)
	}
	if _, err := x.Tags("example.com/absent", "a110a110a110"); err == nil {
		t.Error("Tags of a module not in the cache: no error")
	}
}

// TestCheckOtherSpellings: check refuses a denied module in another case,
// naming the pattern, and judges a pseudo-version by the tag at its commit.
func TestCheckOtherSpellings(t *testing.T) {
	cache := t.TempDir()
	for v, hash := range map[string]string{
		"v9.0.0":                             "a110a110a110a110a110a110a110a110a110a110",
		"v1.0.0":                             "1000000000000000000000000000000000000000",
		"v0.0.0-20240101000000-a110a110a110": "a110a110a110a110a110a110a110a110a110a110",
		"v0.0.0-20240101000000-c0ffee00c0ff": "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00",
	} {
		name, _ := cacheFile(cache, module.Version{Path: "example.com/good", Version: v}, ".info")
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		info := fmt.Sprintf(`{"Version":%q,"Time":"2024-01-01T00:00:00Z","Origin":{"VCS":"git","Hash":%q}}`, v, hash)
		if err := os.WriteFile(name, []byte(info), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	const h = " h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
	sum := "example.com/Evil v1.0.0" + h +
		"example.com/good v0.0.0-20240101000000-a110a110a110" + h +
		"example.com/good v0.0.0-20240101000000-c0ffee00c0ff" + h
	if err := os.WriteFile(filepath.Join(dir, "go.sum"), []byte(sum), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCheckCmd(t, cache, nil, "--policy", fixturePolicy, "--vulndb", "/srv/vulndb", dir)
	if code != 1 {
		t.Fatalf("exit status %d, want 1\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if row := tableRow(t, out, "example.com/Evil", "no-evil"); row != nil && !strings.HasPrefix(row[4], `module is denied (pattern "example.com/evil")`) {
		t.Errorf("row for example.com/Evil: %q, want the pattern named", row)
	}
	// The pin approves v9.0.0: its commit's pseudo-version is allowed, an
	// untagged commit's is not (the rule is a dry run).
	if !strings.Contains(out, "a110a110a110") || !strings.Contains(out, "c0ffee00c0ff") {
		t.Fatalf("report lacks the pseudo-versions:\n%s", out)
	}
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.Contains(line, "a110a110a110") && strings.Contains(line, "trial"):
			t.Errorf("pseudo-version of the pinned tag's commit was refused: %q", line)
		case strings.Contains(line, "c0ffee00c0ff") && !strings.Contains(line, "matches no known tag"):
			t.Errorf("pseudo-version of an untagged commit: %q, want refused as unmapped", line)
		}
	}
}
