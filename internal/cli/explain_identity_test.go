package cli

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/mod/sumdb/note"

	"github.com/modgate/modgate/internal/config"
)

// TestExplainIdentity: `modgate explain --identity` says which scopes an
// htpasswd user, an LDAP user with given groups and an OIDC token with
// given claims get, and from which group or rule, and what they may read.
func TestExplainIdentity(t *testing.T) {
	_, vkey, err := note.GenerateKey(rand.Reader, "sum.test")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"HOME": "/home/gopher", "LDAP_PW": "s3cret"}
	goenv := config.GoEnv{GOPROXY: "https://proxy.test", GOSUMDB: vkey}
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(htpasswd, []byte("alice:"+string(hash)+"\nzed:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := explainConfig(t, `auth:
  anonymous:
    scopes: ["read:example.com/public"]
  groups:
    - name: developers
      scopes: ["read:corp.example.com/*"]
  htpasswd:
    file: `+htpasswd+`
    users:
      - name: alice
        groups: [developers]
        scopes: ["publish:corp.example.com/tools"]
  ldap:
    url: ldaps://ldap.example:636
    bind_dn: cn=modgate,dc=example,dc=com
    bind_password_env: LDAP_PW
    user_base: ou=people,dc=example,dc=com
  oidc:
    issuers:
      - url: https://token.example
        audience: modgate
        rules:
          - name: acme-main
            claims: {repository: "acme/*", ref: refs/heads/main}
            scopes: ["read:corp.example.com/*"]
`)
	tests := []struct {
		name    string
		args    []string
		code    int
		want    []string
		wantErr string
	}{
		{"htpasswd user", []string{"--identity", "htpasswd:alice", "corp.example.com/lib"}, 0, []string{
			"identity alice (method htpasswd)",
			"publish:corp.example.com/tools", "from user alice (auth.htpasswd.users)",
			"read:corp.example.com/*", "from group developers (auth.groups)",
			"read:example.com/public", "from auth.anonymous.scopes",
			"corp.example.com/lib: may read",
		}, ""},
		{"htpasswd user not listed", []string{"--identity", "htpasswd:zed", "corp.example.com/lib"}, 0, []string{
			"not listed in auth.htpasswd.users", "none of its own", "corp.example.com/lib: may not read",
		}, ""},
		{"htpasswd user not in the file", []string{"--identity", "htpasswd:mallory"}, 0, []string{
			`"mallory" is not in the htpasswd file`, "checked against the LDAP directory instead",
		}, ""},
		{"ldap user in a group", []string{"--identity", "ldap:bob", "--groups", "Developers,others", "corp.example.com/lib"}, 0, []string{
			"read:corp.example.com/*", "from ldap group Developers", `directory group "others" is not in auth.groups`, "corp.example.com/lib: may read",
		}, ""},
		{"ldap user in no group", []string{"--identity", "ldap:bob", "--groups", "others"}, 0, []string{
			`Refused even with the right credentials: user "bob" is in no directory group`,
		}, ""},
		{"oidc matching", []string{"--identity", "oidc", "--claims", `{"iss":"https://token.example","aud":"modgate","sub":"repo:acme/app","repository":"acme/app","ref":"refs/heads/main"}`, "corp.example.com/lib"}, 0, []string{
			"identity repo:acme/app (method oidc)", "from rule acme-main (ref=refs/heads/main, repository=acme/app)", "corp.example.com/lib: may read",
		}, ""},
		{"oidc not matching", []string{"--identity", "oidc", "--claims", `{"iss":"https://token.example","aud":"other","sub":"x","repository":"acme/app","ref":"refs/heads/dev"}`}, 0, []string{
			`aud does not contain "modgate"`, `rule acme-main does not match: claim ref is "refs/heads/dev", want "refs/heads/main"`, "matches no claim rule",
		}, ""},
		{"oidc unknown issuer", []string{"--identity", "oidc", "--claims", `{"iss":"https://evil.example"}`}, 2, nil, `issuer "https://evil.example" (the claims' iss) is not in auth.oidc.issuers`},
		{"bad method", []string{"--identity", "token:ci"}, 2, nil, `want htpasswd:USER, ldap:USER or oidc`},
		{"groups without ldap", []string{"--identity", "htpasswd:alice", "--groups", "x"}, 2, nil, "--groups goes with --identity ldap:USER"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := explainRun(t, env, goenv, append([]string{"--config", file}, tt.args...)...)
			if code != tt.code {
				t.Fatalf("explain %q = %d, want %d\nstdout:\n%s\nstderr:\n%s", tt.args, code, tt.code, stdout, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stdout, w) {
					t.Errorf("explain %q: stdout does not contain %q:\n%s", tt.args, w, stdout)
				}
			}
			if tt.wantErr != "" && !strings.Contains(stderr, tt.wantErr) {
				t.Errorf("explain %q: stderr does not contain %q:\n%s", tt.args, tt.wantErr, stderr)
			}
		})
	}
}
