package policy

import (
	"fmt"
	"path"
	"strings"
	"unicode"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
)

// CheckPattern reports whether p is a usable module path pattern: the
// GOPRIVATE syntax, a path.Match glob matched against as many leading
// elements of a module path as the pattern has ("corp.example/*" matches
// "corp.example/lib" and "corp.example/lib/v2"; "example.com/x" matches
// "example.com/x" and "example.com/x/sub" but not "example.com/xy").
// Policy patterns match without regard to case: "github.com/acme/lib"
// also matches "github.com/Acme/lib" (see the package documentation).
func CheckPattern(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("empty pattern")
	case strings.ContainsFunc(p, unicode.IsSpace):
		return fmt.Errorf("pattern %q contains a space; module paths never do", p)
	case strings.Contains(p, ","):
		return fmt.Errorf("pattern %q contains a comma; write one pattern per list element", p)
	}
	if _, err := path.Match(p, ""); err != nil {
		return fmt.Errorf("pattern %q is not a valid glob (%v)", p, err)
	}
	return nil
}

// patterns is a checked list of module path patterns, prepared for
// matching on the hot path.
type patterns []pattern

type pattern struct {
	text    string // as written, without a trailing slash
	fold    string // text in lower case: what is matched
	literal bool   // no glob characters
	prefix  string // the literal text of fold before the first glob character
}

func compilePatterns(ps []string) (patterns, error) {
	out := make(patterns, 0, len(ps))
	for _, p := range ps {
		if err := CheckPattern(p); err != nil {
			return nil, err
		}
		// As in MatchPrefixPatterns, a trailing slash means nothing.
		p = strings.TrimSuffix(p, "/")
		// Module paths are matched in lower case: code hosts and
		// upstream proxies serve "github.com/Acme/lib" (escaped
		// "!acme") as well as "github.com/acme/lib", so a rule written
		// for one spelling must hold for every other.
		fold := strings.ToLower(p)
		i := strings.IndexAny(fold, `*?[\`)
		if i < 0 {
			out = append(out, pattern{text: p, fold: fold, literal: true, prefix: fold})
		} else {
			out = append(out, pattern{text: p, fold: fold, prefix: fold[:i]})
		}
	}
	return out, nil
}

// match returns the first pattern matching module, in any case, or "" if
// none does.
func (ps patterns) match(module string) string {
	module = strings.ToLower(module) // no allocation when already lower case
	for i := range ps {
		if ps[i].matches(module) {
			return ps[i].text
		}
	}
	return ""
}

// matches reports whether mod, in lower case, is matched by p: x/mod's
// MatchPrefixPatterns, the go command's own GOPRIVATE logic, behind two
// shortcuts that give the same answers without its per-call parsing: a
// literal pattern matches itself and the paths below it, and a module not
// starting with a glob's literal prefix cannot match it.
func (p *pattern) matches(mod string) bool {
	if !strings.HasPrefix(mod, p.prefix) {
		return false
	}
	if p.literal {
		return len(mod) == len(p.fold) || mod[len(p.fold)] == '/'
	}
	return module.MatchPrefixPatterns(p.fold, mod)
}

// A Range is a set of versions: a conjunction of comparisons such as
// ">=v1.2.0 <v1.4.0". The zero Range contains every version.
type Range struct {
	text string
	cmps []comparison
}

type comparison struct {
	op      string // "=", ">=", ">", "<=", "<"
	version string // canonical
}

// ParseRange parses a version range: comparisons separated by spaces, all
// of which must hold. Each is an operator (=, >=, >, <=, <) followed by a
// semantic version; a version alone means "=" that version. Versions are
// compared with semver.Compare: pre-releases (and pseudo-versions, which
// are pre-releases) sort before their release, so "<v1.4.0" contains
// "v1.4.0-rc.1". Build suffixes such as "+incompatible" are ignored, so
// "=v2.0.0" contains "v2.0.0+incompatible". Examples: "v1.2.3",
// ">=v1.2.0 <v1.4.0", "<v2.0.0".
func ParseRange(s string) (Range, error) {
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return Range{}, fmt.Errorf("empty version range")
	}
	r := Range{text: strings.Join(fields, " ")}
	for _, f := range fields {
		op := "="
		for _, o := range []string{">=", "<=", ">", "<", "="} {
			if rest, ok := strings.CutPrefix(f, o); ok {
				op, f = o, rest
				break
			}
		}
		if !semver.IsValid(f) {
			return Range{}, fmt.Errorf("%q in range %q is not a semantic version (write it like v1.2.3)", f, s)
		}
		r.cmps = append(r.cmps, comparison{op: op, version: semver.Canonical(f)})
	}
	return r, nil
}

// Contains reports whether version is in r. A version that is not valid
// semver is in no range except the zero Range.
func (r Range) Contains(version string) bool {
	if len(r.cmps) == 0 {
		return true
	}
	if !semver.IsValid(version) {
		return false
	}
	for _, c := range r.cmps {
		n := semver.Compare(version, c.version)
		var ok bool
		switch c.op {
		case "=":
			ok = n == 0
		case ">=":
			ok = n >= 0
		case ">":
			ok = n > 0
		case "<=":
			ok = n <= 0
		case "<":
			ok = n < 0
		}
		if !ok {
			return false
		}
	}
	return true
}

// String returns the range as written, spaces normalised.
func (r Range) String() string { return r.text }
