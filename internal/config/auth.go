package config

import (
	"fmt"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"

	"github.com/modgate/modgate/internal/auth"
)

// Auth is the "auth" section: who may read, publish and administer. The
// methods combine; see package auth for the order in which they are tried.
// With the defaults, modgate is open as before: anonymous clients may read
// every module, and tokens work once created.
type Auth struct {
	// Anonymous is what clients without credentials may do.
	Anonymous AuthAnonymous `yaml:"anonymous"`
	// Tokens turns token authentication (Basic-auth password or Bearer)
	// on or off. Tokens are managed with `modgate token` and stored, as
	// hashes only, in {data_dir}/auth.
	Tokens AuthTokens `yaml:"tokens"`
	// TrustedHeader takes the identity from a header set by a reverse proxy
	// that authenticated the user, accepted only from the proxies listed.
	TrustedHeader AuthTrustedHeader `yaml:"trusted_header"`
	// MTLS gives client certificates (verified against tls.client_ca_file)
	// their scopes.
	MTLS AuthMTLS `yaml:"mtls"`
	// ClientIPs restricts which client addresses are served at all.
	ClientIPs AuthClientIPs `yaml:"client_ips"`
	// FailedAttempts rate-limits wrong credentials per client address.
	FailedAttempts AuthFailedAttempts `yaml:"failed_attempts"`
	// Groups, HTPasswd, LDAP and OIDC: the organisation's own identities
	// (identity.go).
	Groups   []AuthGroup  `yaml:"groups"`
	HTPasswd AuthHTPasswd `yaml:"htpasswd"`
	LDAP     AuthLDAP     `yaml:"ldap"`
	OIDC     AuthOIDC     `yaml:"oidc"`
}

// AuthAnonymous configures anonymous access.
type AuthAnonymous struct {
	// Enabled allows requests without credentials. Default true.
	Enabled bool `yaml:"enabled"`
	// Scopes are what anonymous clients may do, and what every
	// authenticated identity may do in addition to its own scopes.
	// Default ["read:*"]: everyone may read every module.
	Scopes []string `yaml:"scopes"`
}

// AuthTokens configures token authentication.
type AuthTokens struct {
	// Enabled accepts tokens. Default true.
	Enabled bool `yaml:"enabled"`
}

// AuthTrustedHeader configures identity from a reverse proxy's header.
type AuthTrustedHeader struct {
	// Name is the header holding the user name, such as
	// "X-Forwarded-User". Empty (the default) disables it.
	Name string `yaml:"name"`
	// Proxies are the addresses (CIDR prefixes or single addresses) of the
	// reverse proxies allowed to set the header. A request carrying the
	// header from any other address is refused.
	Proxies []string `yaml:"proxies"`
	// DefaultScopes are the scopes of users not listed in Identities.
	DefaultScopes []string `yaml:"default_scopes"`
	// Identities give named users their scopes.
	Identities []AuthIdentity `yaml:"identities"`
}

// AuthMTLS configures identity from client certificates.
type AuthMTLS struct {
	// DefaultScopes are the scopes of verified certificates not listed in
	// Identities.
	DefaultScopes []string `yaml:"default_scopes"`
	// Identities give certificates, by subject common name, their scopes.
	Identities []AuthIdentity `yaml:"identities"`
}

// An AuthIdentity gives one user or certificate name its scopes.
type AuthIdentity struct {
	Name string `yaml:"name"`
	// Scopes are "read:PATTERN", "publish:PATTERN" or "admin"; patterns
	// use GOPRIVATE syntax.
	Scopes []string `yaml:"scopes"`
}

// AuthClientIPs lists client addresses allowed and denied.
type AuthClientIPs struct {
	// Allow, if not empty, lists the only addresses (CIDR prefixes or
	// single addresses) served.
	Allow []string `yaml:"allow"`
	// Deny lists addresses refused; it wins over Allow.
	Deny []string `yaml:"deny"`
}

// AuthFailedAttempts rate-limits failed credential checks.
type AuthFailedAttempts struct {
	// PerMinute is how many wrong credentials one client address (an IPv6
	// /64) may send per minute before it must wait; 0 means no limit.
	// Default 10.
	PerMinute int `yaml:"per_minute"`
}

// AuthDir is where the token store lives: {data_dir}/auth.
func (c Config) AuthDir() string { return filepath.Join(c.DataDir, "auth") }

// AuthConfig converts the validated "auth" section into package auth's
// configuration.
func (a Auth) AuthConfig() (auth.Config, error) {
	var errs []string
	scopes := func(list []string) []auth.Scope {
		s, err := auth.ParseScopes(list)
		if err != nil {
			errs = append(errs, err.Error())
		}
		return s
	}
	prefixes := func(list []string) []netip.Prefix {
		var out []netip.Prefix
		for _, s := range list {
			p, err := parsePrefix(s)
			if err != nil {
				errs = append(errs, err.Error())
			}
			out = append(out, p)
		}
		return out
	}
	named := func(list []AuthIdentity) []auth.NamedScopes {
		var out []auth.NamedScopes
		for _, id := range list {
			out = append(out, auth.NamedScopes{Name: id.Name, Scopes: scopes(id.Scopes)})
		}
		return out
	}
	cfg := auth.Config{
		Anonymous:           a.Anonymous.Enabled,
		AnonymousScopes:     scopes(a.Anonymous.Scopes),
		Tokens:              a.Tokens.Enabled,
		TrustedHeader:       a.TrustedHeader.Name,
		TrustedProxies:      prefixes(a.TrustedHeader.Proxies),
		HeaderIdentities:    named(a.TrustedHeader.Identities),
		HeaderDefaultScopes: scopes(a.TrustedHeader.DefaultScopes),
		CertIdentities:      named(a.MTLS.Identities),
		CertDefaultScopes:   scopes(a.MTLS.DefaultScopes),
		Allow:               prefixes(a.ClientIPs.Allow),
		Deny:                prefixes(a.ClientIPs.Deny),
		FailedPerMinute:     a.FailedAttempts.PerMinute,
	}
	a.identityConfig(&cfg, scopes, &errs)
	if len(errs) > 0 {
		return auth.Config{}, fmt.Errorf("auth: %s", strings.Join(errs, "; "))
	}
	return cfg, nil
}

// parsePrefix parses a CIDR prefix or a single address (a /32 or /128).
func parsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	if ip, err := netip.ParseAddr(s); err == nil && ip.Zone() == "" {
		ip = ip.Unmap()
		return netip.PrefixFrom(ip, ip.BitLen()), nil
	}
	return netip.Prefix{}, fmt.Errorf("%q is not an address or CIDR prefix (write it like \"10.0.0.0/8\" or \"192.0.2.7\")", s)
}

// auth checks the "auth" section.
func (v *validator) auth() {
	a := v.c.Auth
	for i, s := range a.Anonymous.Scopes {
		v.scope("auth.anonymous.scopes", fmt.Sprintf("[%d]", i), s, true)
	}

	th := a.TrustedHeader
	switch {
	case th.Name != "" && len(th.Proxies) == 0:
		v.add("auth.trusted_header.proxies", "", "required when auth.trusted_header.name is set: list the addresses of the reverse proxies allowed to send %s", th.Name)
	case th.Name == "" && (len(th.Proxies) > 0 || len(th.Identities) > 0 || len(th.DefaultScopes) > 0):
		v.add("auth.trusted_header.name", "", "required when other auth.trusted_header keys are set: the header the proxy puts the user name in, such as \"X-Forwarded-User\"")
	case th.Name != "" && !validHeaderName(th.Name):
		v.add("auth.trusted_header.name", "", "%q is not an HTTP header name", th.Name)
	case strings.EqualFold(th.Name, "Authorization") || strings.EqualFold(th.Name, "X-Forwarded-For"):
		v.add("auth.trusted_header.name", "", "%q has another meaning; choose a header of its own, such as \"X-Forwarded-User\"", th.Name)
	}
	v.prefixes("auth.trusted_header.proxies", th.Proxies)
	for i, s := range th.DefaultScopes {
		v.scope("auth.trusted_header.default_scopes", fmt.Sprintf("[%d]", i), s, false)
	}
	v.identities("auth.trusted_header.identities", th.Identities)

	m := a.MTLS
	if (len(m.Identities) > 0 || len(m.DefaultScopes) > 0) && v.c.TLS.ClientCAFile == "" {
		key := "auth.mtls.identities"
		if len(m.Identities) == 0 {
			key = "auth.mtls.default_scopes"
		}
		v.add(key, "", "client certificates are only verified with tls.client_ca_file set; set it or remove auth.mtls")
	}
	for i, s := range m.DefaultScopes {
		v.scope("auth.mtls.default_scopes", fmt.Sprintf("[%d]", i), s, false)
	}
	v.identities("auth.mtls.identities", m.Identities)

	v.prefixes("auth.client_ips.allow", a.ClientIPs.Allow)
	v.prefixes("auth.client_ips.deny", a.ClientIPs.Deny)
	if n := a.FailedAttempts.PerMinute; n < 0 || n > 10000 {
		v.add("auth.failed_attempts.per_minute", "", "must be between 0 (no limit) and 10000, got %d", n)
	}
	v.identity()
}

// scope checks one scope; anonymous scopes may not be admin.
func (v *validator) scope(key, at, s string, anonymous bool) {
	sc, err := auth.ParseScope(s)
	switch {
	case err != nil:
		v.add(key, at, "%v", err)
	case anonymous && sc.Permission == auth.Admin:
		v.add(key, at, "anonymous clients cannot be given admin; give it to a token or a certificate")
	}
}

// identities checks a list of names with scopes.
func (v *validator) identities(key string, list []AuthIdentity) {
	seen := make(map[string]int)
	for i, id := range list {
		at := fmt.Sprintf("[%d]", i)
		switch {
		case strings.TrimSpace(id.Name) == "":
			v.add(key, at+".name", "required: the user or certificate name these scopes are for")
		default:
			if j, dup := seen[id.Name]; dup {
				v.add(key, at+".name", "%q is also the name of %s[%d]; names must be unique", id.Name, key, j)
			}
			seen[id.Name] = i
		}
		if len(id.Scopes) == 0 {
			v.add(key, at+".scopes", "required: scopes such as [\"read:corp.example.com/*\"]")
		}
		for j, s := range id.Scopes {
			v.scope(key, fmt.Sprintf("%s.scopes[%d]", at, j), s, false)
		}
	}
}

// prefixes checks a list of addresses or CIDR prefixes.
func (v *validator) prefixes(key string, list []string) {
	for i, s := range list {
		if _, err := parsePrefix(s); err != nil {
			v.add(key, fmt.Sprintf("[%d]", i), "%v", err)
		}
	}
}

// validHeaderName reports whether s is an HTTP header field name (an RFC
// 9110 token).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return http.CanonicalHeaderKey(s) != ""
}
