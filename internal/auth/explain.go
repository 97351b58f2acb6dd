package auth

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// An IdentityQuery names an identity to explain without its credentials:
// what `modgate explain --identity` asks. Explaining contacts nothing: the
// directory is not asked for an LDAP user's groups (the caller says them)
// and an OIDC token's claims are taken as given, unverified.
type IdentityQuery struct {
	// Method is MethodHTPasswd, MethodLDAP or MethodOIDC.
	Method string
	// User is the htpasswd or LDAP user name.
	User string
	// Groups are the LDAP user's directory groups.
	Groups []string
	// Claims are an OIDC token's claims (the decoded payload); "iss"
	// picks the issuer.
	Claims map[string]any
}

// A Grant is one source of scopes and the scopes it gives.
type Grant struct {
	From   string // "group developers", "rule acme-main (...)", ...
	Scopes []Scope
}

// An IdentityExplanation says which scopes an identity gets and why.
type IdentityExplanation struct {
	Name   string
	Method string
	// Notes are facts that decide the outcome: whether the user is in the
	// htpasswd file, which rules did not match and on which claim.
	Notes []string
	// Grants are where the identity's scopes come from; Refused, when
	// set, is why the identity would be refused (403) even with the right
	// credentials.
	Grants  []Grant
	Refused string
	// Anonymous are the scopes every client has in addition.
	Anonymous []Scope
}

// Scopes are the identity's own scopes, from every grant.
func (e IdentityExplanation) Scopes() []Scope {
	var out []Scope
	for _, g := range e.Grants {
		out = append(out, g.Scopes...)
	}
	return out
}

// ExplainIdentity says which scopes q's identity gets, and why. Its error
// is a query the configuration cannot answer (a method that is not
// enabled, an issuer that is not trusted).
func (a *Authenticator) ExplainIdentity(q IdentityQuery) (IdentityExplanation, error) {
	ex := IdentityExplanation{Name: q.User, Method: q.Method}
	if a.cfg.Anonymous {
		ex.Anonymous = a.cfg.AnonymousScopes
	}
	switch q.Method {
	case MethodHTPasswd:
		if a.htpasswd == nil {
			return ex, fmt.Errorf("htpasswd users are not enabled (auth.htpasswd.file)")
		}
		if !a.htpasswd.has(q.User) {
			ex.Notes = append(ex.Notes, fmt.Sprintf("%q is not in the htpasswd file %s: every password is refused (401)", q.User, a.cfg.HTPasswd.File))
			if a.ldap != nil {
				ex.Notes = append(ex.Notes, "its password would be checked against the LDAP directory instead (explain it with ldap:"+q.User+")")
			}
			return ex, nil
		}
		u, listed := a.users[q.User]
		switch {
		case !listed && len(a.cfg.HTPasswd.DefaultScopes) > 0:
			ex.Grants = append(ex.Grants, Grant{From: "auth.htpasswd.default_scopes (user not listed in auth.htpasswd.users)", Scopes: a.cfg.HTPasswd.DefaultScopes})
		case !listed:
			ex.Notes = append(ex.Notes, "not listed in auth.htpasswd.users, and auth.htpasswd.default_scopes is empty: no scopes of its own")
		}
		if len(u.Scopes) > 0 {
			ex.Grants = append(ex.Grants, Grant{From: "user " + q.User + " (auth.htpasswd.users)", Scopes: u.Scopes})
		}
		for _, g := range u.Groups {
			ex.Grants = append(ex.Grants, Grant{From: "group " + g + " (auth.groups)", Scopes: a.groups[g]})
		}
	case MethodLDAP:
		if a.ldap == nil {
			return ex, fmt.Errorf("LDAP is not enabled (auth.ldap.url)")
		}
		if a.htpasswd != nil && a.htpasswd.has(q.User) {
			ex.Notes = append(ex.Notes, fmt.Sprintf("%q is in the htpasswd file, which wins: the directory is never asked for this user", q.User))
		}
		seen := make(map[string]bool)
		for _, g := range q.Groups {
			key := strings.ToLower(g)
			s, ok := a.ldapGroups[key]
			switch {
			case seen[key]:
			case ok:
				ex.Grants = append(ex.Grants, Grant{From: "ldap group " + g + " (auth.groups)", Scopes: s})
			default:
				ex.Notes = append(ex.Notes, fmt.Sprintf("directory group %q is not in auth.groups: it gives nothing", g))
			}
			seen[key] = true
		}
		if len(ex.Grants) == 0 {
			if len(a.cfg.LDAPDefaultScopes) > 0 {
				ex.Grants = append(ex.Grants, Grant{From: "auth.ldap.default_scopes (in no group of auth.groups)", Scopes: a.cfg.LDAPDefaultScopes})
			} else {
				ex.Refused = fmt.Sprintf("user %q is in no directory group that gives access to this server (403)", q.User)
			}
		}
	case MethodOIDC:
		if a.oidc == nil {
			return ex, fmt.Errorf("OIDC is not enabled (auth.oidc.issuers)")
		}
		iss, _ := q.Claims["iss"].(string)
		is := a.oidc.issuers[iss]
		if is == nil {
			return ex, fmt.Errorf("issuer %q (the claims' iss) is not in auth.oidc.issuers", iss)
		}
		ex.Name, _ = claimString(q.Claims[is.cfg.NameClaim])
		ex.Notes = append(ex.Notes, "issuer "+iss+"; the token must also carry audience "+is.cfg.Audience+", a valid exp, and a signature by one of the issuer's keys ("+algNames(is)+")")
		if !audienceHas(q.Claims["aud"], is.cfg.Audience) {
			ex.Notes = append(ex.Notes, fmt.Sprintf("these claims' aud does not contain %q: such a token is refused (401)", is.cfg.Audience))
		}
		for _, rule := range is.cfg.Rules {
			if why, ok := matchRule(rule, q.Claims); ok {
				ex.Grants = append(ex.Grants, Grant{From: why, Scopes: rule.Scopes})
			} else {
				ex.Notes = append(ex.Notes, fmt.Sprintf("rule %s does not match: %s", rule.Name, ruleMismatch(rule, q.Claims)))
			}
		}
		if len(ex.Grants) == 0 {
			ex.Refused = "the token matches no claim rule (403)"
		}
	default:
		return ex, fmt.Errorf("unknown method %q (want htpasswd, ldap or oidc)", q.Method)
	}
	return ex, nil
}

// ruleMismatch names the first claim of rule that claims do not match.
func ruleMismatch(rule ClaimRule, claims map[string]any) string {
	names := make([]string, 0, len(rule.Claims))
	for n := range rule.Claims {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		val, ok := claimString(claims[n])
		if !ok {
			return fmt.Sprintf("claim %s is missing or not a string (want %q)", n, rule.Claims[n])
		}
		if m, _ := path.Match(rule.Claims[n], val); !m {
			return fmt.Sprintf("claim %s is %q, want %q", n, val, rule.Claims[n])
		}
	}
	return "?"
}

func audienceHas(aud any, want string) bool {
	switch v := aud.(type) {
	case string:
		return v == want
	case []any:
		for _, x := range v {
			if s, ok := x.(string); ok && s == want {
				return true
			}
		}
	}
	return false
}

func algNames(is *issuer) string {
	names := make([]string, len(is.algs))
	for i, a := range is.algs {
		names[i] = string(a)
	}
	return strings.Join(names, ", ")
}
