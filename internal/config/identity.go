package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"time"

	"github.com/modgate/modgate/internal/auth"
)

// The identities an organisation already has: static users (htpasswd),
// an LDAP directory, and OIDC ID tokens from CI systems, each mapped to
// scopes. These are keys of the "auth" section; package auth decides
// which credential goes to which method (see its credentials.go).

// AuthGroup names a set of scopes, given to htpasswd users that list the
// group and to LDAP users in a directory group of the same name.
type AuthGroup struct {
	Name   string   `yaml:"name"`
	Scopes []string `yaml:"scopes"`
}

// AuthHTPasswd configures static users.
type AuthHTPasswd struct {
	// File is an htpasswd file with bcrypt hashes only (htpasswd -B);
	// it is read again when it changes. Empty disables static users.
	File string `yaml:"file"`
	// Users give users their scopes, directly or through groups.
	Users []AuthUser `yaml:"users"`
	// DefaultScopes are the scopes of users in the file not listed in
	// Users.
	DefaultScopes []string `yaml:"default_scopes"`
}

// AuthUser gives one htpasswd user scopes and groups.
type AuthUser struct {
	Name   string   `yaml:"name"`
	Scopes []string `yaml:"scopes"`
	Groups []string `yaml:"groups"`
}

// AuthLDAP configures passwords checked against an LDAP directory.
type AuthLDAP struct {
	// URL is ldaps://host:636, or ldap://host:389 with start_tls. Empty
	// disables LDAP.
	URL      string `yaml:"url"`
	StartTLS bool   `yaml:"start_tls"`
	// CAFile holds the CAs that sign the directory's certificate, when
	// not the system's.
	CAFile string `yaml:"ca_file"`
	// BindDN is the service account for search-then-bind; its password
	// comes from BindPasswordEnv or BindPasswordFile.
	BindDN           string `yaml:"bind_dn"`
	BindPasswordEnv  string `yaml:"bind_password_env"`
	BindPasswordFile string `yaml:"bind_password_file"`
	// UserBase and UserFilter ({user} is the escaped user name) find the
	// user; default filter "(uid={user})".
	UserBase   string `yaml:"user_base"`
	UserFilter string `yaml:"user_filter"`
	// UserDNTemplate, instead of a service account: direct bind as
	// "uid={user},ou=people,dc=example,dc=com".
	UserDNTemplate string `yaml:"user_dn_template"`
	// GroupBase and GroupFilter ({dn}, {user}) find the user's groups,
	// named by GroupAttribute (default "cn"), matched against auth.groups.
	GroupBase      string `yaml:"group_base"`
	GroupFilter    string `yaml:"group_filter"`
	GroupAttribute string `yaml:"group_attribute"`
	// DefaultScopes are the scopes of users in no group of auth.groups;
	// empty, such users are refused (403).
	DefaultScopes []string `yaml:"default_scopes"`
	// CacheTTL is how long a successful check is remembered (default 1m,
	// "-1s" never); CacheSize bounds the entries (default 1000). Failures
	// are never cached.
	CacheTTL  Duration `yaml:"cache_ttl"`
	CacheSize int      `yaml:"cache_size"`
	// Timeout bounds each connection and operation (default 5s).
	Timeout Duration `yaml:"timeout"`
}

// AuthOIDC configures OIDC ID tokens (CI workload identity).
type AuthOIDC struct {
	Issuers []AuthOIDCIssuer `yaml:"issuers"`
	// Skew is the tolerance for exp and nbf (default 30s).
	Skew Duration `yaml:"skew"`
	// KeysRefreshInterval is the shortest time between two fetches of an
	// issuer's keys when a token names an unknown key id (default 30s).
	KeysRefreshInterval Duration `yaml:"keys_refresh_interval"`
	// CAFile holds the CAs that sign the issuers' certificates, when not
	// the system's.
	CAFile string `yaml:"ca_file"`
}

// AuthOIDCIssuer is one trusted issuer.
type AuthOIDCIssuer struct {
	// URL is the issuer exactly as tokens' "iss" claim says it (https).
	URL string `yaml:"url"`
	// Audience is what tokens' "aud" must contain.
	Audience string `yaml:"audience"`
	// Algorithms accepted (asymmetric only); default [RS256, ES256].
	Algorithms []string `yaml:"algorithms"`
	// NameClaim names the identity in logs and the audit log (default
	// "sub").
	NameClaim string `yaml:"name_claim"`
	// Rules map claims to scopes; a token that matches none is refused.
	Rules []AuthClaimRule `yaml:"rules"`
}

// AuthClaimRule grants scopes to tokens whose claims all match: claim
// name → glob on its value (path.Match: "acme/*" matches "acme/app").
type AuthClaimRule struct {
	Name   string            `yaml:"name"`
	Claims map[string]string `yaml:"claims"`
	Scopes []string          `yaml:"scopes"`
}

// identityConfig fills the htpasswd, LDAP and OIDC parts of cfg, adding
// problems to errs.
func (a Auth) identityConfig(cfg *auth.Config, scopes func([]string) []auth.Scope, errs *[]string) {
	for _, g := range a.Groups {
		cfg.Groups = append(cfg.Groups, auth.NamedScopes{Name: g.Name, Scopes: scopes(g.Scopes)})
	}
	if h := a.HTPasswd; h.File != "" {
		hc := &auth.HTPasswdConfig{File: h.File, DefaultScopes: scopes(h.DefaultScopes)}
		for _, u := range h.Users {
			hc.Users = append(hc.Users, auth.UserScopes{Name: u.Name, Scopes: scopes(u.Scopes), Groups: u.Groups})
		}
		cfg.HTPasswd = hc
	}
	if l := a.LDAP; l.URL != "" {
		pw, err := Secret(l.BindPasswordEnv, l.BindPasswordFile, nil)
		if err != nil {
			*errs = append(*errs, "ldap.bind_password: "+err.Error())
		}
		tlsCfg, err := caTLS(l.CAFile)
		if err != nil {
			*errs = append(*errs, "ldap.ca_file: "+err.Error())
		}
		if u, err := url.Parse(l.URL); err == nil && tlsCfg != nil {
			tlsCfg.ServerName = u.Hostname()
		}
		cfg.LDAP = &auth.LDAPConfig{
			URL: l.URL, StartTLS: l.StartTLS, TLS: tlsCfg,
			BindDN: l.BindDN, BindPassword: pw,
			UserBase: l.UserBase, UserFilter: l.UserFilter, UserDNTemplate: l.UserDNTemplate,
			GroupBase: l.GroupBase, GroupFilter: l.GroupFilter, GroupAttribute: l.GroupAttribute,
			CacheTTL: l.CacheTTL.Duration, CacheSize: l.CacheSize, Timeout: l.Timeout.Duration,
		}
		cfg.LDAPDefaultScopes = scopes(l.DefaultScopes)
	}
	if o := a.OIDC; len(o.Issuers) > 0 {
		oc := &auth.OIDCConfig{Skew: o.Skew.Duration, RefreshInterval: o.KeysRefreshInterval.Duration}
		tlsCfg, err := caTLS(o.CAFile)
		if err != nil {
			*errs = append(*errs, "oidc.ca_file: "+err.Error())
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = tlsCfg
		oc.Client = &http.Client{Transport: tr, Timeout: 10 * time.Second}
		for _, is := range o.Issuers {
			ic := auth.OIDCIssuer{URL: is.URL, Audience: is.Audience, Algorithms: is.Algorithms, NameClaim: is.NameClaim}
			for _, r := range is.Rules {
				ic.Rules = append(ic.Rules, auth.ClaimRule{Name: r.Name, Claims: r.Claims, Scopes: scopes(r.Scopes)})
			}
			oc.Issuers = append(oc.Issuers, ic)
		}
		cfg.OIDC = oc
	}
}

// caTLS is a client TLS configuration trusting the CAs in file, or the
// system's when file is empty.
func caTLS(file string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if file == "" {
		return cfg, nil
	}
	pem, err := os.ReadFile(file)
	if err != nil {
		return cfg, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return cfg, errors.New(file + ": no PEM certificate in it")
	}
	cfg.RootCAs = pool
	return cfg, nil
}

// identity checks the htpasswd, ldap, oidc and groups keys of "auth".
func (v *validator) identity() {
	a := v.c.Auth
	groups := make(map[string]bool)
	for i, g := range a.Groups {
		at := fmt.Sprintf("[%d]", i)
		switch {
		case strings.TrimSpace(g.Name) == "":
			v.add("auth.groups", at+".name", "required: the group's name (for LDAP, the directory group's name)")
		case groups[strings.ToLower(g.Name)]:
			v.add("auth.groups", at+".name", "%q appears twice (names are compared without case, as LDAP does)", g.Name)
		}
		groups[strings.ToLower(g.Name)] = true
		if len(g.Scopes) == 0 {
			v.add("auth.groups", at+".scopes", "required: scopes such as [\"read:corp.example.com/*\"]")
		}
		for j, s := range g.Scopes {
			v.scope("auth.groups", fmt.Sprintf("%s.scopes[%d]", at, j), s, false)
		}
	}

	h := a.HTPasswd
	if h.File == "" && (len(h.Users) > 0 || len(h.DefaultScopes) > 0) {
		v.add("auth.htpasswd.file", "", "required when other auth.htpasswd keys are set: the htpasswd file (bcrypt hashes, htpasswd -B)")
	}
	if h.File != "" {
		if _, err := os.Stat(h.File); err != nil {
			v.add("auth.htpasswd.file", "", "%v", err)
		}
	}
	seen := make(map[string]int)
	for i, u := range h.Users {
		at := fmt.Sprintf("[%d]", i)
		if u.Name == "" {
			v.add("auth.htpasswd.users", at+".name", "required: the user name as in the htpasswd file")
		} else if j, dup := seen[u.Name]; dup {
			v.add("auth.htpasswd.users", at+".name", "%q is also the name of auth.htpasswd.users[%d]", u.Name, j)
		}
		seen[u.Name] = i
		if len(u.Scopes) == 0 && len(u.Groups) == 0 {
			v.add("auth.htpasswd.users", at, "give the user scopes or groups")
		}
		for j, s := range u.Scopes {
			v.scope("auth.htpasswd.users", fmt.Sprintf("%s.scopes[%d]", at, j), s, false)
		}
		for j, g := range u.Groups {
			if !groups[strings.ToLower(g)] || !hasGroup(a.Groups, g) {
				v.add("auth.htpasswd.users", fmt.Sprintf("%s.groups[%d]", at, j), "no group %q in auth.groups", g)
			}
		}
	}
	for i, s := range h.DefaultScopes {
		v.scope("auth.htpasswd.default_scopes", fmt.Sprintf("[%d]", i), s, false)
	}

	v.ldap(a.LDAP)
	v.oidc(a.OIDC)
}

func hasGroup(groups []AuthGroup, name string) bool {
	for _, g := range groups {
		if g.Name == name {
			return true
		}
	}
	return false
}

// ldap checks auth.ldap.
func (v *validator) ldap(l AuthLDAP) {
	if l.URL == "" {
		if l.BindDN != "" || l.UserDNTemplate != "" || l.UserBase != "" || l.GroupBase != "" {
			v.add("auth.ldap.url", "", "required when other auth.ldap keys are set: ldaps://HOST:636, or ldap://HOST:389 with start_tls: true")
		}
		return
	}
	switch {
	case strings.HasPrefix(l.URL, "ldaps://") && l.StartTLS:
		v.add("auth.ldap.start_tls", "", "is for ldap:// URLs; ldaps:// is TLS already")
	case strings.HasPrefix(l.URL, "ldap://") && !l.StartTLS:
		v.add("auth.ldap.start_tls", "", "required with an ldap:// URL: passwords never cross the network in clear (or use ldaps://)")
	case !strings.HasPrefix(l.URL, "ldaps://") && !strings.HasPrefix(l.URL, "ldap://"):
		v.add("auth.ldap.url", "", "%q: want ldaps://HOST:636 or ldap://HOST:389 with start_tls", l.URL)
	}
	switch {
	case l.BindDN == "" && l.UserDNTemplate == "":
		v.add("auth.ldap.bind_dn", "", "set bind_dn (search-then-bind with a service account) or user_dn_template (direct bind)")
	case l.BindDN != "" && l.UserDNTemplate != "":
		v.add("auth.ldap.user_dn_template", "", "set bind_dn or user_dn_template, not both")
	case l.BindDN != "":
		if l.UserBase == "" {
			v.add("auth.ldap.user_base", "", "required with bind_dn: where users are searched, such as \"ou=people,dc=example,dc=com\"")
		}
		if (l.BindPasswordEnv == "") == (l.BindPasswordFile == "") {
			v.add("auth.ldap.bind_password_env", "", "set bind_password_env or bind_password_file (one of them) for the service account")
		}
		if l.UserFilter != "" && !strings.Contains(l.UserFilter, "{user}") {
			v.add("auth.ldap.user_filter", "", "%q does not contain {user}", l.UserFilter)
		}
	case !strings.Contains(l.UserDNTemplate, "{user}"):
		v.add("auth.ldap.user_dn_template", "", "%q does not contain {user}", l.UserDNTemplate)
	}
	if (l.GroupBase == "") != (l.GroupFilter == "") {
		v.add("auth.ldap.group_filter", "", "set group_base and group_filter together, such as \"(&(objectClass=groupOfNames)(member={dn}))\"")
	}
	for i, s := range l.DefaultScopes {
		v.scope("auth.ldap.default_scopes", fmt.Sprintf("[%d]", i), s, false)
	}
	if l.CacheSize < 0 || l.CacheSize > 1000000 {
		v.add("auth.ldap.cache_size", "", "must be between 0 (default 1000) and 1000000, got %d", l.CacheSize)
	}
	if l.CacheTTL.Duration > time.Hour {
		v.add("auth.ldap.cache_ttl", "", "at most 1h (a removed user keeps access that long), got %s", l.CacheTTL.Duration)
	}
	if l.Timeout.Duration < 0 {
		v.add("auth.ldap.timeout", "", "must not be negative")
	}
}

// oidc checks auth.oidc.
func (v *validator) oidc(o AuthOIDC) {
	if o.Skew.Duration < 0 || o.Skew.Duration > 5*time.Minute {
		v.add("auth.oidc.skew", "", "must be between 0 (default 30s) and 5m, got %s", o.Skew.Duration)
	}
	if o.KeysRefreshInterval.Duration < 0 {
		v.add("auth.oidc.keys_refresh_interval", "", "must not be negative")
	}
	seen := make(map[string]int)
	for i, is := range o.Issuers {
		at := fmt.Sprintf("[%d]", i)
		u, err := url.Parse(is.URL)
		switch {
		case is.URL == "":
			v.add("auth.oidc.issuers", at+".url", "required: the issuer as tokens' iss claim says it")
		case err != nil || u.Scheme != "https" || u.Host == "":
			v.add("auth.oidc.issuers", at+".url", "%q: want an https:// URL", is.URL)
		default:
			if j, dup := seen[is.URL]; dup {
				v.add("auth.oidc.issuers", at+".url", "also the URL of auth.oidc.issuers[%d]", j)
			}
			seen[is.URL] = i
		}
		if is.Audience == "" {
			v.add("auth.oidc.issuers", at+".audience", "required: the audience CI jobs ask their tokens for, such as this server's URL")
		}
		for j, alg := range is.Algorithms {
			if _, err := auth.ParseAlgorithm(alg); err != nil {
				v.add("auth.oidc.issuers", fmt.Sprintf("%s.algorithms[%d]", at, j), "%v", err)
			}
		}
		if len(is.Rules) == 0 {
			v.add("auth.oidc.issuers", at+".rules", "required: claim rules that give tokens scopes")
		}
		for j, r := range is.Rules {
			rat := fmt.Sprintf("%s.rules[%d]", at, j)
			if r.Name == "" {
				v.add("auth.oidc.issuers", rat+".name", "required: a name for the audit log")
			}
			if len(r.Claims) == 0 {
				v.add("auth.oidc.issuers", rat+".claims", "required: claims to match, such as {repository: \"acme/*\", ref: \"refs/heads/main\"}; a rule without claims would grant every token of the issuer")
			}
			for name, pat := range r.Claims {
				if _, err := path.Match(pat, ""); err != nil {
					v.add("auth.oidc.issuers", rat+".claims."+name, "%q is not a valid glob", pat)
				}
			}
			if len(r.Scopes) == 0 {
				v.add("auth.oidc.issuers", rat+".scopes", "required")
			}
			for k, s := range r.Scopes {
				v.scope("auth.oidc.issuers", fmt.Sprintf("%s.scopes[%d]", rat, k), s, false)
			}
		}
	}
}
