package auth

import (
	"fmt"
	"path"
	"strings"
	"unicode"

	"golang.org/x/mod/module"
)

// A Permission is what a scope allows: Read < Publish < Admin, each
// implying the ones before it. Metrics stands apart: it allows reading
// /metrics and nothing else, and only Admin implies it.
type Permission int

// Permissions.
const (
	Read Permission = iota + 1
	Publish
	Admin
	Metrics
)

// implies reports whether a scope with permission have grants want.
func (have Permission) implies(want Permission) bool {
	switch {
	case have == Admin:
		return true
	case have == Metrics || want == Metrics:
		return have == want
	}
	return have >= want
}

// String returns "read", "publish" or "admin".
func (p Permission) String() string {
	switch p {
	case Read:
		return "read"
	case Publish:
		return "publish"
	case Admin:
		return "admin"
	case Metrics:
		return "metrics"
	}
	return fmt.Sprintf("Permission(%d)", int(p))
}

// A Scope grants a permission on the modules matching Pattern. Pattern uses
// GOPRIVATE syntax (path.Match globs matched against path prefixes, see
// module.MatchPrefixPatterns): "corp.example.com/team-a" matches that module
// and everything below it. "*" and "" mean every module. An Admin scope
// always applies to every module.
//
// Its text form, used in the configuration, the command line and JSON, is
// "read:PATTERN", "publish:PATTERN", "admin" or "metrics"; "read" and
// "publish" alone mean every module.
type Scope struct {
	Permission Permission
	Pattern    string
}

// ParseScope parses the text form of a scope.
func ParseScope(s string) (Scope, error) {
	perm, pattern, hasPattern := strings.Cut(s, ":")
	var sc Scope
	switch perm {
	case "read":
		sc.Permission = Read
	case "publish":
		sc.Permission = Publish
	case "admin":
		if hasPattern && pattern != "*" {
			return Scope{}, fmt.Errorf("scope %q: admin applies to every module; write \"admin\"", s)
		}
		return Scope{Permission: Admin, Pattern: "*"}, nil
	case "metrics":
		if hasPattern && pattern != "*" {
			return Scope{}, fmt.Errorf("scope %q: metrics is about no module; write \"metrics\"", s)
		}
		return Scope{Permission: Metrics, Pattern: "*"}, nil
	default:
		return Scope{}, fmt.Errorf("scope %q: unknown permission %q (want read:PATTERN, publish:PATTERN, admin or metrics)", s, perm)
	}
	if !hasPattern || pattern == "" {
		pattern = "*"
	}
	if err := checkPattern(pattern); err != nil {
		return Scope{}, fmt.Errorf("scope %q: %w", s, err)
	}
	sc.Pattern = pattern
	return sc, nil
}

// ParseScopes parses a list of scopes, failing on the first bad one.
func ParseScopes(list []string) ([]Scope, error) {
	out := make([]Scope, 0, len(list))
	for _, s := range list {
		sc, err := ParseScope(s)
		if err != nil {
			return nil, err
		}
		out = append(out, sc)
	}
	return out, nil
}

// checkPattern reports why pattern cannot match module paths.
func checkPattern(pattern string) error {
	switch {
	case strings.ContainsFunc(pattern, unicode.IsSpace):
		return fmt.Errorf("pattern %q contains a space; module paths never do", pattern)
	case strings.Contains(pattern, ","):
		return fmt.Errorf("pattern %q contains a comma; write one scope per pattern", pattern)
	}
	if _, err := path.Match(pattern, ""); err != nil {
		return fmt.Errorf("pattern %q is not a valid glob (%v)", pattern, err)
	}
	return nil
}

// String returns the text form ParseScope reads.
func (s Scope) String() string {
	if s.Permission == Admin || s.Permission == Metrics {
		return s.Permission.String()
	}
	p := s.Pattern
	if p == "" {
		p = "*"
	}
	return s.Permission.String() + ":" + p
}

// MarshalText encodes the text form, so scopes read well in JSON.
func (s Scope) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText decodes the text form.
func (s *Scope) UnmarshalText(b []byte) error {
	v, err := ParseScope(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Allows reports whether the scope grants p on mod. An empty mod means a
// request that is about no one module (an admin endpoint, the list of
// tokens): only scopes on every module grant it.
//
// Patterns match case-sensitively, unlike policy rules, which refuse
// every spelling of a module path. A scope only ever grants, so exact
// matching fails closed: "read:corp.example.com/team-a/*" does not grant
// "Corp.example.com/team-a/lib" (the client must use the module's own
// spelling), while folding case would let the grant reach paths the
// operator never named, such as "corp.example.com/Team-A/x", a different
// repository on a case-sensitive host.
func (s Scope) Allows(p Permission, mod string) bool {
	if !s.Permission.implies(p) {
		return false
	}
	if s.Permission == Admin || s.Permission == Metrics || s.Pattern == "" || s.Pattern == "*" {
		return true
	}
	return mod != "" && module.MatchPrefixPatterns(s.Pattern, mod)
}

// FormatScopes returns the text forms of scopes joined with commas.
func FormatScopes(scopes []Scope) string {
	parts := make([]string, len(scopes))
	for i, s := range scopes {
		parts[i] = s.String()
	}
	return strings.Join(parts, ",")
}

// anyAllows reports whether one of scopes grants p on mod.
func anyAllows(scopes []Scope, p Permission, mod string) bool {
	for _, s := range scopes {
		if s.Allows(p, mod) {
			return true
		}
	}
	return false
}
