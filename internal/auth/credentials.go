package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// This file is the one place that turns the credentials of an
// Authorization header into an Identity with its scopes, whichever method
// they belong to: modgate tokens, htpasswd users, LDAP users and OIDC ID
// tokens. Every method's identity says how it was established (Method),
// and why it has its scopes (Grants), which the audit log records.
//
// Which method a credential belongs to is decided from its shape, never
// by trying one method after another with the same secret:
//
//	credential                               method     Basic-auth user name
//	"mgt_<id>_<secret>" (Basic pass/Bearer)  token      ignored (any, or none)
//	Bearer that is not a token               OIDC       -
//	Basic, user "oidc"                       OIDC       must be "oidc"
//	Basic, any other user                    htpasswd,  the user; a user in the
//	                                         then LDAP  htpasswd file is never
//	                                                    looked up in LDAP

// OIDCUser is the Basic-auth user name that sends an OIDC ID token as the
// password.
const OIDCUser = "oidc"

// ErrDirectoryUnavailable means credentials could not be checked because
// the LDAP directory or the OIDC issuer's keys could not be reached: 503,
// never 401 (the user's credentials may be right) and never access.
var ErrDirectoryUnavailable = errors.New("identity provider unavailable")

// directoryError is a failure to reach the directory or an issuer. Its
// cause (addresses, LDAP result codes) is for the log; the client reads
// PublicError.
type directoryError struct{ cause error }

func (e *directoryError) Error() string   { return "identity provider unavailable: " + e.cause.Error() }
func (e *directoryError) Unwrap() []error { return []error{ErrDirectoryUnavailable, e.cause} }
func (e *directoryError) PublicError() string {
	return "the identity provider (directory or token issuer) cannot be reached, so credentials cannot be checked; try again later"
}

// wrongPassword is the one answer to a wrong password and an unknown user,
// whatever the method, so that the answer does not say which it was.
func wrongPassword() error { return unauthenticated("wrong user name or password") }

// A credential is what an Authorization header carries.
type credential struct {
	basic  bool
	user   string // Basic only
	secret string // the Basic password or the Bearer token
}

// parseCredential reads the Authorization header of r.
func parseCredential(r *http.Request) (credential, bool) {
	scheme, rest, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		tok := strings.TrimSpace(rest)
		return credential{secret: tok}, tok != ""
	case strings.EqualFold(scheme, "Basic"):
		user, password, ok := r.BasicAuth()
		return credential{basic: true, user: user, secret: password}, ok && password != ""
	}
	return credential{}, false
}

// isToken reports whether s has the form of a modgate token.
func isToken(s string) bool {
	_, _, ok := parseToken(s)
	return ok
}

// credentialIdentity establishes the identity from r's Authorization
// header (see the table above). Wrong credentials count against the
// client address's failure budget.
func (a *Authenticator) credentialIdentity(r *http.Request, id Identity) (Identity, error) {
	if !a.cfg.Tokens && a.htpasswd == nil && a.ldap == nil && a.oidc == nil {
		return id, unauthenticated("this server does not accept tokens or other credentials; remove them for it")
	}
	now := a.now()
	if d := a.limiter.blocked(id.ClientIP, now); d > 0 {
		return id, &refusal{
			msg:        fmt.Sprintf("too many failed attempts from %s; try again in %s", addrString(id.ClientIP), d.Round(time.Second)),
			kind:       ErrRateLimited,
			retryAfter: d,
		}
	}
	cred, ok := parseCredential(r)
	if !ok {
		a.limiter.fail(id.ClientIP, now)
		return id, unauthenticated("unsupported Authorization header; send a token, ID token or password as the Basic-auth password, or a token as a Bearer token")
	}
	switch {
	case isToken(cred.secret):
		return a.tokenIdentity(id, cred.secret, now)
	case a.oidc != nil && (!cred.basic || cred.user == OIDCUser):
		return a.oidcIdentity(r.Context(), id, cred.secret, now)
	case a.oidc != nil && looksLikeJWT(cred.secret):
		a.limiter.fail(id.ClientIP, now)
		return id, unauthenticated("an ID token is sent with the user name %q (or as a Bearer token), not %q", OIDCUser, truncate(cred.user, 100))
	case cred.basic && (a.htpasswd != nil || a.ldap != nil):
		return a.passwordIdentity(id, cred.user, cred.secret, now)
	}
	// A credential that no enabled method takes.
	a.limiter.fail(id.ClientIP, now)
	if !a.cfg.Tokens {
		return id, unauthenticated("this server does not accept this kind of credential; remove it for this server")
	}
	return id, unauthenticated("not a modgate token (want mgt_<id>_<secret>): %v", ErrInvalidToken)
}

// tokenIdentity checks a modgate token.
func (a *Authenticator) tokenIdentity(id Identity, secret string, now time.Time) (Identity, error) {
	if !a.cfg.Tokens {
		a.limiter.fail(id.ClientIP, now)
		return id, unauthenticated("this server does not accept tokens; remove the credentials for it")
	}
	tok, err := a.tokens.Authenticate(secret)
	switch {
	case errors.Is(err, ErrTokenExpired):
		return id, unauthenticated("%v; ask for a new token", err)
	case errors.Is(err, ErrInvalidToken):
		a.limiter.fail(id.ClientIP, now)
		return id, unauthenticated("%v", err)
	case err != nil:
		return id, fmt.Errorf("checking token: %w", err)
	}
	return Identity{Name: tok.Name, Method: MethodToken, TokenID: tok.ID, Scopes: tok.Scopes,
		Grants: []string{"token " + tok.ID}, ClientIP: id.ClientIP}, nil
}

// passwordIdentity checks a user name and password: the htpasswd file
// first, then the LDAP directory.
func (a *Authenticator) passwordIdentity(id Identity, user, password string, now time.Time) (Identity, error) {
	if !validUserName(user) {
		a.limiter.fail(id.ClientIP, now)
		return id, wrongPassword()
	}
	if a.htpasswd != nil {
		known, ok, err := a.htpasswd.check(user, password)
		switch {
		case err != nil:
			return id, fmt.Errorf("checking htpasswd user: %w", err)
		case known && !ok:
			a.limiter.fail(id.ClientIP, now)
			return id, wrongPassword()
		case known:
			scopes, grants := a.userScopes(user)
			return Identity{Name: user, Method: MethodHTPasswd, Scopes: scopes, Grants: grants, ClientIP: id.ClientIP}, nil
		}
	}
	if a.ldap != nil {
		res, err := a.ldap.check(user, password, now)
		switch {
		case errors.Is(err, errWrongPassword):
			a.limiter.fail(id.ClientIP, now)
			return id, wrongPassword()
		case err != nil:
			return id, err
		}
		scopes, grants := a.ldapScopes(res.groups)
		if len(scopes) == 0 {
			return id, forbidden("user %q is in no directory group that gives access to this server", user)
		}
		return Identity{Name: user, Method: MethodLDAP, Subject: res.dn, Scopes: scopes, Grants: grants, ClientIP: id.ClientIP}, nil
	}
	a.limiter.fail(id.ClientIP, now)
	return id, wrongPassword()
}

// oidcIdentity checks an OIDC ID token.
func (a *Authenticator) oidcIdentity(ctx context.Context, id Identity, raw string, now time.Time) (Identity, error) {
	res, err := a.oidc.verify(ctx, raw, now)
	if err != nil {
		if errors.Is(err, ErrUnauthenticated) {
			a.limiter.fail(id.ClientIP, now)
		}
		id.Method, id.Issuer, id.Subject = MethodOIDC, res.issuer, res.subject
		if res.name != "" {
			id.Name = res.name
		}
		return id, err
	}
	return Identity{Name: res.name, Method: MethodOIDC, Issuer: res.issuer, Subject: res.subject,
		Scopes: res.scopes, Grants: res.rules, ClientIP: id.ClientIP}, nil
}

// userScopes are an htpasswd user's scopes: its own, its groups', or the
// default ones when it is not listed.
func (a *Authenticator) userScopes(user string) ([]Scope, []string) {
	u, ok := a.users[user]
	if !ok {
		if len(a.cfg.HTPasswd.DefaultScopes) == 0 {
			return nil, nil
		}
		return a.cfg.HTPasswd.DefaultScopes, []string{"htpasswd default scopes"}
	}
	var scopes []Scope
	var grants []string
	if len(u.Scopes) > 0 {
		scopes = append(scopes, u.Scopes...)
		grants = append(grants, "user "+user)
	}
	for _, g := range u.Groups {
		scopes = append(scopes, a.groups[g]...)
		grants = append(grants, "group "+g)
	}
	return scopes, grants
}

// ldapScopes are the scopes of the configured groups among a directory
// user's groups (names compared without case, as LDAP does), or the
// default ones.
func (a *Authenticator) ldapScopes(groups []string) ([]Scope, []string) {
	var scopes []Scope
	var grants []string
	seen := make(map[string]bool)
	for _, g := range groups {
		key := strings.ToLower(g)
		s, ok := a.ldapGroups[key]
		if !ok || seen[key] {
			continue
		}
		seen[key] = true
		scopes = append(scopes, s...)
		grants = append(grants, "ldap group "+g)
	}
	if len(scopes) == 0 && len(a.cfg.LDAPDefaultScopes) > 0 {
		return a.cfg.LDAPDefaultScopes, []string{"ldap default scopes"}
	}
	return scopes, grants
}

// buildIdentities opens the htpasswd file, the LDAP checker and the OIDC
// verifier the configuration asks for.
func (a *Authenticator) buildIdentities() error {
	cfg := a.cfg
	a.groups = make(map[string][]Scope)
	a.ldapGroups = make(map[string][]Scope)
	for _, g := range cfg.Groups {
		a.groups[g.Name] = g.Scopes
		a.ldapGroups[strings.ToLower(g.Name)] = g.Scopes
	}
	var err error
	if cfg.HTPasswd != nil {
		a.users = make(map[string]UserScopes)
		for _, u := range cfg.HTPasswd.Users {
			for _, g := range u.Groups {
				if _, ok := a.groups[g]; !ok {
					return fmt.Errorf("auth: htpasswd user %q: no group %q", u.Name, g)
				}
			}
			a.users[u.Name] = u
		}
		if a.htpasswd, err = openHTPasswd(cfg.HTPasswd.File); err != nil {
			return fmt.Errorf("auth: %w", err)
		}
	}
	if cfg.LDAP != nil {
		if a.ldap, err = newLDAPChecker(*cfg.LDAP); err != nil {
			return fmt.Errorf("auth: %w", err)
		}
	}
	if cfg.OIDC != nil {
		if a.oidc, err = newOIDCVerifier(*cfg.OIDC); err != nil {
			return fmt.Errorf("auth: %w", err)
		}
	}
	return nil
}
