package auth

import (
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// LDAPConfig configures Basic-auth passwords checked by binding to an LDAP
// directory.
type LDAPConfig struct {
	// URL is "ldaps://host:636" or "ldap://host:389" with StartTLS set;
	// plain LDAP is never used, since the password crosses the wire.
	URL      string
	StartTLS bool
	// TLS verifies the directory's certificate (RootCAs, ServerName).
	TLS *tls.Config

	// BindDN and BindPassword are the service account that searches for
	// users and their groups (search-then-bind). Empty BindDN means
	// direct bind with UserDNTemplate.
	BindDN       string
	BindPassword string
	// UserBase and UserFilter find the user for search-then-bind; the
	// filter's "{user}" is replaced by the escaped user name, as in
	// "(&(objectClass=inetOrgPerson)(uid={user}))".
	UserBase   string
	UserFilter string
	// UserDNTemplate is the user's DN for direct bind, such as
	// "uid={user},ou=people,dc=example,dc=com" ({user} is DN-escaped).
	UserDNTemplate string

	// GroupBase and GroupFilter find the user's groups: "{dn}" is the
	// user's DN and "{user}" the user name, both escaped, as in
	// "(&(objectClass=groupOfNames)(member={dn}))". GroupAttribute names
	// a group (default "cn"); those names are looked up in
	// Config.Groups.
	GroupBase      string
	GroupFilter    string
	GroupAttribute string

	// CacheTTL is how long a successful check is remembered (default 1m;
	// negative: never); CacheSize bounds how many are (default 1000).
	// Failures are never remembered.
	CacheTTL  time.Duration
	CacheSize int
	// Timeout bounds each connection and operation (default 5s).
	Timeout time.Duration
}

// ldapResult is a successful check: the user's DN and group names.
type ldapResult struct {
	dn     string
	groups []string
}

// ldapChecker checks passwords against the directory, with a short cache
// of successes keyed by a hash of user and password (a changed password
// misses it; the password itself is never kept).
type ldapChecker struct {
	cfg LDAPConfig

	mu    sync.Mutex
	cache map[[32]byte]ldapCached
}

type ldapCached struct {
	res     ldapResult
	expires time.Time
}

func newLDAPChecker(cfg LDAPConfig) (*ldapChecker, error) {
	switch {
	case strings.HasPrefix(cfg.URL, "ldaps://"):
		if cfg.StartTLS {
			return nil, errors.New("ldap: start_tls is for ldap:// URLs; ldaps:// is TLS already")
		}
	case strings.HasPrefix(cfg.URL, "ldap://"):
		if !cfg.StartTLS {
			return nil, errors.New("ldap: an ldap:// URL needs StartTLS; passwords never cross the network in clear")
		}
	default:
		return nil, fmt.Errorf("ldap: URL %q: want ldaps:// or ldap:// with StartTLS", cfg.URL)
	}
	if (cfg.BindDN == "") == (cfg.UserDNTemplate == "") {
		return nil, errors.New("ldap: set either a service account (search-then-bind) or a user DN template (direct bind)")
	}
	if cfg.TLS == nil {
		cfg.TLS = &tls.Config{}
	}
	if cfg.GroupAttribute == "" {
		cfg.GroupAttribute = "cn"
	}
	if cfg.UserFilter == "" {
		cfg.UserFilter = "(uid={user})"
	}
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = time.Minute
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = 1000
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	return &ldapChecker{cfg: cfg, cache: make(map[[32]byte]ldapCached)}, nil
}

// errWrongPassword is a refused bind: wrong password, unknown user (the
// same to the client).
var errWrongPassword = errors.New("wrong user name or password")

// check binds as user with password. It returns errWrongPassword when
// the directory refuses them, an error matching ErrDirectoryUnavailable
// when it cannot be asked.
func (c *ldapChecker) check(user, password string, now time.Time) (ldapResult, error) {
	if password == "" {
		// An empty password is an "unauthenticated bind", which many
		// directories accept for any DN.
		return ldapResult{}, errWrongPassword
	}
	key := sha256.Sum256([]byte(user + "\x00" + password))
	if c.cfg.CacheTTL > 0 {
		c.mu.Lock()
		hit, ok := c.cache[key]
		c.mu.Unlock()
		if ok && now.Before(hit.expires) {
			return hit.res, nil
		}
	}
	res, err := c.bind(user, password)
	if err != nil {
		return ldapResult{}, err
	}
	if c.cfg.CacheTTL > 0 {
		c.mu.Lock()
		if len(c.cache) >= c.cfg.CacheSize {
			for k, v := range c.cache {
				if !now.Before(v.expires) || len(c.cache) >= c.cfg.CacheSize {
					delete(c.cache, k)
				}
			}
		}
		c.cache[key] = ldapCached{res: res, expires: now.Add(c.cfg.CacheTTL)}
		c.mu.Unlock()
	}
	return res, nil
}

// dial connects to the directory over TLS.
func (c *ldapChecker) dial() (*ldap.Conn, error) {
	d := &net.Dialer{Timeout: c.cfg.Timeout}
	conn, err := ldap.DialURL(c.cfg.URL, ldap.DialWithDialer(d), ldap.DialWithTLSConfig(c.cfg.TLS))
	if err != nil {
		return nil, &directoryError{cause: err}
	}
	conn.SetTimeout(c.cfg.Timeout)
	if c.cfg.StartTLS {
		if err := conn.StartTLS(c.cfg.TLS); err != nil {
			conn.Close()
			return nil, &directoryError{cause: fmt.Errorf("starttls: %w", err)}
		}
	}
	return conn, nil
}

// bind does one check against the directory.
func (c *ldapChecker) bind(user, password string) (ldapResult, error) {
	conn, err := c.dial()
	if err != nil {
		return ldapResult{}, err
	}
	defer conn.Close()

	var dn string
	if c.cfg.BindDN != "" {
		if err := conn.Bind(c.cfg.BindDN, c.cfg.BindPassword); err != nil {
			return ldapResult{}, &directoryError{cause: fmt.Errorf("binding as the service account: %w", err)}
		}
		filter := strings.ReplaceAll(c.cfg.UserFilter, "{user}", ldap.EscapeFilter(user))
		sr, err := conn.Search(ldap.NewSearchRequest(c.cfg.UserBase, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
			2, int(c.cfg.Timeout/time.Second), false, filter, []string{"dn"}, nil))
		if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
			return ldapResult{}, &directoryError{cause: fmt.Errorf("searching for the user: %w", err)}
		}
		if sr == nil || len(sr.Entries) != 1 {
			// Unknown (or ambiguous) user: bind anyway, to a DN that
			// does not exist, so that the answer takes as long as for a
			// wrong password.
			conn.Bind("cn=modgate-no-such-user,"+c.cfg.UserBase, password)
			return ldapResult{}, errWrongPassword
		}
		dn = sr.Entries[0].DN
	} else {
		dn = strings.ReplaceAll(c.cfg.UserDNTemplate, "{user}", ldap.EscapeDN(user))
	}
	if err := conn.Bind(dn, password); err != nil {
		// A DN that does not parse or name anyone (a direct bind with a
		// strange user name) is a wrong password too, not an outage.
		if ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) || ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidDNSyntax) || ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
			return ldapResult{}, errWrongPassword
		}
		return ldapResult{}, &directoryError{cause: fmt.Errorf("binding as the user: %w", err)}
	}
	res := ldapResult{dn: dn}
	if c.cfg.GroupBase == "" || c.cfg.GroupFilter == "" {
		return res, nil
	}
	if c.cfg.BindDN != "" {
		// Groups are read as the service account: users often may not
		// read group membership.
		if err := conn.Bind(c.cfg.BindDN, c.cfg.BindPassword); err != nil {
			return ldapResult{}, &directoryError{cause: fmt.Errorf("binding as the service account: %w", err)}
		}
	}
	filter := strings.NewReplacer("{dn}", ldap.EscapeFilter(dn), "{user}", ldap.EscapeFilter(user)).Replace(c.cfg.GroupFilter)
	sr, err := conn.Search(ldap.NewSearchRequest(c.cfg.GroupBase, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		1000, int(c.cfg.Timeout/time.Second), false, filter, []string{c.cfg.GroupAttribute}, nil))
	if err != nil {
		return ldapResult{}, &directoryError{cause: fmt.Errorf("searching for the user's groups: %w", err)}
	}
	for _, e := range sr.Entries {
		res.groups = append(res.groups, e.GetAttributeValues(c.cfg.GroupAttribute)...)
	}
	return res, nil
}
