package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modgate/modgate/internal/testenv"
)

// checkModule is a fixture module version with one package and a LICENSE
// from the policy package's test data.
func checkModule(t *testing.T, path, version, license string) *testenv.Module {
	t.Helper()
	text, err := os.ReadFile(filepath.Join("..", "..", "internal", "policy", "testdata", "licenses", license+".txt"))
	if err != nil {
		t.Fatal(err)
	}
	name := path[strings.LastIndex(path, "/")+1:]
	m, err := testenv.ParseModule(fmt.Appendf(nil, "module %s\nversion %s\n-- go.mod --\nmodule %s\n\ngo 1.21\n-- %s.go --\npackage %s\n-- LICENSE --\n%s",
		path, version, path, name, name, text))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

const checkPolicy = `
policy:
  rules:
    - name: no-evil
      reason: use example.com/mit instead
      deny:
        modules: [example.com/evil]
    - name: no-vulns
      vulnerabilities: {}
    - name: licences
      licenses:
        allow: [MIT, BSD-3-Clause]
`

// checkOSV is the fixture vulnerability database: one entry, in a flat
// directory of OSV files.
const checkOSV = `{
  "schema_version": "1.3.1",
  "id": "GO-2099-0201",
  "modified": "2026-01-02T03:04:05Z",
  "published": "2026-01-01T00:00:00Z",
  "summary": "Synthetic vulnerability",
  "affected": [{
    "package": {"name": "example.com/vuln", "ecosystem": "Go"},
    "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.0.1"}]}]
  }]
}
`

// TestCheckBinary runs the built `modgate check` on two projects whose
// modules the real go command downloaded into its module cache: one with a
// denied module, a vulnerable version and an AGPL module exits 1 and
// names each with its rule, reason and fix; a clean one exits 0.
func TestCheckBinary(t *testing.T) {
	up := testenv.NewUpstream(t, []*testenv.Module{
		checkModule(t, "example.com/evil", "v1.0.0", "MIT"),
		checkModule(t, "example.com/agpl", "v1.0.0", "AGPL-3.0"),
		checkModule(t, "example.com/mit", "v1.0.0", "MIT"),
		checkModule(t, "example.com/vuln", "v1.0.0", "BSD-3-Clause"),
		checkModule(t, "example.com/vuln", "v1.0.1", "BSD-3-Clause"),
	})
	env := testenv.GoEnv(t, up.URL(), up.VerifierKey())
	work := t.TempDir()
	policy := filepath.Join(work, "modgate.yaml")
	vulndb := filepath.Join(work, "osv")
	if err := os.WriteFile(policy, []byte(checkPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(vulndb, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(vulndb, "GO-2099-0201.json"), []byte(checkOSV), 0o644); err != nil {
		t.Fatal(err)
	}

	// project writes a consumer of mods, lets the go command fill go.sum
	// and the module cache, and runs modgate check on it.
	project := func(t *testing.T, mods ...string) (int, string) {
		t.Helper()
		dir := t.TempDir()
		gomod := "module example.com/app\n\ngo 1.21\n\nrequire (\n"
		imports := ""
		for _, m := range mods {
			path, version, _ := strings.Cut(m, "@")
			gomod += "\t" + path + " " + version + "\n"
			imports += "\t_ \"" + path + "\"\n"
		}
		testenv.WriteModule(t, dir, gomod+")\n", map[string]string{"app.go": "package app\n\nimport (\n" + imports + ")\n"})
		if _, stderr, err := testenv.RunGo(t, dir, env, "mod", "tidy"); err != nil {
			t.Fatalf("go mod tidy: %v\n%s", err, stderr)
		}
		cmd := exec.Command(modgateBin, "check", "--policy", policy, "--vulndb", vulndb, dir)
		cmd.Env = env // the go command's: modgate asks it for GOMODCACHE
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatalf("modgate check: %v\n%s", err, out)
		}
		return cmd.ProcessState.ExitCode(), string(out)
	}

	t.Run("blocked", func(t *testing.T) {
		code, out := project(t, "example.com/evil@v1.0.0", "example.com/agpl@v1.0.0", "example.com/mit@v1.0.0", "example.com/vuln@v1.0.0")
		if code != 1 {
			t.Fatalf("exit status %d, want 1\n%s", code, out)
		}
		for _, want := range [][]string{
			// module, version, verdict, rule, reason, fix
			{"example.com/evil", "v1.0.0", "block", "no-evil", "module is denied; use example.com/mit instead", "-"},
			{"example.com/agpl", "v1.0.0", "block", "licences", "licence AGPL-3.0 is not allowed (allowed: MIT, BSD-3-Clause)", "-"},
			{"example.com/vuln", "v1.0.0", "block", "no-vulns", "GO-2099-0201", "v1.0.1"},
			{"example.com/mit", "v1.0.0", "allow", "-", "-", "-"},
		} {
			if !hasRow(out, want) {
				t.Errorf("no row %q in:\n%s", want, out)
			}
		}
		if !strings.Contains(out, "4 modules: 3 blocked, 0 warned, 1 allowed") {
			t.Errorf("summary missing or wrong:\n%s", out)
		}
	})
	t.Run("clean", func(t *testing.T) {
		code, out := project(t, "example.com/mit@v1.0.0", "example.com/vuln@v1.0.1")
		if code != 0 {
			t.Fatalf("exit status %d, want 0\n%s", code, out)
		}
		if !strings.Contains(out, "2 modules: 0 blocked, 0 warned, 2 allowed") {
			t.Errorf("summary missing or wrong:\n%s", out)
		}
	})
}

// hasRow reports whether the table out has a row with exactly cells (cells
// are separated by runs of two or more spaces).
func hasRow(out string, cells []string) bool {
	for _, line := range strings.Split(out, "\n") {
		var got []string
		for _, c := range strings.Split(line, "  ") {
			if c = strings.TrimSpace(c); c != "" {
				got = append(got, c)
			}
		}
		if strings.Join(got, "|") == strings.Join(cells, "|") {
			return true
		}
	}
	return false
}
