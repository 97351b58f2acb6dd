package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/auth"
	"github.com/modgate/modgate/internal/config"
)

// tokenRun runs the token command with a fake environment and clock and
// returns its exit status, stdout and stderr.
func tokenRun(t *testing.T, env map[string]string, now time.Time, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	deps := tokenDeps{
		getenv: func(k string) string { return env[k] },
		goEnv: func(context.Context) (config.GoEnv, error) {
			return config.GoEnv{GOPROXY: "https://proxy.test", GOSUMDB: "off"}, nil
		},
		now: func() time.Time { return now },
	}
	code := token(t.Context(), args, &stdout, &stderr, deps)
	return code, stdout.String(), stderr.String()
}

var tokenText = regexp.MustCompile(`(?m)^mgt_[0-9a-f]{16}_[0-9a-f]{64}$`)

func TestTokenCommand(t *testing.T) {
	dataDir := t.TempDir()
	cfgFile := filepath.Join(t.TempDir(), "modgate.yaml")
	if err := os.WriteFile(cfgFile, []byte("public_url: https://modgate.corp.example\ndata_dir: "+dataDir+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"HOME": "/home/gopher", "MODGATE_CONFIG": cfgFile}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

	code, stdout, stderr := tokenRun(t, env, now, "create", "--name", "ci", "--scope", "read:corp.example.com/team-a/*", "--scope", "read:corp.example.com/shared", "--expires", "90d")
	if code != 0 {
		t.Fatalf("token create = %d, stderr:\n%s", code, stderr)
	}
	text := tokenText.FindString(stdout)
	if text == "" {
		t.Fatalf("token create printed no token:\n%s", stdout)
	}
	for _, want := range []string{
		`Created token "ci" (id `,
		"read:corp.example.com/team-a/*,read:corp.example.com/shared, expires 2026-05-30 12:00:00.",
		"machine modgate.corp.example login token password " + text,
		"Authorization: Bearer " + text,
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("token create output lacks %q:\n%s", want, stdout)
		}
	}

	// The server's store, opened separately, accepts the token.
	store, err := auth.OpenTokens(filepath.Join(dataDir, "auth"), auth.TokensOptions{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := store.Authenticate(text)
	if err != nil {
		t.Fatalf("Authenticate(created token) = %v", err)
	}

	// Flags after the subcommand's argument, and --data-dir.
	code, _, stderr = tokenRun(t, map[string]string{"HOME": "/home/gopher"}, now, "create", "--scope", "admin,read", "--data-dir", dataDir, "--name", "platform")
	if code != 0 {
		t.Fatalf("token create --data-dir = %d, stderr:\n%s", code, stderr)
	}

	code, stdout, stderr = tokenRun(t, env, now.AddDate(0, 4, 0), "list")
	if code != 0 {
		t.Fatalf("token list = %d, stderr:\n%s", code, stderr)
	}
	// Both were created in the same second; the order is then by id.
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") {
		t.Fatalf("token list:\n%s", stdout)
	}
	row := func(name string) string {
		for _, l := range lines {
			if strings.Contains(l, "  "+name+"  ") {
				return l
			}
		}
		return ""
	}
	if ci := row("ci"); !strings.HasPrefix(ci, tok.ID) || !strings.HasSuffix(ci, "expired 2026-05-30 12:00:00") {
		t.Errorf("token list: row of ci %q, want its id first and that it expired:\n%s", ci, stdout)
	}
	if p := row("platform"); !strings.Contains(p, "admin,read:*") || !strings.HasSuffix(p, "never") {
		t.Errorf("token list: row of platform %q:\n%s", p, stdout)
	}
	if strings.Contains(stdout, text[20:]) {
		t.Errorf("token list shows a secret:\n%s", stdout)
	}

	code, stdout, stderr = tokenRun(t, env, now, "revoke", "ci")
	if code != 0 || !strings.Contains(stdout, `Revoked token "ci" (id `+tok.ID+")") {
		t.Fatalf("token revoke ci = %d, %q, %q", code, stdout, stderr)
	}
	if _, err := store.Authenticate(text); err == nil {
		t.Error("revoked token still authenticates in the server's store")
	}
	code, _, stderr = tokenRun(t, env, now, "revoke", "ci")
	if code != 1 || !strings.Contains(stderr, `no token with id or name "ci"`) {
		t.Errorf("token revoke of a revoked token = %d, stderr %q", code, stderr)
	}
}

func TestTokenCommandErrors(t *testing.T) {
	dataDir := t.TempDir()
	env := map[string]string{"HOME": "/home/gopher", "MODGATE_DATA_DIR": dataDir}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	if code, _, stderr := tokenRun(t, env, now, "create", "--name", "dup", "--scope", "read"); code != 0 {
		t.Fatalf("create = %d: %s", code, stderr)
	}
	disabled := filepath.Join(t.TempDir(), "modgate.yaml")
	if err := os.WriteFile(disabled, []byte("auth:\n  tokens:\n    enabled: false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	badConfig := filepath.Join(t.TempDir(), "modgate.yaml")
	if err := os.WriteFile(badConfig, []byte("auth:\n  anonymous:\n    scopes: [write]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		args       []string
		code       int
		wantStderr string
	}{
		{"no subcommand", nil, 2, "usage: modgate token create"},
		{"unknown subcommand", []string{"rotate"}, 2, `unknown subcommand "rotate"`},
		{"create without scope", []string{"create", "--name", "x"}, 2, "--name and at least one --scope are required"},
		{"bad scope", []string{"create", "--name", "x", "--scope", "write:x.example"}, 2, `unknown permission "write"`},
		{"bad expiry", []string{"create", "--name", "x", "--scope", "read", "--expires", "soon"}, 2, `expiry "soon"`},
		{"duplicate name", []string{"create", "--name", "dup", "--scope", "read"}, 2, `a token named "dup" already exists`},
		{"bad name", []string{"create", "--name", "a b", "--scope", "read"}, 2, "use letters, digits"},
		{"revoke without argument", []string{"revoke"}, 2, "want 1 arguments"},
		{"list with argument", []string{"list", "x"}, 2, "want 0 arguments"},
		{"invalid configuration", []string{"list", "--config", badConfig}, 2, `auth.anonymous.scopes[0]: scope "write"`},
		{"tokens disabled warns", []string{"create", "--config", disabled, "--name", "y", "--scope", "read"}, 0, "warning: auth.tokens.enabled is false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := tokenRun(t, env, now, tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("modgate token %q = %d, stderr %q; want %d containing %q", tt.args, code, stderr, tt.code, tt.wantStderr)
			}
		})
	}
	code, stdout, _ := tokenRun(t, map[string]string{"HOME": "/home/gopher", "MODGATE_DATA_DIR": t.TempDir()}, now, "list")
	if code != 0 || !strings.Contains(stdout, "No tokens.") {
		t.Errorf("list of an empty store = %d, %q", code, stdout)
	}
}
