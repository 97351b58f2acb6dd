package policy

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/mod/semver"
)

// A Kind is the kind of protocol file a request asks for.
type Kind int

// The files of the GOPROXY protocol.
const (
	List   Kind = iota // @v/list
	Latest             // @latest
	Info               // @v/VERSION.info
	Mod                // @v/VERSION.mod
	Zip                // @v/VERSION.zip
)

var kindNames = [...]string{List: "list", Latest: "latest", Info: "info", Mod: "mod", Zip: "zip"}

// String returns "list", "latest", "info", "mod" or "zip".
func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// MarshalText encodes k as its name, for JSON.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// A Subject is what a decision is about: one file of one module version.
type Subject struct {
	Module string
	// Version is the canonical version; empty for List and Latest.
	Version string
	File    Kind
	// InfoTime is the Time of the version's .info file when the caller
	// has it (zero otherwise); see Ages for how a version's age is
	// computed from it.
	InfoTime time.Time
}

// String returns "module@version", or the module alone without a version.
func (s Subject) String() string {
	if s.Version == "" {
		return s.Module
	}
	return s.Module + "@" + s.Version
}

// A Verdict is the outcome of a decision.
type Verdict int

// Verdicts, in increasing severity.
const (
	Allow Verdict = iota // serve
	Warn                 // serve, with a warning header and an audit record
	Block                // refuse with 403
)

// String returns "allow", "warn" or "block".
func (v Verdict) String() string {
	switch v {
	case Allow:
		return "allow"
	case Warn:
		return "warn"
	case Block:
		return "block"
	}
	return fmt.Sprintf("Verdict(%d)", int(v))
}

// MarshalText encodes v as its name, for JSON.
func (v Verdict) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// An Outcome is what one rule concluded about a subject.
type Outcome string

// Outcomes of evaluating one rule.
const (
	// OutcomeMatch: the rule applies and objects (its action decides what
	// happens).
	OutcomeMatch Outcome = "match"
	// OutcomeNoMatch: the rule applies and does not object.
	OutcomeNoMatch Outcome = "no-match"
	// OutcomeNotApplicable: the rule does not refuse this kind of file
	// (version rules refuse only a version's .zip).
	OutcomeNotApplicable Outcome = "not-applicable"
	// OutcomeNotChecked: the information the rule needs is missing (no
	// vulnerability database, licence or age not known yet); the rule
	// does not object.
	OutcomeNotChecked Outcome = "not-checked"
)

// An Evaluation is one rule's conclusion, for the explain endpoint.
type Evaluation struct {
	Rule    string   `json:"rule"`
	Kind    RuleKind `json:"kind"`
	Outcome Outcome  `json:"outcome"`
	// Detail says why, in a phrase: "module is not on the allow list",
	// "GO-2024-1234 accepted until 2026-07-01".
	Detail string `json:"detail,omitempty"`
	// Pattern is the rule's module pattern (or exempt pattern) that
	// matched the module, as written in the rule; patterns match without
	// regard to case, so it may differ from the module path in case.
	Pattern string `json:"pattern,omitempty"`
}

// A Match is a rule that objected to a subject.
type Match struct {
	Rule    string   `json:"rule"`
	Kind    RuleKind `json:"kind"`
	Action  Action   `json:"action"` // ActionBlock or ActionWarn
	Reason  string   `json:"reason,omitempty"`
	Contact string   `json:"contact,omitempty"`
	// DryRun is set for a dry-run rule (or a globally dry-run policy): the
	// match is reported but neither blocks nor warns.
	DryRun bool `json:"dry_run,omitempty"`
	// Detail says what matched: "GO-2024-1234", "module is denied",
	// "licence AGPL-3.0 is not allowed (allowed: MIT, Apache-2.0)".
	Detail string `json:"detail"`
	// Pattern is the module pattern that made the rule apply, as in
	// Evaluation.
	Pattern string `json:"pattern,omitempty"`
	// Fix is a version without the problem, when the rule knows one (the
	// fixed version of a vulnerability).
	Fix string `json:"fix,omitempty"`
	// ModuleWide is set when the rule refuses the module as a whole
	// (every file, list and latest included).
	ModuleWide bool `json:"module_wide,omitempty"`
}

// effective reports whether the match changes the verdict.
func (m Match) effective() bool { return !m.DryRun }

// A Decision is the engine's answer for a subject. Every rule's evaluation
// is in Rules, in policy order; the objecting ones are also in Matches.
type Decision struct {
	Module  string       `json:"module"`
	Version string       `json:"version,omitempty"`
	File    Kind         `json:"file"`
	Verdict Verdict      `json:"verdict"`
	Matches []Match      `json:"matches,omitempty"`
	Rules   []Evaluation `json:"rules"`
}

// ErrBlocked matches the error returned by Decision.Err for a blocked
// subject; the server answers it with 403.
var ErrBlocked = errors.New("blocked by policy")

// A BlockedError is a blocked decision as an error; its text is the
// decision's Message.
type BlockedError struct {
	Decision Decision
}

func (e *BlockedError) Error() string { return e.Decision.Message() }

// Is makes a BlockedError match ErrBlocked.
func (e *BlockedError) Is(target error) bool { return target == ErrBlocked }

// Err returns nil unless the verdict is Block, and then a *BlockedError
// matching ErrBlocked whose text is Message.
func (d Decision) Err() error {
	if d.Verdict != Block {
		return nil
	}
	return &BlockedError{Decision: d}
}

// subject formats the decision's subject.
func (d Decision) subject() string {
	return Subject{Module: d.Module, Version: d.Version}.String()
}

// Message returns the one line the go command shows the developer (the
// server writes it as the 403 body, after "modgate: "):
//
//	example.com/x/y@v1.2.3 blocked by rule "no-critical-vulns": GO-2024-1234 (fixed in v1.2.4); contact security@corp.example
//
// It names the first blocking rule in policy order, its detail, its
// reason and contact when set, and how many other rules also block. For
// a Warn verdict it is the warning ("... allowed with a warning from rule
// ..."); for Allow it is empty.
func (d Decision) Message() string {
	var first *Match
	others := 0
	for i := range d.Matches {
		m := &d.Matches[i]
		if !m.effective() || (d.Verdict == Block) != (m.Action == ActionBlock) {
			continue
		}
		if first == nil {
			first = m
		} else {
			others++
		}
	}
	if first == nil {
		return ""
	}
	var b strings.Builder
	b.WriteString(d.subject())
	if d.Verdict == Block {
		b.WriteString(" blocked by rule ")
	} else {
		b.WriteString(" allowed with a warning from rule ")
	}
	fmt.Fprintf(&b, "%q: %s", first.Rule, first.describe())
	if others == 1 {
		b.WriteString(" (1 more rule also matches)")
	} else if others > 1 {
		fmt.Fprintf(&b, " (%d more rules also match)", others)
	}
	return oneLine(b.String())
}

// describe formats the match's detail, fix, reason and contact.
func (m Match) describe() string {
	s := m.Detail
	if m.Fix != "" {
		s += " (fixed in " + m.Fix + ")"
	}
	if m.Reason != "" {
		s += "; " + m.Reason
	}
	if m.Contact != "" {
		s += "; contact " + m.Contact
	}
	return s
}

// HeaderWarning is the response header that carries Decision.Header.
const HeaderWarning = "X-Modgate-Policy-Warning"

// Header returns the value of the HeaderWarning header for a served
// decision: every effective warn match as `rule "name": detail`, joined
// with "; ", on one line. It is empty when no warn rule matched.
func (d Decision) Header() string {
	var parts []string
	for _, m := range d.Matches {
		if m.effective() && m.Action == ActionWarn {
			parts = append(parts, fmt.Sprintf("rule %q: %s", m.Rule, m.describe()))
		}
	}
	return oneLine(strings.Join(parts, "; "))
}

// oneLine replaces control characters (newlines from multi-line reasons
// in YAML) with spaces, so a message stays one line and a header value
// stays valid.
func oneLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }), " ")
}

// Decide evaluates every rule for s. It never fails: missing information
// (no vulnerability database, unknown licence or age) makes the rule that
// needs it "not checked", which does not block.
//
// Which files a rule refuses: a deny rule without versions, and an allow
// rule for a module it does not list, refuse every file of the module,
// list and latest included. Every other rule (deny or allow with versions,
// pin, cooldown, vulnerabilities, licences) judges a version and refuses
// only its .zip: the go command reads the .info and .mod of many versions
// it never builds, so refusing those would break builds that do not use
// the version. Such versions are also left out of list and latest answers
// (Filter, Latest).
func (e *Engine) Decide(s Subject) Decision {
	d := Decision{Module: s.Module, Version: s.Version, File: s.File, Rules: make([]Evaluation, len(e.rules))}
	now := e.now()
	ct := newCommitTags(e.deps.Tags, s)
	if ct.pseudo && e.refusesModule(s.Module) {
		// Tags are looked up through the upstream; a module refused as a
		// whole is never fetched, and its verdict is Block anyway.
		ct.src = nil
	}
	for i := range e.rules {
		r := &e.rules[i]
		o, m := e.evaluate(r, s, &ct, now)
		d.Rules[i] = Evaluation{Rule: r.Name, Kind: r.Kind, Outcome: o, Detail: m.Detail, Pattern: m.Pattern}
		if o != OutcomeMatch {
			continue
		}
		m.Rule, m.Kind, m.Reason, m.Contact = r.Name, r.Kind, r.Reason, r.Contact
		if m.Action == "" {
			m.Action = r.Action
		}
		m.DryRun = r.DryRun || e.dryRun
		d.Matches = append(d.Matches, m)
		if m.effective() {
			switch {
			case m.Action == ActionBlock:
				d.Verdict = Block
			case m.Action == ActionWarn && d.Verdict == Allow:
				d.Verdict = Warn
			}
		}
	}
	return d
}

// Filter returns the versions of module that a list or latest answer may
// show: those whose .zip Decide would not block. Order is kept. A module
// refused as a whole keeps nothing.
func (e *Engine) Filter(module string, versions []string) (kept []string) {
	kept = make([]string, 0, len(versions))
	for _, v := range versions {
		if e.Decide(Subject{Module: module, Version: v, File: Zip}).Verdict != Block {
			kept = append(kept, v)
		}
	}
	return kept
}

// Latest returns the version an @latest answer should name when the
// upstream's own latest is blocked: the highest version in versions that
// Filter keeps, a release over any pre-release (as the go command picks).
// It returns false when no version is allowed.
func (e *Engine) Latest(module string, versions []string) (string, bool) {
	best := Highest(e.Filter(module, versions))
	return best, best != ""
}

// Highest returns the version the go command takes for @latest from a
// list: the highest release, else the highest pre-release; "" when
// versions holds no valid version.
func Highest(versions []string) string {
	best, bestRelease := "", false
	for _, v := range versions {
		if !semver.IsValid(v) {
			continue
		}
		release := semver.Prerelease(v) == ""
		switch {
		case best == "",
			release && !bestRelease,
			release == bestRelease && semver.Compare(v, best) > 0:
			best, bestRelease = v, release
		}
	}
	return best
}
