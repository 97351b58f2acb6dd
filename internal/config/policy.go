package config

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/modgate/modgate/internal/policy"
)

// Policy is the "policy" section: which modules and versions may be
// served (see package policy for how each rule is evaluated), where the
// vulnerability database comes from, and how versions are dated.
type Policy struct {
	// DryRun evaluates and records every rule but never blocks or warns:
	// a way to try a new policy on live traffic. Default false.
	DryRun bool `yaml:"dry_run"`

	// Rules are evaluated in order for every request; each has a unique
	// name and exactly one kind (deny, allow, pin, cooldown,
	// vulnerabilities or licenses). Empty: everything is allowed.
	Rules []PolicyRule `yaml:"rules"`

	// VulnDB says where the vulnerability database comes from.
	VulnDB PolicyVulnDB `yaml:"vulndb"`

	// Ages says how versions are dated for cooldown rules.
	Ages PolicyAges `yaml:"ages"`

	// UnmappedPseudoVersions is what a deny, allow or pin rule that names
	// versions does with a pseudo-version of its module whose commit no
	// known tag points at (the tag's .info Origin names the commit):
	// "block" (default), "warn", or "allow" (judge the pseudo-version by
	// its own version string, which any commit can be given).
	UnmappedPseudoVersions string `yaml:"unmapped_pseudo_versions"`
}

// PolicyRule is one element of policy.rules. Exactly one of the kind keys
// (deny, allow, pin, cooldown, vulnerabilities, licenses) must be set;
// write `vulnerabilities: {}` for a vulnerabilities rule without accepted
// risks.
type PolicyRule struct {
	// Name identifies the rule in refusals, headers and audit records.
	Name string `yaml:"name"`
	// Action is "block" (default: refuse with 403) or "warn" (serve with
	// an X-Modgate-Policy-Warning header).
	Action string `yaml:"action,omitempty"`
	// Reason is shown to the developer after the rule's finding.
	Reason string `yaml:"reason,omitempty"`
	// Contact says whom to ask ("#platform on chat"); shown too.
	Contact string `yaml:"contact,omitempty"`
	// DryRun evaluates and records the rule but never blocks or warns.
	DryRun bool `yaml:"dry_run,omitempty"`

	// Deny refuses the modules (every file) or, with versions, those
	// versions of them.
	Deny PolicyModules `yaml:"deny,omitempty"`
	// Allow is allow-list mode: modules not listed are refused; with
	// versions, listed modules only in those versions.
	Allow PolicyModules `yaml:"allow,omitempty"`
	// Pin approves only the listed versions of the modules.
	Pin PolicyModules `yaml:"pin,omitempty"`
	// Cooldown refuses versions younger than a minimum age.
	Cooldown PolicyCooldown `yaml:"cooldown,omitempty"`
	// Vulnerabilities refuses versions with known vulnerabilities.
	Vulnerabilities PolicyVulns `yaml:"vulnerabilities,omitempty"`
	// Licenses refuses versions whose licence is not allowed.
	Licenses PolicyLicenses `yaml:"licenses,omitempty"`
}

// PolicyModules is the body of a deny, allow or pin rule.
type PolicyModules struct {
	// Modules are module path patterns (GOPRIVATE syntax:
	// "example.com/lib", "corp.example/*").
	Modules []string `yaml:"modules"`
	// Versions are semver ranges, any of which may match: "v1.2.3",
	// ">=v1.2.0 <v1.4.0", "<v2.0.0". Required for pin.
	Versions []string `yaml:"versions,omitempty"`

	// Present is set when the key is in the file (by UnmarshalYAML), so
	// that "vulnerabilities: {}" is a rule and an absent key is not.
	// Set it when building a rule in Go.
	Present bool `yaml:"-"`
}

// PolicyCooldown is the body of a cooldown rule.
type PolicyCooldown struct {
	// MinAge is the minimum age of a version ("72h", "168h").
	MinAge Duration `yaml:"min_age"`
	// Exempt are module path patterns the rule skips.
	Exempt []string `yaml:"exempt,omitempty"`

	Present bool `yaml:"-"` // see PolicyModules.Present
}

// PolicyVulns is the body of a vulnerabilities rule.
type PolicyVulns struct {
	// Allow lists accepted risks: vulnerabilities ignored until a date.
	Allow []PolicyVulnAccept `yaml:"allow,omitempty"`

	Present bool `yaml:"-"` // see PolicyModules.Present
}

// PolicyVulnAccept is one accepted vulnerability.
type PolicyVulnAccept struct {
	// ID is the vulnerability's ID or an alias: "GO-2024-1234",
	// "CVE-2024-12345", "GHSA-xxxx-xxxx-xxxx".
	ID string `yaml:"id"`
	// Until is the last day the acceptance applies ("2026-06-30", in UTC:
	// it expires when that day ends), or an exact RFC 3339 time at which
	// it expires.
	Until string `yaml:"until"`
}

// PolicyLicenses is the body of a licences rule.
type PolicyLicenses struct {
	// Allow are the allowed SPDX licence IDs ("MIT", "Apache-2.0").
	Allow []string `yaml:"allow"`
	// Unknown is the action for a version whose licence is not
	// recognised: "block" (default), "warn" or "allow".
	Unknown string `yaml:"unknown,omitempty"`
	// Exempt are module path patterns the rule skips (internal modules
	// without a licence file).
	Exempt []string `yaml:"exempt,omitempty"`

	Present bool `yaml:"-"` // see PolicyModules.Present
}

// The kind bodies record whether their key was present (Present), so
// that "vulnerabilities: {}" is a rule and an absent key is not; IsZero
// makes the printed configuration leave absent kinds out.

// UnmarshalYAML decodes the mapping and sets Present.
func (m *PolicyModules) UnmarshalYAML(n *yaml.Node) error {
	type plain PolicyModules
	return decodeKind(n, (*plain)(m), &m.Present)
}

// IsZero reports whether the key was absent.
func (m PolicyModules) IsZero() bool { return !m.Present }

// UnmarshalYAML decodes the mapping and sets Present.
func (c *PolicyCooldown) UnmarshalYAML(n *yaml.Node) error {
	type plain PolicyCooldown
	return decodeKind(n, (*plain)(c), &c.Present)
}

// IsZero reports whether the key was absent.
func (c PolicyCooldown) IsZero() bool { return !c.Present }

// UnmarshalYAML decodes the mapping and sets Present.
func (v *PolicyVulns) UnmarshalYAML(n *yaml.Node) error {
	type plain PolicyVulns
	return decodeKind(n, (*plain)(v), &v.Present)
}

// IsZero reports whether the key was absent.
func (v PolicyVulns) IsZero() bool { return !v.Present }

// UnmarshalYAML decodes the mapping and sets Present.
func (l *PolicyLicenses) UnmarshalYAML(n *yaml.Node) error {
	type plain PolicyLicenses
	return decodeKind(n, (*plain)(l), &l.Present)
}

// IsZero reports whether the key was absent.
func (l PolicyLicenses) IsZero() bool { return !l.Present }

// decodeKind decodes a rule kind's mapping into dst (a type without the
// UnmarshalYAML method, so this does not recurse) and marks it present.
// Unknown keys inside were already reported by the strict walker.
func decodeKind(n *yaml.Node, dst any, set *bool) error {
	if err := n.Decode(dst); err != nil {
		return err
	}
	*set = true
	return nil
}

// PolicyVulnDB configures the vulnerability database copy.
type PolicyVulnDB struct {
	// URL is the database to sync from, in the OSV layout
	// (index/db.json, index/modules.json, ID/<id>.json), http, https or
	// file; a file:///dir without index/db.json may also be a flat
	// directory of <id>.json entries. Empty: no syncing; the copy in Dir
	// is used as it is.
	URL string `yaml:"url"`
	// Dir holds the local copy (absolute path). Empty: the "vulndb"
	// directory in data_dir.
	Dir string `yaml:"dir"`
	// SyncInterval is how often the copy is refreshed from URL.
	// Default 1h.
	SyncInterval Duration `yaml:"sync_interval"`
}

// PolicyAges configures how versions are dated for cooldown rules.
type PolicyAges struct {
	// PublishTimeSource dates a version modgate did not see appear in the
	// list of a module it was already watching: "info" (default: the
	// .info Time, the commit time, which tagging an old commit
	// back-dates) or "first-request" (the time modgate first saw the
	// version at all; strict: a newly watched module's versions all wait
	// out the cooldown).
	PublishTimeSource string `yaml:"publish_time_source"`
}

// Source returns publish_time_source in the form policy.OpenAges takes;
// call it after Validate.
func (a PolicyAges) Source() policy.PublishTimeSource {
	s, _ := policy.ParsePublishTimeSource(a.PublishTimeSource)
	return s
}

// Engine converts the rules to the Go form package policy compiles
// (policy.New). Every problem is reported, joined, each naming the key as
// in the file ("policy.rules[2].deny.versions[0]: ..."); they are the
// problems Validate reports for policy.rules.
func (p Policy) Engine() (policy.Config, error) {
	var errs []error
	cfg := p.convert(func(suffix, msg string) {
		errs = append(errs, &Problem{Key: "policy.rules" + suffix, Msg: msg})
	})
	if len(errs) > 0 {
		return policy.Config{}, errors.Join(errs...)
	}
	return cfg, nil
}

// kinds lists a rule's kind keys in file order with whether each is set.
func (r PolicyRule) kinds() []struct {
	name string
	set  bool
} {
	return []struct {
		name string
		set  bool
	}{
		{"deny", r.Deny.Present}, {"allow", r.Allow.Present}, {"pin", r.Pin.Present},
		{"cooldown", r.Cooldown.Present}, {"vulnerabilities", r.Vulnerabilities.Present}, {"licenses", r.Licenses.Present},
	}
}

// convert builds the policy.Config, reporting each problem with the key
// suffix after "policy.rules" ("[2].deny.versions[0]").
func (p Policy) convert(report func(suffix, msg string)) policy.Config {
	cfg := policy.Config{DryRun: p.DryRun}
	// Checked by the validator (policy.unmapped_pseudo_versions); an
	// invalid value makes policy.New fail.
	cfg.UnmappedPseudoVersions = policy.Action(p.UnmappedPseudoVersions)
	names := make(map[string]int)
	for i, r := range p.Rules {
		at := fmt.Sprintf("[%d]", i)
		bad := func(key, format string, args ...any) { report(at+key, fmt.Sprintf(format, args...)) }
		ok := true
		fail := func(key, format string, args ...any) { bad(key, format, args...); ok = false }

		switch first, dup := names[r.Name]; {
		case strings.TrimSpace(r.Name) == "":
			fail(".name", "every rule needs a name; it is shown in refusals")
		case dup:
			fail(".name", "%q is also the name of policy.rules[%d]; rule names must be unique", r.Name, first)
		default:
			names[r.Name] = i
		}
		action, err := policy.ParseAction(r.Action, false)
		if err != nil {
			fail(".action", "%v", err)
		}
		out := policy.Rule{Name: r.Name, Action: action, Reason: r.Reason, Contact: r.Contact, DryRun: r.DryRun}

		var set []string
		for _, k := range r.kinds() {
			if k.set {
				set = append(set, k.name)
			}
		}
		switch len(set) {
		case 0:
			fail("", "no rule kind; set one of deny, allow, pin, cooldown, vulnerabilities or licenses (write \"vulnerabilities: {}\" for a vulnerabilities rule without accepted risks)")
			continue
		case 1:
		default:
			fail("", "sets %s; a rule has exactly one kind, so split it into one rule per kind", strings.Join(set, " and "))
			continue
		}
		out.Kind = policy.RuleKind(set[0])
		key := "." + set[0]

		patterns := func(key string, list []string) {
			for j, pat := range list {
				if err := policy.CheckPattern(pat); err != nil {
					fail(fmt.Sprintf("%s[%d]", key, j), "%v; see 'go help module-private'", err)
				}
			}
		}
		modules := func(m PolicyModules, needVersions bool) {
			if len(m.Modules) == 0 {
				fail(key+".modules", "empty; list the module path patterns the rule is about, like [\"example.com/lib\"]")
			}
			patterns(key+".modules", m.Modules)
			if needVersions && len(m.Versions) == 0 {
				fail(key+".versions", "empty; list the approved versions or ranges, like [\"v1.2.3\", \">=v1.4.0 <v1.5.0\"]")
			}
			for j, s := range m.Versions {
				if _, err := policy.ParseRange(s); err != nil {
					fail(fmt.Sprintf("%s.versions[%d]", key, j), "%v; write comparisons such as \">=v1.2.0 <v1.4.0\"", err)
				}
			}
			out.Modules, out.Versions = m.Modules, m.Versions
		}
		switch out.Kind {
		case policy.KindDeny:
			modules(r.Deny, false)
		case policy.KindAllow:
			modules(r.Allow, false)
		case policy.KindPin:
			modules(r.Pin, true)
		case policy.KindCooldown:
			if r.Cooldown.MinAge.Duration <= 0 {
				fail(key+".min_age", "must be positive, like \"72h\"; got %q", r.Cooldown.MinAge.String())
			}
			patterns(key+".exempt", r.Cooldown.Exempt)
			out.MinAge, out.Exempt = r.Cooldown.MinAge.Duration, r.Cooldown.Exempt
		case policy.KindVulnerabilities:
			for j, a := range r.Vulnerabilities.Allow {
				k := fmt.Sprintf("%s.allow[%d]", key, j)
				if a.ID == "" {
					fail(k+".id", "empty; write the vulnerability ID or alias, like \"GO-2024-1234\"")
				}
				until, err := parseUntil(a.Until)
				if err != nil {
					fail(k+".until", "%v", err)
				}
				out.Accept = append(out.Accept, policy.Acceptance{ID: a.ID, Until: until})
			}
		case policy.KindLicenses:
			if len(r.Licenses.Allow) == 0 {
				fail(key+".allow", "empty; list the allowed SPDX licence IDs, like [\"MIT\", \"Apache-2.0\", \"BSD-3-Clause\"]")
			}
			for j, id := range r.Licenses.Allow {
				if id == "" || strings.ContainsFunc(id, func(r rune) bool { return r == ' ' || r == ',' }) {
					fail(fmt.Sprintf("%s.allow[%d]", key, j), "%q is not an SPDX licence ID; write one ID per element, like \"Apache-2.0\"", id)
				}
			}
			unknown, err := policy.ParseAction(r.Licenses.Unknown, true)
			if err != nil {
				fail(key+".unknown", "%v", err)
			}
			patterns(key+".exempt", r.Licenses.Exempt)
			out.Licenses, out.UnknownLicense, out.Exempt = r.Licenses.Allow, unknown, r.Licenses.Exempt
		}
		if ok {
			cfg.Rules = append(cfg.Rules, out)
		}
	}
	return cfg
}

// parseUntil parses an acceptance's expiry: a date (the acceptance holds
// through that day, UTC) or an RFC 3339 time (it expires at that instant).
func parseUntil(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, errors.New("empty; every accepted risk needs an expiry date, like \"2026-06-30\"")
	}
	if d, err := time.Parse(time.DateOnly, s); err == nil {
		return d.AddDate(0, 0, 1), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is not a date; write it like \"2026-06-30\" (or an RFC 3339 time)", s)
}

// policy checks the "policy" section.
func (v *validator) policy() {
	p := v.c.Policy
	problems := len(v.problems)
	cfg := p.convert(func(suffix, msg string) { v.add("policy.rules", suffix, "%s", msg) })
	if _, err := policy.ParseAction(p.UnmappedPseudoVersions, true); err != nil {
		cfg.UnmappedPseudoVersions = "" // reported below, once
	}
	if len(v.problems) == problems {
		// The engine's own checks, in case they ever go beyond convert's.
		if _, err := policy.New(cfg, policy.Deps{}); err != nil {
			v.add("policy.rules", "", "%v", err)
		}
	}

	if s := p.VulnDB.URL; s != "" {
		u, err := url.Parse(s)
		switch {
		case err != nil:
			v.add("policy.vulndb.url", "", "%v", unwrapURLError(err))
		case u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "file":
			v.add("policy.vulndb.url", "", "scheme %q not supported (want https, http or file)", u.Scheme)
		case u.Scheme != "file" && u.Host == "":
			v.add("policy.vulndb.url", "", "%q has no host; write it like \"https://vuln.corp.example\"", u.Redacted())
		}
	}
	if d := p.VulnDB.Dir; d != "" && !filepath.IsAbs(d) {
		v.add("policy.vulndb.dir", "", "%q is not an absolute path; write the full path", d)
	}
	v.positive("policy.vulndb.sync_interval", p.VulnDB.SyncInterval)
	if _, err := policy.ParsePublishTimeSource(p.Ages.PublishTimeSource); err != nil {
		v.add("policy.ages.publish_time_source", "", "%v", err)
	}
	if _, err := policy.ParseAction(p.UnmappedPseudoVersions, true); err != nil {
		v.add("policy.unmapped_pseudo_versions", "", "%v", err)
	}
}
