package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/modgate/modgate/internal/config"
)

// explainRun runs explain with a fake process environment and go env and
// returns its exit status, stdout and stderr.
func explainRun(t *testing.T, env map[string]string, goenv config.GoEnv, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	deps := explainDeps{
		getenv: func(k string) string { return env[k] },
		goEnv:  func(context.Context) (config.GoEnv, error) { return goenv, nil },
	}
	code := explain(t.Context(), args, &stdout, &stderr, deps)
	return code, stdout.String(), stderr.String()
}

func explainConfig(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "modgate.yaml")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestExplain(t *testing.T) {
	_, vkey, err := note.GenerateKey(rand.Reader, "sum.test")
	if err != nil {
		t.Fatal(err)
	}
	keyHash := strings.Split(vkey, "+")[1]
	env := map[string]string{"HOME": "/home/gopher"}
	goenv := config.GoEnv{
		GOPROXY:   "https://u:hunter2@proxy.test|https://backup.test,direct",
		GOSUMDB:   vkey,
		GOPRIVATE: "corp.example",
		GONOPROXY: "corp.example",
		GONOSUMDB: "corp.example",
	}
	file := explainConfig(t, "upstream:\n  retries: 1\n  noproxy: [corp.example, git.example/team]\n")
	policyFile := explainConfig(t, "policy:\n  rules:\n    - name: no-acme\n      deny: {modules: [github.com/acme/lib]}\n"+
		"    - name: old-yaml\n      deny: {modules: [example.com/*], versions: [\"<v3.0.0\"]}\n")

	tests := []struct {
		name   string
		args   []string
		env    map[string]string // default: env
		goenv  config.GoEnv
		want   []string // substrings of stdout, in this order
		absent []string
	}{
		{
			name:  "path matching no pattern",
			args:  []string{"example.com/Corp/lib@v1.2.0"},
			goenv: goenv,
			want: []string{
				"module example.com/Corp/lib@v1.2.0",
				"escaped path:        example.com/!corp/lib\n",
				"storage key prefix:  example.com/!corp/lib/@v/\n",
				"example.com/!corp/lib/@v/v1.2.0.info, .mod and .zip",
				`upstream.goproxy "https://u:xxxxx@proxy.test|https://backup.test,direct", from go env GOPROXY`,
				"example.com/Corp/lib matches no upstream.noproxy pattern (corp.example, from go env GOPRIVATE)",
				"1. https://u:xxxxx@proxy.test\n",
				`if it fails in any way ("|"), modgate asks the next entry`,
				"2. https://backup.test\n",
				`if it answers "not found" (","), modgate asks the next entry`,
				"3. direct: the module's Git repository, found as the go command finds it",
				"sumdb.gosumdb \"" + vkey + "\", from go env GOSUMDB",
				"verified: every file is checked against checksum database sum.test (key hash " + keyHash + ")",
				"no rules: every version is served",
			},
			absent: []string{"hunter2", "matches upstream.noproxy pattern", "left out"},
		},
		{
			// The entries pointing at modgate are left out as the server
			// leaves them out; "|" belonged to the first one and goes with it.
			name: "entries pointing at modgate itself",
			args: []string{"example.com/lib"},
			env:  map[string]string{"HOME": "/home/gopher", "MODGATE_PUBLIC_URL": "https://modgate.corp.example"},
			goenv: config.GoEnv{
				GOPROXY: "http://localhost:3000|https://u:hunter2@proxy.test,https://MODGATE.corp.example/,direct",
				GOSUMDB: "off",
			},
			want: []string{
				`upstream.goproxy "http://localhost:3000|https://u:xxxxx@proxy.test,https://MODGATE.corp.example/,direct", from go env GOPROXY`,
				"modgate asks, in this order:\n",
				"1. https://u:xxxxx@proxy.test\n",
				`if it answers "not found" (","), modgate asks the next entry`,
				"2. direct: the module's Git repository, found as the go command finds it",
				`left out, because they point at modgate itself (listen "127.0.0.1:3000", public_url "https://modgate.corp.example"): http://localhost:3000, https://MODGATE.corp.example/` + "\n",
			},
			absent: []string{"hunter2", "3. ", "fails in any way"},
		},
		{
			name:  "path matching the go env patterns",
			args:  []string{"corp.example/tools/lint"},
			goenv: goenv,
			want: []string{
				"module corp.example/tools/lint\n",
				"storage key prefix:  corp.example/tools/lint/@v/\n",
				`corp.example/tools/lint matches upstream.noproxy pattern "corp.example" (from go env GOPRIVATE)`,
				"no private.sources entry serves it",
				"add a private source for it",
				`not in the database: corp.example/tools/lint matches sumdb.nosumdb pattern "corp.example" (from go env GOPRIVATE)`,
				"no rules: every version is served",
			},
			absent: []string{"modgate asks, in this order", "files:"},
		},
		{
			name:  "pattern from the config file",
			args:  []string{"--config", file, "git.example/team/svc/v2@v2.1.0"},
			goenv: goenv,
			want: []string{
				`git.example/team/svc/v2 matches upstream.noproxy pattern "git.example/team" (from config file ` + file + `:3)`,
				"verified: every file is checked against checksum database sum.test",
			},
		},
		{
			// The server keeps every spelling of a private path away from
			// the proxies and the checksum database.
			name:  "case variant of a noproxy pattern",
			args:  []string{"--config", file, "git.example/Team/svc"},
			goenv: goenv,
			want: []string{
				`git.example/Team/svc matches upstream.noproxy pattern "git.example/team"`,
				"no private.sources entry serves it",
			},
			absent: []string{"modgate asks, in this order"},
		},
		{
			name:  "policy rules name the pattern",
			args:  []string{"--config", policyFile, "github.com/Acme/lib"},
			goenv: goenv,
			want: []string{
				"Policy (2 rules",
				`- no-acme (deny): match: module is denied (pattern "github.com/acme/lib")`,
				"- old-yaml (deny): no-match",
			},
		},
		{
			name:  "version rule pattern in another case",
			args:  []string{"--config", policyFile, "example.com/YAML"},
			goenv: goenv,
			want:  []string{`- old-yaml (deny): not-applicable, pattern "example.com/*": denies versions`},
		},
		{
			name:  "flags after the module",
			args:  []string{"git.example/team/svc", "--config", file},
			goenv: goenv,
			want:  []string{`matches upstream.noproxy pattern "git.example/team" (from config file ` + file},
		},
		{
			name:  "config file from MODGATE_CONFIG",
			args:  []string{"git.example/team/svc"},
			env:   map[string]string{"HOME": "/home/gopher", "MODGATE_CONFIG": file},
			goenv: goenv,
			want:  []string{`matches upstream.noproxy pattern "git.example/team" (from config file ` + file},
		},
		{
			name:  "module files in S3",
			args:  []string{"--config", explainConfig(t, "data_dir: /srv/modgate\nstorage:\n  type: s3\n  s3:\n    endpoint: http://127.0.0.1:7070\n    bucket: mods\n    prefix: modgate/\n"), "example.com/lib@v1.0.0"},
			goenv: goenv,
			want: []string{
				"storage key prefix:  example.com/lib/@v/\n",
				`in S3:               bucket "mods", key prefix "modgate/", at http://127.0.0.1:7070 (storage.type from config file`,
				"local cache:         /srv/modgate/s3cache, at most 2048 MB",
			},
		},
		{
			name:  "checksum database off",
			args:  []string{"example.com/lib"},
			goenv: config.GoEnv{GOPROXY: "https://proxy.test", GOSUMDB: "off"},
			want: []string{
				"1. https://proxy.test\n",
				`not verified: sumdb.gosumdb is "off"`,
			},
			absent: []string{"asks the next entry"},
		},
		{
			name:  "goproxy off",
			args:  []string{"example.com/lib"},
			goenv: config.GoEnv{GOPROXY: "off", GOSUMDB: "off"},
			want:  []string{`upstream.goproxy is "off": nothing is fetched`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := env
			if tt.env != nil {
				e = tt.env
			}
			code, stdout, stderr := explainRun(t, e, tt.goenv, tt.args...)
			call := "modgate explain " + strings.Join(tt.args, " ")
			if code != 0 || stderr != "" {
				t.Fatalf("%s = exit %d, stderr:\n%s", call, code, stderr)
			}
			rest := stdout
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Errorf("%s: stdout lacks %q (after the previous match); stdout:\n%s", call, w, stdout)
					continue
				}
				rest = rest[i+len(w):]
			}
			for _, a := range tt.absent {
				if strings.Contains(stdout, a) {
					t.Errorf("%s: stdout contains %q; stdout:\n%s", call, a, stdout)
				}
			}
		})
	}
}

func TestExplainBadInput(t *testing.T) {
	env := map[string]string{"HOME": "/home/gopher"}
	goenv := config.GoEnv{GOPROXY: "https://proxy.test", GOSUMDB: "off"}
	bad := explainConfig(t, "upstream:\n  retries: 20\n  timeout: 5s\n")
	invalid := explainConfig(t, "upstream:\n  retries: 20\n")
	tests := []struct {
		name   string
		args   []string
		env    map[string]string
		stderr []string
	}{
		{name: "no module", args: nil, stderr: []string{"want exactly one MODULE[@VERSION], got 0", "usage: modgate explain"}},
		{name: "two modules", args: []string{"a.example/x", "b.example/y"}, stderr: []string{"got 2 arguments"}},
		{name: "unknown flag", args: []string{"--nope", "a.example/x"}, stderr: []string{"flag provided but not defined: -nope"}},
		{name: "bad module path", args: []string{"Example.com/x"}, stderr: []string{`malformed module path "Example.com/x"`}},
		{name: "not a version", args: []string{"example.com/x@master"}, stderr: []string{"not a semantic version", "explain takes a semantic version"}},
		{name: "wrong major version", args: []string{"example.com/x/v2@v1.0.0"}, stderr: []string{"should be v2, not v1"}},
		// every problem at once: the unknown key and the invalid value
		{name: "config with unknown key", args: []string{"--config", bad, "example.com/x"}, stderr: []string{bad + ":3: upstream.timeout: unknown key",
			"upstream.retries: must be between 0 and 10, got 20"}},
		{name: "invalid config", args: []string{"--config", invalid, "example.com/x"}, stderr: []string{"invalid configuration", "upstream.retries: must be between 0 and 10, got 20"}},
		{name: "bad environment", args: []string{"example.com/x"}, env: map[string]string{"HOME": "/h", "MODGATE_LOG_LEVEL": "loud"}, stderr: []string{"(from env MODGATE_LOG_LEVEL)"}},
		{name: "goproxy naming only modgate", args: []string{"example.com/x"}, env: map[string]string{"HOME": "/h", "MODGATE_GOPROXY": "http://127.0.0.1:3000"},
			stderr: []string{"upstream.goproxy: every GOPROXY entry points at modgate itself (http://127.0.0.1:3000)"}},
		{name: "missing config file", args: []string{"--config", "/nonexistent/modgate.yaml", "example.com/x"}, stderr: []string{"/nonexistent/modgate.yaml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := env
			if tt.env != nil {
				e = tt.env
			}
			code, stdout, stderr := explainRun(t, e, goenv, tt.args...)
			call := "modgate explain " + strings.Join(tt.args, " ")
			if code != 2 {
				t.Errorf("%s = exit %d, want 2", call, code)
			}
			if stdout != "" {
				t.Errorf("%s wrote to stdout:\n%s", call, stdout)
			}
			for _, s := range tt.stderr {
				if !strings.Contains(stderr, s) {
					t.Errorf("%s: stderr lacks %q; stderr:\n%s", call, s, stderr)
				}
			}
		})
	}
}
