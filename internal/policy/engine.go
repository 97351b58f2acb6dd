package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/semver"
)

// An Engine decides what may be served. Its rules are fixed at New: a new
// policy (hot reload) is a new Engine. It is safe for concurrent use.
type Engine struct {
	rules    []compiled
	dryRun   bool
	unmapped Action // Config.UnmappedPseudoVersions
	deps     Deps
	now      func() time.Time
	lookups  *lookupCache
}

// New checks and compiles cfg: module patterns and version ranges are
// parsed once here, not per decision. Every problem is reported, joined;
// each matches ErrInvalidRule.
func New(cfg Config, deps Deps) (*Engine, error) {
	e := &Engine{dryRun: cfg.DryRun, deps: deps, now: deps.Now, lookups: newLookupCache(lookupCacheSize, lookupTTL)}
	if e.now == nil {
		e.now = time.Now
	}
	var errs []error
	var err error
	if e.unmapped, err = ParseAction(string(cfg.UnmappedPseudoVersions), true); err != nil {
		errs = append(errs, fmt.Errorf("%w: unmapped pseudo-versions: %v", ErrInvalidRule, err))
	}
	seen := make(map[string]bool)
	for _, r := range cfg.Rules {
		c, err := compile(r)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if seen[r.Name] {
			errs = append(errs, &ruleError{rule: r.Name, msg: "a second rule with this name; rule names must be unique"})
			continue
		}
		seen[r.Name] = true
		e.rules = append(e.rules, c)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return e, nil
}

// evaluate applies one rule to s. On OutcomeMatch the Match has Detail,
// Fix, ModuleWide and (for licence rules) Action filled in; otherwise only
// Detail is meaningful.
//
// ct is what is known about the commit of a pseudo-version subject; the
// Match's Pattern is the module pattern that made the rule apply.
func (e *Engine) evaluate(r *compiled, s Subject, ct *commitTags, now time.Time) (Outcome, Match) {
	zip := s.File == Zip && s.Version != ""
	switch r.Kind {
	case KindDeny:
		p := r.modules.match(s.Module)
		if p == "" {
			return OutcomeNoMatch, Match{}
		}
		if len(r.versions) == 0 {
			return OutcomeMatch, Match{Detail: "module is denied" + viaPattern(p, s.Module), ModuleWide: true, Pattern: p}
		}
		if !zip {
			return OutcomeNotApplicable, Match{Detail: "denies versions, which refuses only a version's .zip", Pattern: p}
		}
		o, m := e.judgeVersion(r, s, ct, func(v string) (bool, string) {
			if r.inVersions(v) {
				return true, fmt.Sprintf("version is in the denied range %s", r.versionList())
			}
			return false, fmt.Sprintf("version is not in the denied range %s", r.versionList())
		})
		m.Pattern = p
		return o, m

	case KindAllow:
		p := r.modules.match(s.Module)
		if p == "" {
			return OutcomeMatch, Match{Detail: "module is not on the allow list", ModuleWide: true}
		}
		if len(r.versions) == 0 {
			return OutcomeNoMatch, Match{Detail: "module is on the allow list" + viaPattern(p, s.Module), Pattern: p}
		}
		if !zip {
			return OutcomeNotApplicable, Match{Detail: "allows versions, which refuses only a version's .zip", Pattern: p}
		}
		o, m := e.judgeVersion(r, s, ct, func(v string) (bool, string) {
			if r.inVersions(v) {
				return false, fmt.Sprintf("version is in the allowed range %s", r.versionList())
			}
			return true, fmt.Sprintf("version is not in the allowed range %s", r.versionList())
		})
		m.Pattern = p
		return o, m

	case KindPin:
		p := r.modules.match(s.Module)
		if p == "" {
			return OutcomeNoMatch, Match{}
		}
		if !zip {
			return OutcomeNotApplicable, Match{Detail: "pins versions, which refuses only a version's .zip", Pattern: p}
		}
		o, m := e.judgeVersion(r, s, ct, func(v string) (bool, string) {
			if r.inVersions(v) {
				return false, "version is approved"
			}
			return true, fmt.Sprintf("version is not approved (approved: %s)", r.versionList())
		})
		m.Pattern = p
		return o, m

	case KindCooldown:
		if p := r.exempt.match(s.Module); p != "" {
			return OutcomeNoMatch, Match{Detail: "module is exempt" + viaPattern(p, s.Module), Pattern: p}
		}
		if !zip {
			return OutcomeNotApplicable, Match{Detail: "refuses only a version's .zip"}
		}
		return e.cooldown(r, s, ct, now)

	case KindVulnerabilities:
		if !zip {
			return OutcomeNotApplicable, Match{Detail: "refuses only a version's .zip"}
		}
		if e.deps.Vulns == nil {
			return OutcomeNotChecked, Match{Detail: "no vulnerability database"}
		}
		return e.vulnerabilities(r, s, ct, now)

	case KindLicenses:
		if p := r.exempt.match(s.Module); p != "" {
			return OutcomeNoMatch, Match{Detail: "module is exempt" + viaPattern(p, s.Module), Pattern: p}
		}
		if !zip {
			return OutcomeNotApplicable, Match{Detail: "refuses only a version's .zip"}
		}
		return e.licenses(r, s)
	}
	return OutcomeNoMatch, Match{} // unreachable: compile refuses other kinds
}

// viaPattern names the pattern that matched module when it is not the
// module path itself.
func viaPattern(p, module string) string {
	if p == module {
		return ""
	}
	return fmt.Sprintf(" (pattern %q)", p)
}

// cooldown judges s by its age. A pseudo-version whose commit is tagged is
// as old as the oldest of those tags whose age is known: its own .info time
// is whatever the commit says, and a fresh tag's code must not be had
// early under a back-dated pseudo-version.
func (e *Engine) cooldown(r *compiled, s Subject, ct *commitTags, now time.Time) (Outcome, Match) {
	var (
		age    time.Duration
		src    AgeSource
		prefix string
	)
	var tags []string
	if e.deps.Ages != nil {
		tags, _ = ct.get()
	}
	for _, t := range tags {
		if a, asrc := e.deps.Ages.Age(s.Module, t, time.Time{}); asrc != SourceUnknown && (src == SourceUnknown || a > age) {
			age, src = a, asrc
			prefix = fmt.Sprintf("pseudo-version of commit %s, which is tagged %s: ", ct.rev, t)
		}
	}
	switch {
	case src != SourceUnknown:
	case e.deps.Ages != nil:
		age, src = e.deps.Ages.Age(s.Module, s.Version, s.InfoTime)
	case !s.InfoTime.IsZero():
		age, src = now.Sub(s.InfoTime), SourceInfo
	}
	if src == SourceUnknown {
		return OutcomeNotChecked, Match{Detail: "age unknown: never seen in a list and no .info time"}
	}
	if age >= r.MinAge {
		return OutcomeNoMatch, Match{Detail: fmt.Sprintf("%s%s old (%s), minimum %s", prefix, roundAge(age), src.describe(), roundAge(r.MinAge))}
	}
	return OutcomeMatch, Match{Detail: fmt.Sprintf("%sversion is %s old (%s), younger than the minimum age %s; allowed from %s",
		prefix, roundAge(age), src.describe(), roundAge(r.MinAge), now.Add(r.MinAge-age).UTC().Format(time.RFC3339))}
}

// roundAge formats a duration for people: to the minute, or to the second
// under a minute.
func roundAge(d time.Duration) string {
	if d < 0 {
		return "-" + roundAge(-d)
	}
	if d < time.Minute {
		return d.Round(time.Second).String()
	}
	s := d.Round(time.Minute).String()
	s = strings.TrimSuffix(s, "0s")
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func (e *Engine) vulnerabilities(r *compiled, s Subject, ct *commitTags, now time.Time) (Outcome, Match) {
	vulns := e.lookups.get(s.Module, s.Version, now, e.deps.Vulns.Affecting)
	if more := vulnVersions(s, ct); len(more) > 0 {
		vulns = slices.Clone(vulns) // the cache's slice is shared
		for _, v := range more[1:] {
			for _, vu := range e.lookups.get(s.Module, v, now, e.deps.Vulns.Affecting) {
				if !slices.ContainsFunc(vulns, func(x Vuln) bool { return x.ID == vu.ID }) {
					vulns = append(vulns, vu)
				}
			}
		}
	}
	var ids, accepted []string
	fix, allFixed := "", true
	for _, v := range vulns {
		if a, ok := r.accepted(v, now); ok {
			accepted = append(accepted, acceptedText(v.ID, a))
			continue
		}
		ids = append(ids, v.ID)
		switch {
		case v.Fixed == "":
			allFixed = false
		case fix == "" || semver.Compare(v.Fixed, fix) > 0:
			fix = v.Fixed
		}
	}
	if len(ids) == 0 {
		if len(accepted) > 0 {
			return OutcomeNoMatch, Match{Detail: strings.Join(accepted, ", ")}
		}
		return OutcomeNoMatch, Match{Detail: "no known vulnerabilities"}
	}
	if !allFixed {
		fix = "" // no single version fixes them all
	}
	detail := strings.Join(ids, ", ")
	if tags, _ := ct.get(); len(tags) > 0 {
		detail += fmt.Sprintf(" (pseudo-version of commit %s, which is tagged %s)", ct.rev, strings.Join(tags, ", "))
	}
	return OutcomeMatch, Match{Detail: detail, Fix: fix}
}

// accepted returns the acceptance that covers v (by ID or alias) at now.
func (r *compiled) accepted(v Vuln, now time.Time) (Acceptance, bool) {
	for _, a := range r.Accept {
		if (strings.EqualFold(a.ID, v.ID) || slices.ContainsFunc(v.Aliases, func(al string) bool { return strings.EqualFold(al, a.ID) })) && a.active(now) {
			return a, true
		}
	}
	return Acceptance{}, false
}

func acceptedText(id string, a Acceptance) string {
	if a.ID != id {
		id += " (" + a.ID + ")"
	}
	if a.Until.IsZero() {
		return id + " accepted"
	}
	return id + " accepted until " + a.Until.UTC().Format(time.RFC3339)
}

func (e *Engine) licenses(r *compiled, s Subject) (Outcome, Match) {
	if e.deps.Licenses == nil {
		return OutcomeNotChecked, Match{Detail: "no licence detector"}
	}
	lic, ok := e.deps.Licenses.License(s.Module, s.Version)
	if !ok {
		return OutcomeNotChecked, Match{Detail: "licence not known yet (zip not seen)"}
	}
	if lic.Unknown() {
		detail := "licence not recognised: " + lic.unknownReason()
		if r.UnknownLicense == ActionAllow {
			return OutcomeNoMatch, Match{Detail: detail + "; allowed for unknown licences"}
		}
		return OutcomeMatch, Match{Detail: detail, Action: r.UnknownLicense}
	}
	var bad []string
	for _, id := range lic.IDs {
		if !r.allowed[id] {
			bad = append(bad, id)
		}
	}
	if len(bad) == 0 {
		return OutcomeNoMatch, Match{Detail: "licence " + strings.Join(lic.IDs, ", ") + " is allowed"}
	}
	phrase := "licence %s is not allowed (allowed: %s)"
	if len(bad) > 1 {
		phrase = "licences %s are not allowed (allowed: %s)"
	}
	return OutcomeMatch, Match{Detail: fmt.Sprintf(phrase, strings.Join(bad, ", "), strings.Join(r.Licenses, ", "))}
}
