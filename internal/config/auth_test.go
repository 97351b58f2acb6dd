package config

import (
	"crypto/tls"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/modgate/modgate/internal/auth"
)

// loadValid loads content as a config file, resolves and validates it.
func loadValid(t *testing.T, content string) (Config, error) {
	t.Helper()
	c, err := Load(writeConfig(t, content), envOf(map[string]string{"HOME": "/home/gopher"}))
	if err != nil {
		t.Fatalf("Load = %v", err)
	}
	if err := c.Resolve(testGoEnv); err != nil {
		t.Fatal(err)
	}
	return c, c.Validate()
}

func TestAuthDefaults(t *testing.T) {
	c := validConfig(t)
	ac, err := c.Auth.AuthConfig()
	if err != nil {
		t.Fatal(err)
	}
	if !ac.Anonymous || auth.FormatScopes(ac.AnonymousScopes) != "read:*" || !ac.Tokens || ac.FailedPerMinute != 10 {
		t.Errorf("default auth config = %+v, want open reads, tokens on, 10 failures a minute", ac)
	}
	if c.TLS.Enabled() {
		t.Error("TLS enabled by default")
	}
	if got, want := c.AuthDir(), "/home/gopher/.local/share/modgate/auth"; got != want {
		t.Errorf("AuthDir() = %q, want %q", got, want)
	}
}

func TestAuthLoad(t *testing.T) {
	c, err := loadValid(t, `
tls:
  cert_file: /etc/modgate/server.crt
  key_file: /etc/modgate/server.key
  client_ca_file: /etc/modgate/clients.pem
  min_version: "1.3"
auth:
  anonymous:
    enabled: true
    scopes: ["read:public.example/*"]
  tokens:
    enabled: false
  trusted_header:
    name: X-Forwarded-User
    proxies: [10.0.0.0/8, 192.0.2.7, "2001:db8::/32"]
    default_scopes: ["read:corp.example.com/*"]
    identities:
      - name: alice
        scopes: [admin]
  mtls:
    default_scopes: [read]
    identities:
      - name: ci-runner
        scopes: ["read:corp.example.com/*", "publish:corp.example.com/ci"]
  client_ips:
    allow: [192.0.2.0/24]
    deny: [192.0.2.66]
  failed_attempts:
    per_minute: 5
`)
	if err != nil {
		t.Fatalf("Validate = %v", err)
	}
	ac, err := c.Auth.AuthConfig()
	if err != nil {
		t.Fatal(err)
	}
	scopes := func(s ...string) []auth.Scope {
		out, err := auth.ParseScopes(s)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	prefixes := func(s ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, p := range s {
			out = append(out, netip.MustParsePrefix(p))
		}
		return out
	}
	want := auth.Config{
		Anonymous:           true,
		AnonymousScopes:     scopes("read:public.example/*"),
		TrustedHeader:       "X-Forwarded-User",
		TrustedProxies:      prefixes("10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32"),
		HeaderIdentities:    []auth.NamedScopes{{Name: "alice", Scopes: scopes("admin")}},
		HeaderDefaultScopes: scopes("read:corp.example.com/*"),
		CertIdentities:      []auth.NamedScopes{{Name: "ci-runner", Scopes: scopes("read:corp.example.com/*", "publish:corp.example.com/ci")}},
		CertDefaultScopes:   scopes("read"),
		Allow:               prefixes("192.0.2.0/24"),
		Deny:                prefixes("192.0.2.66/32"),
		FailedPerMinute:     5,
	}
	if diff := cmp.Diff(want, ac, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("AuthConfig() mismatch (-want +got):\n%s", diff)
	}
	opt, err := c.TLS.Options()
	if err != nil {
		t.Fatal(err)
	}
	if want := (auth.TLSOptions{CertFile: "/etc/modgate/server.crt", KeyFile: "/etc/modgate/server.key", ClientCAFile: "/etc/modgate/clients.pem", MinVersion: tls.VersionTLS13}); opt != want {
		t.Errorf("TLS.Options() = %+v, want %+v", opt, want)
	}
	if got := c.Where("auth.trusted_header.identities"); got == SourceDefault {
		t.Errorf("auth.trusted_header.identities comes from %q, want the file", got)
	}

	// --print-config output reads back to the same section.
	out, err := c.YAML()
	if err != nil {
		t.Fatal(err)
	}
	again, err := loadValid(t, string(out))
	if err != nil {
		t.Fatalf("reloading YAML(): %v\n%s", err, out)
	}
	if diff := cmp.Diff(c.Auth, again.Auth, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("auth after YAML() and Load mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(c.TLS, again.TLS); diff != "" {
		t.Errorf("tls after YAML() and Load mismatch (-want +got):\n%s", diff)
	}
}

func TestAuthValidate(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		errs [][]string
	}{
		{
			name: "anonymous closed",
			yaml: "auth:\n  anonymous:\n    enabled: false\n    scopes: []\n",
		},
		{
			name: "bad scopes",
			yaml: `auth:
  anonymous:
    scopes: ["read:ok.example", "write:x", admin, "read:a b"]
`,
			errs: [][]string{
				{"modgate.yaml:", `auth.anonymous.scopes[1]: scope "write:x": unknown permission "write" (want read:PATTERN, publish:PATTERN, admin or metrics)`},
				{"auth.anonymous.scopes[2]: anonymous clients cannot be given admin"},
				{`auth.anonymous.scopes[3]: scope "read:a b": pattern "a b" contains a space`},
			},
		},
		{
			name: "header without proxies",
			yaml: "auth:\n  trusted_header:\n    name: X-Forwarded-User\n",
			errs: [][]string{{"auth.trusted_header.proxies: required when auth.trusted_header.name is set"}},
		},
		{
			name: "proxies without header",
			yaml: "auth:\n  trusted_header:\n    proxies: [10.0.0.1]\n",
			errs: [][]string{{"auth.trusted_header.name: required when other auth.trusted_header keys are set"}},
		},
		{
			name: "bad header name",
			yaml: "auth:\n  trusted_header:\n    name: \"X User\"\n    proxies: [10.0.0.1]\n",
			errs: [][]string{{`auth.trusted_header.name: "X User" is not an HTTP header name`}},
		},
		{
			name: "authorization as header",
			yaml: "auth:\n  trusted_header:\n    name: authorization\n    proxies: [10.0.0.1]\n",
			errs: [][]string{{`auth.trusted_header.name: "authorization" has another meaning`}},
		},
		{
			name: "bad CIDRs",
			yaml: `auth:
  trusted_header:
    name: X-User
    proxies: [10.0.0.0/33, proxy.corp.example]
  client_ips:
    allow: [192.0.2.0/24]
    deny: ["fe80::1%eth0", 192.0.2.300]
`,
			errs: [][]string{
				{`auth.trusted_header.proxies[0]: "10.0.0.0/33" is not an address or CIDR prefix (write it like "10.0.0.0/8" or "192.0.2.7")`},
				{`auth.trusted_header.proxies[1]: "proxy.corp.example" is not an address or CIDR prefix`},
				{`auth.client_ips.deny[0]: "fe80::1%eth0" is not an address`},
				{`auth.client_ips.deny[1]: "192.0.2.300" is not an address`},
			},
		},
		{
			name: "identities",
			yaml: `tls:
  cert_file: /etc/m/c.crt
  key_file: /etc/m/c.key
  client_ca_file: /etc/m/ca.pem
auth:
  mtls:
    identities:
      - name: ci
        scopes: [read]
      - name: ci
        scopes: [publish:x.example]
      - scopes: [read]
      - name: empty
      - name: bad
        scopes: [read, "admin:corp.example.com"]
`,
			errs: [][]string{
				{`auth.mtls.identities[1].name: "ci" is also the name of auth.mtls.identities[0]; names must be unique`},
				{"auth.mtls.identities[2].name: required"},
				{"auth.mtls.identities[3].scopes: required"},
				{`auth.mtls.identities[4].scopes[1]: scope "admin:corp.example.com": admin applies to every module`},
			},
		},
		{
			name: "mtls without client CA",
			yaml: "auth:\n  mtls:\n    default_scopes: [read]\n",
			errs: [][]string{{"auth.mtls.default_scopes: client certificates are only verified with tls.client_ca_file set"}},
		},
		{
			name: "failed attempts out of range",
			yaml: "auth:\n  failed_attempts:\n    per_minute: -1\n",
			errs: [][]string{{"auth.failed_attempts.per_minute: must be between 0 (no limit) and 10000, got -1"}},
		},
		{
			name: "cert without key",
			yaml: "tls:\n  cert_file: /etc/m/c.crt\n",
			errs: [][]string{{"tls.key_file: required when tls.cert_file is set"}},
		},
		{
			name: "key without cert",
			yaml: "tls:\n  key_file: /etc/m/c.key\n",
			errs: [][]string{{"tls.cert_file: required when tls.key_file is set"}},
		},
		{
			name: "client CA without cert",
			yaml: "tls:\n  client_ca_file: /etc/m/ca.pem\n",
			errs: [][]string{{"tls.client_ca_file: client certificates need TLS: set tls.cert_file and tls.key_file too"}},
		},
		{
			name: "relative paths and bad version",
			yaml: "tls:\n  cert_file: c.crt\n  key_file: /etc/m/c.key\n  min_version: \"1.1\"\n",
			errs: [][]string{
				{`tls.cert_file: "c.crt" is not an absolute path`},
				{`modgate.yaml:4: tls.min_version: TLS version "1.1" not supported (want "1.2" or "1.3")`},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadValid(t, tt.yaml)
			checkProblems(t, "Validate()", err, tt.errs)
		})
	}
}
