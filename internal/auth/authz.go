package auth

import (
	"errors"
	"fmt"
	"io/fs"
)

// Errors from Authorize (see the rule table in the package doc).
var (
	// ErrUnauthenticated: an anonymous client asked for something the
	// anonymous scopes do not allow, or sent bad credentials. 401 with
	// WWW-Authenticate: Challenge, so that the go command retries with
	// the credentials from .netrc or GOAUTH.
	ErrUnauthenticated = errors.New("authentication required")
	// ErrForbidden: the identity is known and lacks the permission. 403.
	ErrForbidden = errors.New("forbidden")
	// ErrHidden: an authenticated identity may not read a module. Errors
	// matching it also match fs.ErrNotExist and read "MODULE: not found",
	// so the client cannot tell the module exists; it lets the audit log
	// record a refusal rather than a miss.
	ErrHidden = errors.New("module not visible to this identity")
)

// hiddenError is a refused read that answers as "not found".
type hiddenError struct{ module string }

func (e *hiddenError) Error() string { return e.module + ": not found" }

func (e *hiddenError) Is(target error) bool {
	return target == fs.ErrNotExist || target == ErrHidden
}

// Authorize reports whether id may use permission p on module (a module
// path; empty for requests about no one module, such as admin endpoints,
// which only scopes on every module grant). The identity's own scopes and,
// when anonymous access is enabled, the anonymous scopes count. It returns
// nil, or an error matching ErrUnauthenticated, ErrForbidden, or
// ErrHidden and fs.ErrNotExist, whose text is fit for the client.
func (a *Authenticator) Authorize(id Identity, p Permission, module string) error {
	if anyAllows(id.Scopes, p, module) || (a.cfg.Anonymous && anyAllows(a.cfg.AnonymousScopes, p, module)) {
		return nil
	}
	what := "modgate"
	if module != "" {
		what = module
	}
	verb := map[Permission]string{Read: "read", Publish: "publish", Admin: "administer", Metrics: "read the metrics of"}[p]
	switch {
	case !id.Authenticated():
		return fmt.Errorf("anonymous clients may not %s %s; send a token as the password (.netrc or GOAUTH): %w", verb, what, ErrUnauthenticated)
	case p == Read && module != "":
		return &hiddenError{module: module}
	}
	return fmt.Errorf("%s %q may not %s %s: %w", describeMethod(id.Method), id.Name, verb, what, ErrForbidden)
}

func describeMethod(m string) string {
	switch m {
	case MethodToken:
		return "token"
	case MethodMTLS:
		return "client certificate"
	case MethodHeader, MethodHTPasswd, MethodLDAP:
		return "user"
	case MethodOIDC:
		return "OIDC identity"
	}
	return m
}

// AuthorizeAny is Authorize for data that belongs to no module and is not
// secret (the checksum database): it allows an identity that has
// permission p on any module at all.
func (a *Authenticator) AuthorizeAny(id Identity, p Permission) error {
	has := func(scopes []Scope) bool {
		for _, s := range scopes {
			if s.Permission.implies(p) {
				return true
			}
		}
		return false
	}
	if has(id.Scopes) || (a.cfg.Anonymous && has(a.cfg.AnonymousScopes)) {
		return nil
	}
	return a.Authorize(id, p, "")
}
