package auth

import (
	"context"
	"net/netip"
)

// How an identity was established.
const (
	MethodAnonymous = "anonymous"
	MethodToken     = "token"
	MethodMTLS      = "mtls"
	MethodHeader    = "header"
	MethodHTPasswd  = "htpasswd"
	MethodLDAP      = "ldap"
	MethodOIDC      = "oidc"
)

// An Identity is who a request comes from, as Middleware established it.
type Identity struct {
	// Name is the token's name, the certificate's common name, the user
	// named by the trusted header, the htpasswd or LDAP user, the OIDC
	// token's name claim, or "anonymous".
	Name string
	// Method is one of the Method constants. The zero Identity counts as
	// anonymous.
	Method string
	// Issuer and Subject are the OIDC token's "iss" and "sub" claims.
	Issuer  string
	Subject string
	// Grants say where Scopes came from, for the audit log and explain:
	// "user alice", "group developers", "ldap group developers",
	// "rule acme-main (repository=acme/app, ref=refs/heads/main)".
	Grants []string
	// TokenID is the id of the token used, for MethodToken.
	TokenID string
	// Scopes are the identity's own scopes; Authorize adds the anonymous
	// scopes.
	Scopes []Scope
	// ClientIP is the client's address (behind a trusted proxy, from
	// X-Forwarded-For). It is invalid when the peer address was not IP.
	ClientIP netip.Addr
}

// Authenticated reports whether the identity was established by
// credentials rather than being anonymous.
func (id Identity) Authenticated() bool {
	return id.Method != "" && id.Method != MethodAnonymous
}

type identityKey struct{}

// WithIdentity returns ctx carrying id.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// FromContext returns the identity carried by ctx, or an anonymous
// identity without scopes when there is none.
func FromContext(ctx context.Context) Identity {
	if id, ok := ctx.Value(identityKey{}).(Identity); ok {
		return id
	}
	return Identity{Name: MethodAnonymous, Method: MethodAnonymous}
}
