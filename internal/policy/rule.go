package policy

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Config is the policy in its Go form: an ordered list of rules and the
// global dry-run switch. Package config builds it from the YAML file
// (config.Policy.Engine); New checks and compiles it.
type Config struct {
	// DryRun makes every rule a dry-run rule: evaluated and reported,
	// never blocking and never adding a warning header.
	DryRun bool
	// Rules are evaluated in order; every rule is evaluated for every
	// decision (a decision reports all matches, not just the first).
	Rules []Rule
	// UnmappedPseudoVersions is what a deny, allow or pin rule that names
	// versions does with a pseudo-version of its module whose commit no
	// known tag points at: ActionBlock (the default when empty),
	// ActionWarn or ActionAllow (judge the pseudo-version by its own
	// spelling, as a tagged version).
	UnmappedPseudoVersions Action
}

// A RuleKind says what a rule checks.
type RuleKind string

// The rule kinds. Module rules (deny and allow without versions, allow for a
// module it does not list) refuse every file of a module; the others are
// version rules, which refuse a version's .zip and hide it from list and
// latest (see the package documentation).
const (
	KindDeny            RuleKind = "deny"
	KindAllow           RuleKind = "allow"
	KindPin             RuleKind = "pin"
	KindCooldown        RuleKind = "cooldown"
	KindVulnerabilities RuleKind = "vulnerabilities"
	KindLicenses        RuleKind = "licenses"
)

// An Action is what a matching rule does.
type Action string

// Actions. ActionAllow is valid only as Rule.UnknownLicense.
const (
	ActionBlock Action = "block" // refuse the file (HTTP 403)
	ActionWarn  Action = "warn"  // serve it with a warning header
	ActionAllow Action = "allow" // serve it silently
)

// ParseAction parses "block" or "warn" (and "allow" when allowAllow is
// set, for the action on unknown licences). An empty string is "block".
func ParseAction(s string, allowAllow bool) (Action, error) {
	switch a := Action(s); a {
	case "":
		return ActionBlock, nil
	case ActionBlock, ActionWarn:
		return a, nil
	case ActionAllow:
		if allowAllow {
			return a, nil
		}
	}
	want := `"block" or "warn"`
	if allowAllow {
		want = `"block", "warn" or "allow"`
	}
	return "", fmt.Errorf("unknown action %q (want %s)", s, want)
}

// A Rule is one named rule. Kind selects which of the kind-specific fields
// apply; the others must be empty.
type Rule struct {
	Name    string
	Kind    RuleKind
	Action  Action // ActionBlock or ActionWarn; empty means ActionBlock
	Reason  string // optional text shown to the developer
	Contact string // optional "who to ask" text shown to the developer
	DryRun  bool   // evaluate and report, never block or warn

	// Modules are module path patterns (GOPRIVATE syntax: path.Match globs
	// matched against leading path elements) for deny, allow and pin.
	Modules []string
	// Versions are semver ranges (see ParseRange) for deny, allow and pin;
	// a version matches when it is in any of them. Deny and allow without
	// versions cover the whole module; pin requires them.
	Versions []string

	// MinAge is the cooldown: versions younger than this are refused.
	MinAge time.Duration
	// Exempt are module path patterns cooldown and licence rules skip.
	Exempt []string

	// Accept lists accepted vulnerabilities (vulnerabilities rules).
	Accept []Acceptance

	// Licenses is the allow list of SPDX licence IDs (licence rules).
	Licenses []string
	// UnknownLicense is the action when a version's licence is not
	// recognised (no licence file, or text the classifier does not know):
	// ActionBlock, ActionWarn or ActionAllow. Empty means ActionBlock.
	UnknownLicense Action
}

// An Acceptance is an accepted risk: vulnerability ID (or one of its
// aliases, such as a CVE) that a vulnerabilities rule ignores until Until.
type Acceptance struct {
	ID string
	// Until is when the acceptance expires: from that instant on the
	// vulnerability blocks again. Zero means it never expires.
	Until time.Time
}

// active reports whether the acceptance still applies at now.
func (a Acceptance) active(now time.Time) bool {
	return a.Until.IsZero() || now.Before(a.Until)
}

// A Vuln is one vulnerability affecting a module version.
type Vuln struct {
	ID      string   // "GO-2024-1234"
	Aliases []string // "CVE-2024-...", "GHSA-..."
	Summary string
	// Fixed is the lowest fixed version above the queried one; "" when
	// there is none.
	Fixed string
}

// A VulnSource answers which known vulnerabilities affect a module
// version. Affecting must be safe for concurrent use and cheap enough to
// call on the request path (the engine caches its answers for a short
// time, see lookupTTL).
type VulnSource interface {
	Affecting(module, version string) []Vuln
}

// A LicenseSource returns the licence of a module version. The boolean is
// false when it is not known (the zip has not been seen), in which case
// licence rules report "not checked" and do not block.
type LicenseSource interface {
	License(module, version string) (License, bool)
}

// Deps are what an Engine consults besides its rules. Each may be nil:
// without Vulns, vulnerabilities rules report "not checked"; without
// Licenses, so do licence rules; without Ages, a version's age is its .info
// time (Subject.InfoTime); without Now, time.Now is used.
type Deps struct {
	Vulns    VulnSource
	Ages     *Ages
	Licenses LicenseSource
	// Tags maps pseudo-versions to the tags at their commit; without it
	// every pseudo-version is unmapped.
	Tags TagSource
	Now  func() time.Time
}

// ErrInvalidRule matches every error New returns for a rule that cannot be
// compiled.
var ErrInvalidRule = errors.New("invalid policy rule")

// ruleError is an error in one rule.
type ruleError struct {
	rule string
	msg  string
}

func (e *ruleError) Error() string   { return fmt.Sprintf("rule %q: %s", e.rule, e.msg) }
func (e *ruleError) Is(t error) bool { return t == ErrInvalidRule }

// compiled is a rule ready for evaluation.
type compiled struct {
	Rule
	modules  patterns
	versions []Range
	exempt   patterns
	allowed  map[string]bool // licence IDs
}

// compile checks r and precompiles its patterns and ranges.
func compile(r Rule) (compiled, error) {
	c := compiled{Rule: r}
	fail := func(format string, args ...any) (compiled, error) {
		return compiled{}, &ruleError{rule: r.Name, msg: fmt.Sprintf(format, args...)}
	}
	if r.Name == "" {
		return fail("no name")
	}
	var err error
	if c.Action, err = ParseAction(string(r.Action), false); err != nil {
		return fail("%v", err)
	}
	if c.modules, err = compilePatterns(r.Modules); err != nil {
		return fail("modules: %v", err)
	}
	if c.exempt, err = compilePatterns(r.Exempt); err != nil {
		return fail("exempt: %v", err)
	}
	for _, s := range r.Versions {
		rg, err := ParseRange(s)
		if err != nil {
			return fail("versions: %v", err)
		}
		c.versions = append(c.versions, rg)
	}
	// Which fields a kind uses; anything else set is a mistake that would
	// otherwise be silently ignored.
	uses := map[RuleKind]string{
		KindDeny:            "modules versions",
		KindAllow:           "modules versions",
		KindPin:             "modules versions",
		KindCooldown:        "min_age exempt",
		KindVulnerabilities: "accept",
		KindLicenses:        "licenses unknown exempt",
	}
	fields, ok := uses[r.Kind]
	if !ok {
		return fail("unknown kind %q", r.Kind)
	}
	set := map[string]bool{
		"modules": len(r.Modules) > 0, "versions": len(r.Versions) > 0,
		"min_age": r.MinAge != 0, "exempt": len(r.Exempt) > 0,
		"accept": len(r.Accept) > 0, "licenses": len(r.Licenses) > 0,
		"unknown": r.UnknownLicense != "",
	}
	for f, isSet := range set {
		if isSet && !strings.Contains(" "+fields+" ", " "+f+" ") {
			return fail("%s does not apply to a %s rule", f, r.Kind)
		}
	}
	switch r.Kind {
	case KindDeny, KindAllow:
		if len(r.Modules) == 0 {
			return fail("a %s rule needs modules", r.Kind)
		}
	case KindPin:
		if len(r.Modules) == 0 || len(r.Versions) == 0 {
			return fail("a pin rule needs modules and versions")
		}
	case KindCooldown:
		if r.MinAge <= 0 {
			return fail("a cooldown rule needs a positive minimum age")
		}
	case KindVulnerabilities:
		for i, a := range r.Accept {
			if a.ID == "" {
				return fail("accept[%d]: no vulnerability ID", i)
			}
		}
	case KindLicenses:
		if len(r.Licenses) == 0 {
			return fail("a licences rule needs an allow list of SPDX IDs")
		}
		if c.UnknownLicense, err = ParseAction(string(r.UnknownLicense), true); err != nil {
			return fail("unknown: %v", err)
		}
		c.allowed = make(map[string]bool, len(r.Licenses))
		for _, id := range r.Licenses {
			c.allowed[id] = true
		}
	}
	return c, nil
}

// inVersions reports whether version is in any of the rule's ranges.
func (c *compiled) inVersions(version string) bool {
	for _, r := range c.versions {
		if r.Contains(version) {
			return true
		}
	}
	return false
}

// versionList formats the rule's ranges for messages.
func (c *compiled) versionList() string {
	var s []string
	for _, r := range c.versions {
		s = append(s, r.String())
	}
	return strings.Join(s, ", ")
}
