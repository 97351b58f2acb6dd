package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestIdentityValidate: every mistake in the htpasswd, ldap, oidc and
// groups keys is reported at once, naming the key.
func TestIdentityValidate(t *testing.T) {
	htpasswd := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(htpasswd, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := loadValid(t, `auth:
  groups:
    - name: developers
      scopes: ["read:corp.example.com/*"]
    - name: Developers
      scopes: ["write:x"]
  htpasswd:
    file: `+htpasswd+`
    users:
      - name: alice
        groups: [developers, nobody]
      - name: bob
  ldap:
    url: ldap://ldap.example:389
    bind_dn: cn=modgate,dc=example,dc=com
    user_filter: (uid=alice)
    group_base: ou=groups,dc=example,dc=com
  oidc:
    skew: 1h
    issuers:
      - url: http://token.example
        algorithms: [HS256]
        rules:
          - name: everything
            scopes: [admin]
`)
	if err == nil {
		t.Fatal("Validate: no error")
	}
	for _, want := range []string{
		`auth.groups[1].name: "Developers" appears twice`,
		`auth.groups[1].scopes[0]: scope "write:x"`,
		`auth.htpasswd.users[0].groups[1]: no group "nobody" in auth.groups`,
		`auth.htpasswd.users[1]: give the user scopes or groups`,
		`auth.ldap.start_tls: required with an ldap:// URL`,
		`auth.ldap.user_base: required with bind_dn`,
		`auth.ldap.bind_password_env: set bind_password_env or bind_password_file`,
		`auth.ldap.user_filter: "(uid=alice)" does not contain {user}`,
		`auth.ldap.group_filter: set group_base and group_filter together`,
		`auth.oidc.skew: must be between 0 (default 30s) and 5m`,
		`auth.oidc.issuers[0].url: "http://token.example": want an https:// URL`,
		`auth.oidc.issuers[0].audience: required`,
		`auth.oidc.issuers[0].algorithms[0]: algorithm "HS256" is not accepted`,
		`auth.oidc.issuers[0].rules[0].claims: required`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: error does not contain %q:\n%v", want, err)
		}
	}
}

// TestIdentityConfig: a valid section converts to package auth's
// configuration, the service account's password read from its file.
func TestIdentityConfig(t *testing.T) {
	dir := t.TempDir()
	htpasswd := filepath.Join(dir, "htpasswd")
	pwFile := filepath.Join(dir, "bind-password")
	for name, data := range map[string]string{htpasswd: "", pwFile: "s3cret\n"} {
		if err := os.WriteFile(name, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c, err := loadValid(t, `auth:
  groups:
    - name: developers
      scopes: ["read:corp.example.com/*"]
  htpasswd:
    file: `+htpasswd+`
    users:
      - name: alice
        groups: [developers]
  ldap:
    url: ldaps://ldap.example:636
    bind_dn: cn=modgate,dc=example,dc=com
    bind_password_file: `+pwFile+`
    user_base: ou=people,dc=example,dc=com
  oidc:
    issuers:
      - url: https://token.example
        audience: https://modgate.example
        rules:
          - name: acme-main
            claims: {repository: "acme/*", ref: refs/heads/main}
            scopes: ["read:corp.example.com/*"]
`)
	if err != nil {
		t.Fatalf("Validate: %v", err)
	}
	ac, err := c.Auth.AuthConfig()
	if err != nil {
		t.Fatal(err)
	}
	if ac.HTPasswd == nil || ac.HTPasswd.File != htpasswd || len(ac.HTPasswd.Users) != 1 || ac.HTPasswd.Users[0].Groups[0] != "developers" {
		t.Errorf("HTPasswd = %+v", ac.HTPasswd)
	}
	if ac.LDAP == nil || ac.LDAP.BindPassword != "s3cret" || ac.LDAP.TLS.ServerName != "ldap.example" {
		t.Errorf("LDAP = %+v", ac.LDAP)
	}
	if ac.OIDC == nil || len(ac.OIDC.Issuers) != 1 || ac.OIDC.Issuers[0].Rules[0].Claims["ref"] != "refs/heads/main" {
		t.Errorf("OIDC = %+v", ac.OIDC)
	}
	out, err := c.YAML()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "s3cret") {
		t.Errorf("YAML() shows the bind password:\n%s", out)
	}
}
