package policy

import (
	"fmt"
	"slices"
	"strings"

	"golang.org/x/mod/module"
)

// A TagSource maps the commit of a pseudo-version to the tagged versions
// that point at it, so that a version rule judges a pseudo-version by the
// code it names and not by its spelling (see the package documentation).
//
// Tags returns the tagged (not pseudo-) versions of module whose commit
// hash starts with rev, the 12 hex digits a pseudo-version carries
// (module.PseudoVersionRev). A nil slice with a nil error means no known
// tag points at the commit; an error means the tags could not be looked
// up, which the engine treats like no tag. Tags must be safe for
// concurrent use; it may be slow the first time for a module (it reads
// the .info files of the module's tags).
type TagSource interface {
	Tags(module, rev string) ([]string, error)
}

// commitTags is what one decision knows about the commit of its subject's
// pseudo-version, looked up at most once and only when a rule needs it.
type commitTags struct {
	src    TagSource // nil: nothing is known
	module string
	pseudo bool   // the subject is a pseudo-version's .zip
	rev    string // its revision prefix

	done bool
	tags []string
	err  error
}

func newCommitTags(src TagSource, s Subject) commitTags {
	c := commitTags{src: src, module: s.Module}
	if s.File == Zip && module.IsPseudoVersion(s.Version) {
		if rev, err := module.PseudoVersionRev(s.Version); err == nil {
			c.pseudo, c.rev = true, strings.ToLower(rev)
		}
	}
	return c
}

// get returns the tags at the commit (empty when unmapped) and why they
// could not be looked up.
func (c *commitTags) get() ([]string, error) {
	if !c.pseudo || c.done {
		return c.tags, c.err
	}
	c.done = true
	if c.src == nil {
		return nil, nil
	}
	tags, err := c.src.Tags(c.module, c.rev)
	for _, t := range tags {
		if !module.IsPseudoVersion(t) && !slices.Contains(c.tags, t) {
			c.tags = append(c.tags, t)
		}
	}
	c.err = err
	return c.tags, c.err
}

// refusesModule reports whether an effective module rule (deny without
// versions, allow for a module it does not list) blocks every file of mod.
func (e *Engine) refusesModule(mod string) bool {
	if e.dryRun {
		return false
	}
	for i := range e.rules {
		r := &e.rules[i]
		if r.DryRun || r.Action != ActionBlock {
			continue
		}
		switch {
		case r.Kind == KindDeny && len(r.versions) == 0 && r.modules.match(mod) != "",
			r.Kind == KindAllow && r.modules.match(mod) == "":
			return true
		}
	}
	return false
}

// versionVerdict is how a version rule (deny, allow or pin with versions)
// judges one version: refused, and the phrase saying why or why not.
type versionVerdict func(version string) (refused bool, why string)

// judgeVersion applies a version rule to the .zip of s. A tagged version
// is judged as itself. A pseudo-version is judged by the commit it names:
//
//   - mapped (tags point at its commit): refused when the rule refuses any
//     of those tags, or, for a deny rule, the pseudo-version itself;
//     otherwise allowed, whatever its own spelling says;
//   - unmapped: refused when the rule refuses the pseudo-version itself;
//     otherwise Config.UnmappedPseudoVersions decides (block by default:
//     any commit can be spelled as a pseudo-version with any base, so a
//     rule that names versions cannot vouch for an unknown commit).
func (e *Engine) judgeVersion(r *compiled, s Subject, ct *commitTags, judge versionVerdict) (Outcome, Match) {
	own, why := judge(s.Version)
	if !ct.pseudo {
		if own {
			return OutcomeMatch, Match{Detail: why}
		}
		return OutcomeNoMatch, Match{Detail: why}
	}
	if own && r.Kind == KindDeny {
		return OutcomeMatch, Match{Detail: why}
	}
	tags, err := ct.get()
	if len(tags) > 0 {
		var bad []string
		var badWhy string
		for _, t := range tags {
			if refused, w := judge(t); refused {
				if bad == nil {
					badWhy = w
				}
				bad = append(bad, t)
			}
		}
		if len(bad) > 0 {
			return OutcomeMatch, Match{Detail: fmt.Sprintf("pseudo-version of commit %s, which is tagged %s: %s", ct.rev, strings.Join(bad, ", "), badWhy)}
		}
		_, okWhy := judge(tags[0])
		return OutcomeNoMatch, Match{Detail: fmt.Sprintf("pseudo-version of commit %s, which is tagged %s: %s", ct.rev, strings.Join(tags, ", "), okWhy)}
	}
	unmapped := fmt.Sprintf("commit %s matches no known tag", ct.rev)
	if err != nil {
		unmapped = fmt.Sprintf("commit %s could not be mapped to a tag", ct.rev)
	}
	if own {
		return OutcomeMatch, Match{Detail: why + " (pseudo-version; " + unmapped + ")"}
	}
	switch e.unmapped {
	case ActionAllow:
		return OutcomeNoMatch, Match{Detail: "pseudo-version; " + unmapped + "; allowed for unmapped pseudo-versions"}
	case ActionWarn:
		return OutcomeMatch, Match{Detail: "pseudo-version; " + unmapped + ", so the rule cannot judge it", Action: ActionWarn}
	}
	return OutcomeMatch, Match{Detail: "pseudo-version; " + unmapped + ", so the rule cannot judge it (only tagged versions and their commits are judged)"}
}

// vulnVersions returns the versions a vulnerabilities rule looks up for
// s when s is a mapped pseudo-version: the version itself and the tags at
// its commit (OSV ranges compare a pseudo-version by its spelling, which
// says nothing about the code when its base is v0.0.0; its tags do). It
// returns nil otherwise: only the version itself is looked up.
func vulnVersions(s Subject, ct *commitTags) []string {
	tags, _ := ct.get()
	if len(tags) == 0 {
		return nil
	}
	return append([]string{s.Version}, tags...)
}
