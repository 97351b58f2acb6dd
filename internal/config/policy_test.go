package config

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/modgate/modgate/internal/policy"
)

const fullPolicy = `
policy:
  dry_run: true
  rules:
    - name: no-evil
      reason: use example.com/good instead
      contact: security@corp.example
      deny:
        modules: [example.com/evil, "*.bad.example"]
    - name: old-yaml
      action: warn
      dry_run: true
      deny:
        modules: [example.com/yaml]
        versions: ["<v3.0.0"]
    - name: approved
      allow:
        modules: ["corp.example/*", example.com/yaml]
    - name: pin-crypto
      pin:
        modules: [example.com/crypto]
        versions: [v0.31.0, ">=v0.35.0 <v0.36.0"]
    - name: cooldown
      cooldown:
        min_age: 72h
        exempt: ["corp.example/*"]
    - name: no-vulns
      vulnerabilities:
        allow:
          - id: GO-2024-1234
            until: 2026-06-30
          - id: CVE-2025-0001
            until: "2026-01-02T15:04:05Z"
    - name: plain-vulns
      vulnerabilities: {}
    - name: licences
      licenses:
        allow: [MIT, Apache-2.0, BSD-3-Clause]
        unknown: warn
        exempt: ["corp.example/*"]
  vulndb:
    url: https://vuln.corp.example
    dir: /srv/modgate/vulndb
    sync_interval: 30m
  ages:
    publish_time_source: first-request
`

func TestPolicyLoad(t *testing.T) {
	c, err := loadValid(t, fullPolicy)
	if err != nil {
		t.Fatalf("Validate = %v", err)
	}
	got, err := c.Policy.Engine()
	if err != nil {
		t.Fatalf("Engine() = %v", err)
	}
	want := policy.Config{DryRun: true, UnmappedPseudoVersions: policy.ActionBlock, Rules: []policy.Rule{
		{Name: "no-evil", Kind: policy.KindDeny, Action: policy.ActionBlock, Reason: "use example.com/good instead", Contact: "security@corp.example",
			Modules: []string{"example.com/evil", "*.bad.example"}},
		{Name: "old-yaml", Kind: policy.KindDeny, Action: policy.ActionWarn, DryRun: true,
			Modules: []string{"example.com/yaml"}, Versions: []string{"<v3.0.0"}},
		{Name: "approved", Kind: policy.KindAllow, Action: policy.ActionBlock, Modules: []string{"corp.example/*", "example.com/yaml"}},
		{Name: "pin-crypto", Kind: policy.KindPin, Action: policy.ActionBlock,
			Modules: []string{"example.com/crypto"}, Versions: []string{"v0.31.0", ">=v0.35.0 <v0.36.0"}},
		{Name: "cooldown", Kind: policy.KindCooldown, Action: policy.ActionBlock, MinAge: 72 * time.Hour, Exempt: []string{"corp.example/*"}},
		{Name: "no-vulns", Kind: policy.KindVulnerabilities, Action: policy.ActionBlock, Accept: []policy.Acceptance{
			{ID: "GO-2024-1234", Until: time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)},
			{ID: "CVE-2025-0001", Until: time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)},
		}},
		{Name: "plain-vulns", Kind: policy.KindVulnerabilities, Action: policy.ActionBlock},
		{Name: "licences", Kind: policy.KindLicenses, Action: policy.ActionBlock, Licenses: []string{"MIT", "Apache-2.0", "BSD-3-Clause"},
			UnknownLicense: policy.ActionWarn, Exempt: []string{"corp.example/*"}},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Engine() (-want +got):\n%s", diff)
	}
	if _, err := policy.New(got, policy.Deps{}); err != nil {
		t.Errorf("policy.New(Engine()) = %v", err)
	}
	if c.Policy.VulnDB.URL != "https://vuln.corp.example" || c.Policy.VulnDB.Dir != "/srv/modgate/vulndb" || c.Policy.VulnDB.SyncInterval.Duration != 30*time.Minute {
		t.Errorf("vulndb = %+v", c.Policy.VulnDB)
	}
	if s := c.Policy.Ages.Source(); s != policy.PublishFirstRequest {
		t.Errorf("Ages.Source() = %q, want %q", s, policy.PublishFirstRequest)
	}
}

func TestPolicyDefaults(t *testing.T) {
	c := validConfig(t)
	if c.Policy.VulnDB.SyncInterval.Duration != time.Hour || c.Policy.Ages.Source() != policy.PublishInfo || len(c.Policy.Rules) != 0 {
		t.Errorf("default policy = %+v, want no rules, sync every hour, info publish times", c.Policy)
	}
	cfg, err := c.Policy.Engine()
	if err != nil || len(cfg.Rules) != 0 || cfg.DryRun {
		t.Errorf("default Engine() = %+v, %v; want an empty policy", cfg, err)
	}
}

// TestPolicyPrintRoundTrip checks that --print-config shows the rules
// (absent kinds left out, "vulnerabilities: {}" kept) and that the
// printed file loads back to the same policy.
func TestPolicyPrintRoundTrip(t *testing.T) {
	c, err := loadValid(t, fullPolicy)
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.YAML()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "vulnerabilities: {}") {
		t.Errorf("YAML() lost the empty vulnerabilities rule:\n%s", out)
	}
	if strings.Contains(string(out), "pin: {") || strings.Contains(string(out), "modules: []") {
		t.Errorf("YAML() prints absent rule kinds:\n%s", out)
	}
	again, err := loadValid(t, string(out))
	if err != nil {
		t.Fatalf("printed config: %v\n%s", err, out)
	}
	want, _ := c.Policy.Engine()
	got, err := again.Policy.Engine()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("policy after printing and loading (-want +got):\n%s", diff)
	}
}

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		errs [][]string
	}{
		{
			name: "no kind",
			yaml: "policy:\n  rules:\n    - name: r\n      reason: why\n",
			errs: [][]string{{"policy.rules[0]: no rule kind; set one of deny, allow, pin, cooldown, vulnerabilities or licenses", `"vulnerabilities: {}"`}},
		},
		{
			name: "two kinds",
			yaml: "policy:\n  rules:\n    - name: r\n      deny: {modules: [a.example]}\n      pin: {modules: [a.example], versions: [v1.0.0]}\n",
			errs: [][]string{{"policy.rules[0]: sets deny and pin; a rule has exactly one kind, so split it"}},
		},
		{
			name: "missing and duplicate names",
			yaml: `policy:
  rules:
    - name: dup
      vulnerabilities: {}
    - deny: {modules: [a.example]}
    - name: dup
      vulnerabilities: {}
`,
			errs: [][]string{
				{"policy.rules[1].name: every rule needs a name"},
				{`policy.rules[2].name: "dup" is also the name of policy.rules[0]; rule names must be unique`},
			},
		},
		{
			name: "unknown action",
			yaml: "policy:\n  rules:\n    - name: r\n      action: deny\n      deny: {modules: [a.example]}\n",
			errs: [][]string{{`policy.rules[0].action: unknown action "deny" (want "block" or "warn")`}},
		},
		{
			name: "bad pattern and range",
			yaml: "policy:\n  rules:\n    - name: r\n      deny:\n        modules: [\"a.example/[\", \"a b\"]\n        versions: [\">=1.2.0\"]\n",
			errs: [][]string{
				{`policy.rules[0].deny.modules[0]: pattern "a.example/[" is not a valid glob`, "go help module-private"},
				{`policy.rules[0].deny.modules[1]: pattern "a b" contains a space`},
				{`policy.rules[0].deny.versions[0]: "1.2.0" in range ">=1.2.0" is not a semantic version (write it like v1.2.3)`},
			},
		},
		{
			name: "empty modules and pin without versions",
			yaml: "policy:\n  rules:\n    - name: a\n      allow: {}\n    - name: p\n      pin: {modules: [a.example]}\n",
			errs: [][]string{
				{"policy.rules[0].allow.modules: empty; list the module path patterns"},
				{"policy.rules[1].pin.versions: empty; list the approved versions"},
			},
		},
		{
			name: "cooldown without age",
			yaml: "policy:\n  rules:\n    - name: c\n      cooldown: {exempt: [\"corp.example/*\"]}\n",
			errs: [][]string{{`policy.rules[0].cooldown.min_age: must be positive, like "72h"; got "0s"`}},
		},
		{
			name: "cooldown age is a duration",
			yaml: "policy:\n  rules:\n    - name: c\n      cooldown: {min_age: 3d}\n",
			errs: [][]string{{"policy.rules[0].cooldown.min_age", `"3d" is not a duration`}},
		},
		{
			name: "acceptance without id or expiry",
			yaml: "policy:\n  rules:\n    - name: v\n      vulnerabilities:\n        allow:\n          - until: 2026-13-01\n          - id: GO-2024-1\n",
			errs: [][]string{
				{"policy.rules[0].vulnerabilities.allow[0].id: empty"},
				{`policy.rules[0].vulnerabilities.allow[0].until: "2026-13-01" is not a date`},
				{"policy.rules[0].vulnerabilities.allow[1].until: empty; every accepted risk needs an expiry date"},
			},
		},
		{
			name: "licences",
			yaml: "policy:\n  rules:\n    - name: l\n      licenses: {unknown: ignore}\n    - name: m\n      licenses: {allow: [\"MIT, Apache-2.0\"]}\n",
			errs: [][]string{
				{"policy.rules[0].licenses.allow: empty; list the allowed SPDX licence IDs"},
				{`policy.rules[0].licenses.unknown: unknown action "ignore" (want "block", "warn" or "allow")`},
				{`policy.rules[1].licenses.allow[0]: "MIT, Apache-2.0" is not an SPDX licence ID`},
			},
		},
		{
			name: "unknown key in a rule",
			yaml: "policy:\n  rules:\n    - name: r\n      deny: {module: [a.example]}\n",
			errs: [][]string{{"policy.rules[0].deny.module: unknown key (known keys in policy.rules[0].deny: modules, versions)"}},
		},
		{
			name: "vulndb and ages",
			yaml: "policy:\n  vulndb:\n    url: ftp://vuln.example\n    dir: vulndb\n    sync_interval: 0s\n  ages:\n    publish_time_source: commit\n",
			errs: [][]string{
				{`policy.vulndb.url: scheme "ftp" not supported (want https, http or file)`},
				{`policy.vulndb.dir: "vulndb" is not an absolute path`},
				{`policy.vulndb.sync_interval: must be positive`},
				{`policy.ages.publish_time_source: unknown publish time source "commit" (want "info" or "first-request")`},
			},
		},
		{
			name: "unmapped pseudo-versions",
			yaml: "policy:\n  unmapped_pseudo_versions: ignore\n  rules:\n    - name: r\n      pin: {modules: [a.example], versions: [v1.0.0]}\n",
			errs: [][]string{{`policy.unmapped_pseudo_versions: unknown action "ignore" (want "block", "warn" or "allow")`}},
		},
		{
			name: "vulndb file url",
			yaml: "policy:\n  vulndb:\n    url: file:///srv/vulndb\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, tt.yaml)
			c, err := Load(path, envOf(map[string]string{"HOME": "/home/gopher"}))
			if err == nil {
				if err = c.Resolve(testGoEnv); err != nil {
					t.Fatal(err)
				}
				err = c.Validate()
			}
			checkProblems(t, "Load+Validate", err, tt.errs)
			for _, msg := range problems(err) {
				if !strings.HasPrefix(msg, path+":") {
					t.Errorf("problem %q does not start with the file position", msg)
				}
			}
		})
	}
}

func TestPolicyEngineErrors(t *testing.T) {
	p := Policy{Rules: []PolicyRule{{Name: "r", Pin: PolicyModules{Present: true, Modules: []string{"a.example"}}}}}
	_, err := p.Engine()
	if err == nil || !strings.Contains(err.Error(), "policy.rules[0].pin.versions: empty") {
		t.Errorf("Engine() = %v, want the pin.versions problem", err)
	}
}
