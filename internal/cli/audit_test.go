package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/audit"
)

// auditRun runs the audit command with env as the whole environment and
// returns its exit status, stdout and stderr.
func auditRun(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	deps := auditDeps{
		getenv: func(k string) string { return env[k] },
		now:    func() time.Time { return auditTestTime.Add(24 * time.Hour) },
	}
	code := runAudit(t.Context(), args, &stdout, &stderr, deps)
	return code, stdout.String(), stderr.String()
}

var auditTestTime = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// writeAuditLog writes records to a log in dir, signed with the key at
// audit.KeyPath(dir), as the server does, and returns nothing: the files
// are the fixture.
func writeAuditLog(t *testing.T, dir string, edit func(*audit.Config), records ...audit.Record) {
	t.Helper()
	key, err := audit.LoadOrCreateKey(audit.KeyPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	cfg := audit.Config{Dir: dir, SigningKey: key}
	if edit != nil {
		edit(&cfg)
	}
	l, err := audit.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range records {
		l.Write(r)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

func auditRecords() []audit.Record {
	return []audit.Record{
		{Time: auditTestTime, RequestID: "r1", Identity: "alice", ClientIP: "192.0.2.1", Module: "corp.example/lib", Version: "v1.2.0", File: "zip", Result: audit.ResultHit, Bytes: 2048, Duration: 3 * time.Millisecond},
		{Time: auditTestTime.Add(time.Hour), RequestID: "r2", Identity: "bob", ClientIP: "192.0.2.2", Module: "example.com/evil", Version: "v1.0.0", File: "mod", Result: audit.ResultBlocked, Rule: "no-evil"},
		{Time: auditTestTime.Add(2 * time.Hour), RequestID: "r3", Identity: "alice", ClientIP: "192.0.2.1", Module: "corp.example/tool", Version: "v0.1.0", File: "info", Result: audit.ResultMiss, Upstream: "https://proxy.corp.example"},
		{Time: auditTestTime.Add(3 * time.Hour), RequestID: "r4", Identity: "admin", Result: audit.ResultAdmin, Action: "token.create", Detail: "token ci-read"},
	}
}

func TestAuditVerify(t *testing.T) {
	data := t.TempDir()
	dir := filepath.Join(data, "audit")
	writeAuditLog(t, dir, nil, auditRecords()...)
	env := map[string]string{"MODGATE_DATA_DIR": data}

	code, stdout, stderr := auditRun(t, env, "verify")
	if want := "ok: 4 records in 1 files, chain intact up to checkpoint seq 4\n"; code != 0 || stdout != want {
		t.Fatalf("audit verify = %d, stdout %q, stderr %q; want 0 and %q", code, stdout, stderr, want)
	}

	// The same log named by --dir, and by audit.dir in a config file.
	if code, stdout, _ := auditRun(t, nil, "verify", "--dir", dir); code != 0 || !strings.HasPrefix(stdout, "ok: 4 records") {
		t.Errorf("audit verify --dir = %d, %q", code, stdout)
	}
	cfgFile := filepath.Join(t.TempDir(), "modgate.yaml")
	os.WriteFile(cfgFile, []byte("data_dir: /nonexistent\naudit:\n  dir: "+dir+"\n"), 0o644)
	if code, stdout, stderr := auditRun(t, nil, "verify", "--config", cfgFile); code != 0 || !strings.HasPrefix(stdout, "ok: 4 records") {
		t.Errorf("audit verify --config = %d, %q, %q", code, stdout, stderr)
	}

	// An edited record fails, naming the file, line and seq.
	files, _ := filepath.Glob(filepath.Join(dir, "audit-*.jsonl"))
	data2, _ := os.ReadFile(files[0])
	os.WriteFile(files[0], bytes.Replace(data2, []byte(`"identity":"bob"`), []byte(`"identity":"eve"`), 1), 0o640)
	code, stdout, _ = auditRun(t, env, "verify")
	want := filepath.Base(files[0]) + ":2: seq 2: edited record"
	if code != 1 || !strings.HasPrefix(stdout, "FAILED: 1 problem in ") || !strings.Contains(stdout, want) {
		t.Errorf("audit verify after an edit = %d, %q; want 1 naming %q", code, stdout, want)
	}

	// Verify needs the public key only.
	if err := os.Remove(audit.KeyPath(dir)); err != nil {
		t.Fatal(err)
	}
	if code, stdout, _ := auditRun(t, env, "verify"); code != 1 || !strings.Contains(stdout, want) {
		t.Errorf("audit verify with only the .pub key = %d, %q", code, stdout)
	}
}

func TestAuditQuery(t *testing.T) {
	data := t.TempDir()
	writeAuditLog(t, filepath.Join(data, "audit"), nil, auditRecords()...)
	env := map[string]string{"MODGATE_DATA_DIR": data}

	tests := []struct {
		name string
		args []string
		want []string // request ids, in order
	}{
		{"all", nil, []string{"r1", "r2", "r3", "r4"}},
		{"identity", []string{"--identity", "alice"}, []string{"r1", "r3"}},
		{"module pattern", []string{"--module", "corp.example/*"}, []string{"r1", "r3"}},
		{"module", []string{"--module", "example.com/evil"}, []string{"r2"}},
		{"result", []string{"--result", "blocked"}, []string{"r2"}},
		{"since date and time", []string{"--since", "2026-11-21T13:00"}, []string{"r2", "r3", "r4"}},
		{"until RFC 3339", []string{"--until", "2026-11-21T14:00:00Z"}, []string{"r1", "r2"}},
		{"since a duration ago", []string{"--since", "22h"}, []string{"r3", "r4"}},
		{"since a date", []string{"--since", "2026-11-22"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := auditRun(t, env, append([]string{"query", "--json"}, tt.args...)...)
			if code != 0 {
				t.Fatalf("audit query --json %v = %d, stderr %q", tt.args, code, stderr)
			}
			var got []string
			dec := json.NewDecoder(strings.NewReader(stdout))
			for dec.More() {
				var r audit.Record
				if err := dec.Decode(&r); err != nil {
					t.Fatalf("output is not JSON lines: %v\n%s", err, stdout)
				}
				got = append(got, r.RequestID)
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("audit query --json %v = %v, want %v", tt.args, got, tt.want)
			}
		})
	}

	code, stdout, stderr := auditRun(t, env, "query", "--identity", "bob")
	if code != 0 {
		t.Fatalf("audit query = %d, %q", code, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "TIME ") {
		t.Fatalf("audit query table:\n%s\nwant a header and one row", stdout)
	}
	for _, field := range []string{"2026-11-21T13:00:00Z", "blocked", "bob", "192.0.2.2", "example.com/evil@v1.0.0", "mod", "no-evil", "r2"} {
		if !strings.Contains(lines[1], field) {
			t.Errorf("table row %q lacks %q", lines[1], field)
		}
	}
}

func TestAuditQueryPseudonymised(t *testing.T) {
	data := t.TempDir()
	dir := filepath.Join(data, "audit")
	secret, err := audit.LoadOrCreateSecret(audit.PseudonymKeyPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	writeAuditLog(t, dir, func(c *audit.Config) {
		c.Pseudonymize = true
		c.PseudonymKey = secret
	}, auditRecords()...)
	cfgFile := filepath.Join(t.TempDir(), "modgate.yaml")
	os.WriteFile(cfgFile, []byte("audit:\n  pseudonymize: true\n"), 0o644)
	env := map[string]string{"MODGATE_DATA_DIR": data, "MODGATE_CONFIG": cfgFile}

	for _, identity := range []string{"alice", audit.Pseudonym(secret, "alice")} {
		code, stdout, stderr := auditRun(t, env, "query", "--identity", identity)
		if code != 0 || strings.Count(stdout, "\n") != 3 || strings.Contains(stdout, "alice") || !strings.Contains(stdout, audit.Pseudonym(secret, "alice")) {
			t.Errorf("audit query --identity %s = %d:\n%s%s\nwant two rows with the pseudonym", identity, code, stdout, stderr)
		}
	}
}

func TestAuditUsage(t *testing.T) {
	data := t.TempDir()
	writeAuditLog(t, filepath.Join(data, "audit"), nil, auditRecords()...)
	env := map[string]string{"MODGATE_DATA_DIR": data}
	tests := []struct {
		name   string
		env    map[string]string
		args   []string
		code   int
		stderr string
	}{
		{"no subcommand", env, nil, 2, "usage: modgate audit verify"},
		{"unknown subcommand", env, []string{"purge"}, 2, `unknown subcommand "purge"`},
		{"extra argument", env, []string{"verify", "now"}, 2, `unexpected arguments ["now"]`},
		{"bad since", env, []string{"query", "--since", "yesterday"}, 2, `--since: "yesterday" is not a time`},
		{"negative since", env, []string{"query", "--since", "-1h"}, 2, "must not be negative"},
		{"bad result", env, []string{"query", "--result", "ok"}, 2, `--result: unknown result "ok" (want one of hit, miss,`},
		{"no log", map[string]string{"MODGATE_DATA_DIR": t.TempDir()}, []string{"verify"}, 2, "no audit log in "},
		{"no data dir", map[string]string{}, []string{"verify"}, 2, "data_dir"},
		{"bad audit config", map[string]string{"MODGATE_DATA_DIR": data, "MODGATE_CONFIG": auditConfigFile(t, "audit:\n  dir: relative\n")}, []string{"verify"}, 2, `audit.dir: "relative" is not an absolute path`},
		{"no key", env, []string{"verify", "--key", filepath.Join(data, "none.pub")}, 2, "reading audit key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := auditRun(t, tt.env, tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.stderr) {
				t.Errorf("audit %v = %d, stderr %q; want %d and %q", tt.args, code, stderr, tt.code, tt.stderr)
			}
		})
	}
}

func auditConfigFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "modgate.yaml")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
