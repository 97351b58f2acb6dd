package auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Challenge is the WWW-Authenticate value sent with every 401, so that the
// go command (and browsers) know to send credentials.
const Challenge = `Basic realm="modgate"`

// ErrRateLimited means the client's address failed too many credential
// checks recently; the client should wait (429, with Retry-After).
var ErrRateLimited = errors.New("too many failed attempts")

// maxHeaderUser bounds the user name a trusted proxy may send.
const maxHeaderUser = 256

// Config says which authentication methods are on and what each identity
// may do. Package config builds it from the "auth" section.
type Config struct {
	// Anonymous enables anonymous access with AnonymousScopes. Disabled,
	// a request without credentials is anonymous with no scopes, and
	// Authorize answers ErrUnauthenticated for everything.
	Anonymous       bool
	AnonymousScopes []Scope

	// Tokens accepts tokens (Deps.Tokens must be set). Disabled, a request
	// carrying an Authorization header is refused with 401, so that a
	// client does not silently lose the access its token should give.
	Tokens bool

	// TrustedHeader names the header (such as "X-Forwarded-User") a
	// reverse proxy puts the authenticated user in; empty disables it.
	// It is accepted only from peers in TrustedProxies.
	TrustedHeader  string
	TrustedProxies []netip.Prefix
	// HeaderIdentities gives users named by the header their scopes;
	// other users get HeaderDefaultScopes.
	HeaderIdentities    []NamedScopes
	HeaderDefaultScopes []Scope

	// CertIdentities gives client certificates (by subject common name)
	// their scopes; other certificates the client CA verified get
	// CertDefaultScopes.
	CertIdentities    []NamedScopes
	CertDefaultScopes []Scope

	// Allow, if not empty, lists the only client addresses served; Deny
	// lists addresses refused. Deny wins.
	Allow []netip.Prefix
	Deny  []netip.Prefix

	// FailedPerMinute is how many failed credential checks a client
	// address may make per minute (also the burst); 0 means no limit.
	FailedPerMinute int

	// Groups name sets of scopes that htpasswd users (through
	// UserScopes.Groups) and LDAP users (through their directory groups
	// of the same name, compared without case) receive.
	Groups []NamedScopes
	// HTPasswd, LDAP and OIDC, when set, enable those methods (see
	// credentials.go for which credential goes to which).
	HTPasswd *HTPasswdConfig
	LDAP     *LDAPConfig
	// LDAPDefaultScopes are the scopes of directory users in no group of
	// Groups; empty, such users are refused with 403.
	LDAPDefaultScopes []Scope
	OIDC              *OIDCConfig
}

// NamedScopes gives one identity name its scopes.
type NamedScopes struct {
	Name   string
	Scopes []Scope
}

// Deps are the Authenticator's collaborators.
type Deps struct {
	// Tokens is the token store; required when Config.Tokens is set.
	Tokens *Tokens
	// Logger receives errors checking credentials; nil discards them.
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// OnAdminAction, if set, is called after every change made through
	// AdminHandler, with the request context (FromContext gives the actor)
	// and an action such as "token.create" and its detail, for the audit
	// log.
	OnAdminAction func(ctx context.Context, action, detail string)
	// OnRefused, if set, is called when Middleware refuses a request,
	// with the identity known so far (at least the client address), the
	// status sent and the reason (matching ErrForbidden,
	// ErrUnauthenticated or ErrRateLimited, or another error for 500).
	OnRefused func(r *http.Request, id Identity, status int, err error)
	// WriteError, if set, answers a refused request (the server's one
	// error writer, package httperr) and returns the status it sent; the
	// refusal's text is fit for the client, other errors are internal.
	// Nil writes the one-line answer here.
	WriteError func(w http.ResponseWriter, r *http.Request, err error) int
}

// An Authenticator establishes identities (Middleware) and decides what
// they may do (Authorize). It is safe for concurrent use.
type Authenticator struct {
	cfg        Config
	tokens     *Tokens
	log        *slog.Logger
	now        func() time.Time
	onAdmin    func(ctx context.Context, action, detail string)
	onRefused  func(r *http.Request, id Identity, status int, err error)
	writeError func(w http.ResponseWriter, r *http.Request, err error) int
	limiter    *failureLimiter

	headerScopes map[string][]Scope
	certScopes   map[string][]Scope

	htpasswd   *htpasswd
	ldap       *ldapChecker
	oidc       *oidcVerifier
	users      map[string]UserScopes
	groups     map[string][]Scope
	ldapGroups map[string][]Scope // by lower-case name
}

// New returns an Authenticator for cfg.
func New(cfg Config, deps Deps) (*Authenticator, error) {
	if cfg.Tokens && deps.Tokens == nil {
		return nil, errors.New("auth: tokens are enabled but no token store was given")
	}
	if cfg.TrustedHeader != "" && len(cfg.TrustedProxies) == 0 {
		return nil, fmt.Errorf("auth: trusted header %s needs at least one trusted proxy", cfg.TrustedHeader)
	}
	a := &Authenticator{
		cfg:          cfg,
		tokens:       deps.Tokens,
		log:          deps.Logger,
		now:          deps.Now,
		onAdmin:      deps.OnAdminAction,
		onRefused:    deps.OnRefused,
		writeError:   deps.WriteError,
		limiter:      newFailureLimiter(cfg.FailedPerMinute),
		headerScopes: make(map[string][]Scope),
		certScopes:   make(map[string][]Scope),
	}
	if a.log == nil {
		a.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if a.now == nil {
		a.now = time.Now
	}
	for _, n := range cfg.HeaderIdentities {
		a.headerScopes[n.Name] = n.Scopes
	}
	for _, n := range cfg.CertIdentities {
		a.certScopes[n.Name] = n.Scopes
	}
	if err := a.buildIdentities(); err != nil {
		return nil, err
	}
	return a, nil
}

// A refusal is why Middleware turned a request away; its message is what
// the client reads.
type refusal struct {
	msg        string
	kind       error // ErrForbidden, ErrUnauthenticated or ErrRateLimited
	retryAfter time.Duration
}

func (e *refusal) Error() string { return e.msg }
func (e *refusal) Unwrap() error { return e.kind }

func unauthenticated(format string, args ...any) error {
	return &refusal{msg: fmt.Sprintf(format, args...), kind: ErrUnauthenticated}
}

func forbidden(format string, args ...any) error {
	return &refusal{msg: fmt.Sprintf(format, args...), kind: ErrForbidden}
}

// Middleware establishes the request's Identity (see the package doc for
// the order of checks) and passes the request on with it in the context,
// or refuses it: 403 for a refused address or a header from an untrusted
// peer, 401 with WWW-Authenticate for bad credentials, 429 with
// Retry-After after too many failures, each with a one-line text body
// starting "modgate: ". It does not authorise: handlers call Authorize.
func (a *Authenticator) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := a.identify(r)
		if err != nil {
			a.refuse(w, r, id, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithIdentity(r.Context(), id)))
	})
}

// identify establishes who r comes from. On error the identity still
// carries the client address.
func (a *Authenticator) identify(r *http.Request) (Identity, error) {
	peer := peerAddr(r.RemoteAddr)
	client := peer
	if a.trusted(peer) {
		client = a.forwardedFor(r, peer)
	}
	id := Identity{Name: MethodAnonymous, Method: MethodAnonymous, ClientIP: client}
	if !a.addrAllowed(client) {
		return id, forbidden("client address %s is not allowed", addrString(client))
	}

	if name := a.cfg.TrustedHeader; name != "" {
		if values := r.Header.Values(name); len(values) > 0 {
			return a.headerIdentity(id, peer, name, values)
		}
	}
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		cert := r.TLS.VerifiedChains[0][0]
		name := cert.Subject.CommonName
		if name == "" && len(cert.DNSNames) > 0 {
			name = cert.DNSNames[0]
		}
		if name == "" {
			return id, forbidden("client certificate has neither a common name nor a DNS name")
		}
		scopes, ok := a.certScopes[name]
		if !ok {
			scopes = a.cfg.CertDefaultScopes
		}
		return Identity{Name: name, Method: MethodMTLS, Scopes: scopes, ClientIP: client}, nil
	}
	if r.Header.Get("Authorization") != "" {
		return a.credentialIdentity(r, id)
	}
	if a.cfg.Anonymous {
		id.Scopes = a.cfg.AnonymousScopes
	}
	return id, nil
}

// headerIdentity takes the identity from the trusted proxy's header.
func (a *Authenticator) headerIdentity(id Identity, peer netip.Addr, name string, values []string) (Identity, error) {
	if !a.trusted(peer) {
		return id, forbidden("header %s is accepted only from a trusted proxy, and %s is not one", name, addrString(peer))
	}
	if len(values) > 1 {
		return id, forbidden("header %s appears %d times; the proxy must send exactly one", name, len(values))
	}
	user := strings.TrimSpace(values[0])
	if user == "" || len(user) > maxHeaderUser || !utf8.ValidString(user) || strings.ContainsFunc(user, unicode.IsControl) {
		return id, forbidden("header %s does not hold a user name", name)
	}
	scopes, ok := a.headerScopes[user]
	if !ok {
		scopes = a.cfg.HeaderDefaultScopes
	}
	return Identity{Name: user, Method: MethodHeader, Scopes: scopes, ClientIP: id.ClientIP}, nil
}

// refuse answers a refused request and reports it.
func (a *Authenticator) refuse(w http.ResponseWriter, r *http.Request, id Identity, err error) {
	status := http.StatusInternalServerError
	msg := "internal error checking credentials (details are in the server log)"
	var ref *refusal
	if errors.As(err, &ref) {
		msg = ref.msg
		switch {
		case errors.Is(err, ErrRateLimited):
			status = http.StatusTooManyRequests
			w.Header().Set("Retry-After", strconv.Itoa(int((ref.retryAfter+time.Second-1)/time.Second)))
		case errors.Is(err, ErrUnauthenticated):
			status = http.StatusUnauthorized
			w.Header().Set("WWW-Authenticate", Challenge)
		default:
			status = http.StatusForbidden
		}
	} else if de := (*directoryError)(nil); errors.As(err, &de) {
		status, msg = http.StatusServiceUnavailable, de.PublicError()
		a.log.Warn("identity provider unavailable", "err", err, "client", addrString(id.ClientIP))
	} else {
		a.log.Error("checking credentials failed", "err", err, "client", addrString(id.ClientIP))
	}
	if a.writeError != nil {
		// The Retry-After set above stays; the writer maps the same
		// sentinels to the same statuses.
		status = a.writeError(w, r, err)
	} else {
		writeText(w, r, status, msg)
	}
	if a.onRefused != nil {
		a.onRefused(r, id, status, err)
	}
}

// writeText writes the one-line error body every modgate error has.
func writeText(w http.ResponseWriter, r *http.Request, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		io.WriteString(w, "modgate: "+strings.ReplaceAll(msg, "\n", " ")+"\n")
	}
}

// peerAddr parses the direct peer's address; it is invalid for non-IP
// transports.
func peerAddr(remote string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap()
	}
	if ip, err := netip.ParseAddr(remote); err == nil {
		return ip.Unmap()
	}
	return netip.Addr{}
}

func addrString(ip netip.Addr) string {
	if !ip.IsValid() {
		return "(unknown address)"
	}
	return ip.String()
}

func (a *Authenticator) trusted(peer netip.Addr) bool {
	return peer.IsValid() && containsAddr(a.cfg.TrustedProxies, peer)
}

// forwardedFor returns the client address behind trusted proxies: the
// rightmost X-Forwarded-For entry that is not a trusted proxy itself.
// Entries to its left were written by the client and prove nothing.
func (a *Authenticator) forwardedFor(r *http.Request, peer netip.Addr) netip.Addr {
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		ip, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		client = ip.Unmap()
		if !a.trusted(client) {
			break
		}
	}
	return client
}

// addrAllowed applies the allow and deny lists.
func (a *Authenticator) addrAllowed(ip netip.Addr) bool {
	if len(a.cfg.Deny) > 0 && ip.IsValid() && containsAddr(a.cfg.Deny, ip) {
		return false
	}
	return len(a.cfg.Allow) == 0 || (ip.IsValid() && containsAddr(a.cfg.Allow, ip))
}

func containsAddr(prefixes []netip.Prefix, ip netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
