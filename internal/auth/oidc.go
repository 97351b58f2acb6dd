package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// OIDCConfig configures OpenID Connect ID tokens (CI workload identity:
// GitHub Actions, GitLab CI, Forgejo Actions, Buildkite, Kubernetes
// service accounts), sent as a Bearer token or as the Basic-auth password
// of the user "oidc".
type OIDCConfig struct {
	Issuers []OIDCIssuer
	// Skew is how far exp and nbf may be off (clocks differ); default 30s.
	Skew time.Duration
	// RefreshInterval is the shortest time between two fetches of an
	// issuer's keys: a token signed by an unknown key id makes modgate
	// fetch the keys again (the issuer rotated them), at most this often,
	// so that tokens with made-up key ids cannot make it hammer the
	// issuer. Default 30s.
	RefreshInterval time.Duration
	// Client fetches discovery documents and keys; nil means a client
	// with a 10s timeout.
	Client *http.Client
}

// An OIDCIssuer is one trusted token issuer.
type OIDCIssuer struct {
	// URL is the issuer, exactly as the tokens' "iss" claim says it; the
	// discovery document is URL + "/.well-known/openid-configuration".
	URL string
	// Audience is what the tokens' "aud" claim must contain (the CI job
	// asks its provider for a token with this audience).
	Audience string
	// Algorithms are the signature algorithms accepted: asymmetric ones
	// only (RS256, ES256, ...). Default RS256 and ES256.
	Algorithms []string
	// NameClaim is the claim that names the identity (default "sub").
	NameClaim string
	// Rules map claims to scopes; a token that matches none is refused
	// with 403.
	Rules []ClaimRule
}

// A ClaimRule grants Scopes to tokens whose claims match every entry of
// Claims: claim name → path.Match pattern on the claim's string value
// ("acme/*" matches "acme/app", not "acme/app/x"). A claim that is
// missing or not a string, number or boolean never matches.
type ClaimRule struct {
	Name   string
	Claims map[string]string
	Scopes []Scope
}

// asymmetric lists the signature algorithms an issuer may use. HMAC is
// never accepted: its key is a shared secret, and a verifier that took
// "HS256" with the issuer's public key as the secret would accept tokens
// anyone can make. "none" is not a signature at all.
var asymmetric = map[string]jose.SignatureAlgorithm{
	"RS256": jose.RS256, "RS384": jose.RS384, "RS512": jose.RS512,
	"PS256": jose.PS256, "PS384": jose.PS384, "PS512": jose.PS512,
	"ES256": jose.ES256, "ES384": jose.ES384, "ES512": jose.ES512,
	"EdDSA": jose.EdDSA,
}

// ParseAlgorithm returns the asymmetric signature algorithm named s.
func ParseAlgorithm(s string) (jose.SignatureAlgorithm, error) {
	if a, ok := asymmetric[s]; ok {
		return a, nil
	}
	names := make([]string, 0, len(asymmetric))
	for n := range asymmetric {
		names = append(names, n)
	}
	sort.Strings(names)
	return "", fmt.Errorf("algorithm %q is not accepted (want one of %s; HMAC and none never are)", s, strings.Join(names, ", "))
}

// oidcVerifier checks ID tokens against the configured issuers.
type oidcVerifier struct {
	skew     time.Duration
	interval time.Duration
	client   *http.Client
	issuers  map[string]*issuer
}

// An issuer caches one issuer's discovery document and keys.
type issuer struct {
	cfg  OIDCIssuer
	algs []jose.SignatureAlgorithm

	mu       sync.Mutex
	jwksURI  string
	keys     jose.JSONWebKeySet
	fetched  time.Time // last fetch attempt of the keys
	fetchErr error     // why it failed, until a fetch succeeds
}

func newOIDCVerifier(cfg OIDCConfig) (*oidcVerifier, error) {
	v := &oidcVerifier{skew: cfg.Skew, interval: cfg.RefreshInterval, client: cfg.Client, issuers: make(map[string]*issuer)}
	if v.skew == 0 {
		v.skew = 30 * time.Second
	}
	if v.interval == 0 {
		v.interval = 30 * time.Second
	}
	if v.client == nil {
		v.client = &http.Client{Timeout: 10 * time.Second}
	}
	for _, ic := range cfg.Issuers {
		if ic.URL == "" || ic.Audience == "" {
			return nil, errors.New("oidc: every issuer needs a URL and an audience")
		}
		if ic.NameClaim == "" {
			ic.NameClaim = "sub"
		}
		names := ic.Algorithms
		if len(names) == 0 {
			names = []string{"RS256", "ES256"}
		}
		is := &issuer{cfg: ic}
		for _, n := range names {
			a, err := ParseAlgorithm(n)
			if err != nil {
				return nil, fmt.Errorf("oidc: issuer %s: %w", ic.URL, err)
			}
			is.algs = append(is.algs, a)
		}
		v.issuers[ic.URL] = is
	}
	return v, nil
}

// looksLikeJWT reports whether s is a compact JWS: three base64url parts,
// the first a JSON header with "alg". (A password is very unlikely to be
// one.)
func looksLikeJWT(s string) bool {
	head, _, ok := strings.Cut(s, ".")
	if !ok || strings.Count(s, ".") != 2 {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return false
	}
	var h struct {
		Alg *string `json:"alg"`
	}
	return json.Unmarshal(b, &h) == nil && h.Alg != nil
}

// An oidcResult is a verified token: who, and the rules that granted it
// scopes.
type oidcResult struct {
	issuer  string
	subject string
	name    string
	rules   []string // "rule NAME (claim=value, ...)"
	scopes  []Scope
}

// verify checks raw and applies the issuer's rules. Errors are refusals
// (ErrUnauthenticated for a token that is not valid, ErrForbidden for a
// valid one that no rule grants) or match ErrDirectoryUnavailable when
// the issuer's keys cannot be fetched.
func (v *oidcVerifier) verify(ctx context.Context, raw string, now time.Time) (oidcResult, error) {
	// The issuer is read before the signature is checked, only to pick
	// the keys; nothing else is believed until the signature is.
	var allAlgs []jose.SignatureAlgorithm
	for _, a := range asymmetric {
		allAlgs = append(allAlgs, a)
	}
	tok, err := jwt.ParseSigned(raw, allAlgs)
	if err != nil {
		return oidcResult{}, unauthenticated("the ID token is not a signed JWT with an accepted algorithm (%s)", joseReason(err))
	}
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return oidcResult{}, unauthenticated("the ID token's claims cannot be read")
	}
	is := v.issuers[unverified.Issuer]
	if is == nil {
		return oidcResult{}, unauthenticated("the ID token's issuer %q is not trusted by this server", truncate(unverified.Issuer, 200))
	}
	if len(tok.Headers) != 1 {
		return oidcResult{}, unauthenticated("the ID token must have exactly one signature")
	}
	hdr := tok.Headers[0]
	if !slices.Contains(is.algs, jose.SignatureAlgorithm(hdr.Algorithm)) {
		return oidcResult{}, unauthenticated("the ID token is signed with %s, which issuer %s is not allowed to use", truncate(hdr.Algorithm, 20), is.cfg.URL)
	}
	keys, err := is.keysFor(ctx, v, hdr.KeyID, now)
	if err != nil {
		return oidcResult{}, err
	}
	var claims jwt.Claims
	var all map[string]any
	verified := false
	for _, k := range keys {
		if k.Algorithm != "" && k.Algorithm != hdr.Algorithm {
			continue
		}
		if err := tok.Claims(k.Key, &claims, &all); err == nil {
			verified = true
			break
		}
	}
	if !verified {
		if len(keys) == 0 {
			return oidcResult{}, unauthenticated("the ID token is signed with key %q, which issuer %s does not publish", truncate(hdr.KeyID, 100), is.cfg.URL)
		}
		return oidcResult{}, unauthenticated("the ID token's signature is not valid")
	}
	if claims.Expiry == nil {
		return oidcResult{}, unauthenticated("the ID token has no expiry (exp)")
	}
	err = claims.ValidateWithLeeway(jwt.Expected{
		Issuer:      is.cfg.URL,
		AnyAudience: jwt.Audience{is.cfg.Audience},
		Time:        now,
	}, v.skew)
	switch {
	case errors.Is(err, jwt.ErrExpired):
		return oidcResult{}, unauthenticated("the ID token expired at %s; get a fresh one", claims.Expiry.Time().UTC().Format(time.RFC3339))
	case errors.Is(err, jwt.ErrNotValidYet):
		return oidcResult{}, unauthenticated("the ID token is not valid yet (nbf)")
	case errors.Is(err, jwt.ErrInvalidAudience):
		return oidcResult{}, unauthenticated("the ID token's audience is not %q", is.cfg.Audience)
	case err != nil:
		return oidcResult{}, unauthenticated("the ID token is not valid (%s)", joseReason(err))
	}
	res := oidcResult{issuer: is.cfg.URL, subject: claims.Subject}
	res.name, _ = claimString(all[is.cfg.NameClaim])
	if res.name == "" {
		res.name = claims.Subject
	}
	for _, rule := range is.cfg.Rules {
		if why, ok := matchRule(rule, all); ok {
			res.rules = append(res.rules, why)
			res.scopes = append(res.scopes, rule.Scopes...)
		}
	}
	if len(res.rules) == 0 {
		return res, forbidden("the ID token of %q from %s matches no claim rule", truncate(res.name, 200), is.cfg.URL)
	}
	return res, nil
}

// matchRule reports whether claims match every pattern of rule, and says
// why as "rule NAME (claim=value, ...)".
func matchRule(rule ClaimRule, claims map[string]any) (string, bool) {
	names := make([]string, 0, len(rule.Claims))
	for n := range rule.Claims {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, 0, len(names))
	for _, n := range names {
		val, ok := claimString(claims[n])
		if !ok {
			return "", false
		}
		if m, err := path.Match(rule.Claims[n], val); err != nil || !m {
			return "", false
		}
		parts = append(parts, n+"="+val)
	}
	return fmt.Sprintf("rule %s (%s)", rule.Name, strings.Join(parts, ", ")), true
}

// claimString is the text of a scalar claim.
func claimString(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case bool:
		return fmt.Sprint(v), true
	case float64:
		return fmt.Sprint(v), true
	case json.Number:
		return v.String(), true
	}
	return "", false
}

// keysFor returns the issuer's keys that may have signed a token with
// key id kid (all keys when kid is empty), fetching them first if they
// were never fetched, or again if kid is unknown and the last fetch is
// older than the refresh interval.
func (is *issuer) keysFor(ctx context.Context, v *oidcVerifier, kid string, now time.Time) ([]jose.JSONWebKey, error) {
	is.mu.Lock()
	defer is.mu.Unlock()
	find := func() []jose.JSONWebKey {
		if kid == "" {
			return is.keys.Keys
		}
		return is.keys.Key(kid)
	}
	if keys := find(); len(keys) > 0 {
		return keys, nil
	}
	if !is.fetched.IsZero() && now.Sub(is.fetched) < v.interval {
		// Fetched recently: the key id is unknown, or the issuer was
		// down then and is not asked again yet (still 503, not 401).
		return nil, is.fetchErr
	}
	is.fetched = now
	if err := is.fetchLocked(ctx, v.client); err != nil {
		is.fetchErr = fmt.Errorf("oidc issuer %s: %w", is.cfg.URL, err)
		return nil, is.fetchErr
	}
	is.fetchErr = nil
	return find(), nil
}

// fetchLocked reads the discovery document (once) and the keys.
func (is *issuer) fetchLocked(ctx context.Context, client *http.Client) error {
	if is.jwksURI == "" {
		var doc struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		if err := getJSON(ctx, client, strings.TrimSuffix(is.cfg.URL, "/")+"/.well-known/openid-configuration", &doc); err != nil {
			return err
		}
		if doc.Issuer != is.cfg.URL {
			return &directoryError{cause: fmt.Errorf("discovery document names issuer %q, want %q", doc.Issuer, is.cfg.URL)}
		}
		if !strings.HasPrefix(doc.JWKSURI, "https://") {
			return &directoryError{cause: fmt.Errorf("discovery document's jwks_uri %q is not https", doc.JWKSURI)}
		}
		is.jwksURI = doc.JWKSURI
	}
	// Each key is decoded on its own: a key of a type this server does
	// not know (or an encryption key) is skipped, not a reason to refuse
	// every token of the issuer.
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := getJSON(ctx, client, is.jwksURI, &set); err != nil {
		return err
	}
	var keys []jose.JSONWebKey
	for _, raw := range set.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			continue
		}
		// Only public signing keys: a symmetric key in the set would
		// otherwise verify HMAC tokens made with it.
		if k.Valid() && k.IsPublic() && (k.Use == "" || k.Use == "sig") {
			keys = append(keys, k)
		}
	}
	is.keys = jose.JSONWebKeySet{Keys: keys}
	return nil
}

// getJSON fetches url into v; every failure matches ErrDirectoryUnavailable.
func getJSON(ctx context.Context, client *http.Client, url string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return &directoryError{cause: err}
	}
	resp, err := client.Do(req)
	if err != nil {
		return &directoryError{cause: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &directoryError{cause: fmt.Errorf("GET %s: %s", url, resp.Status)}
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v); err != nil {
		return &directoryError{cause: fmt.Errorf("GET %s: %w", url, err)}
	}
	return nil
}

// joseReason is a short reason from a go-jose error, for the client.
func joseReason(err error) string {
	return truncate(strings.TrimPrefix(strings.TrimPrefix(err.Error(), "go-jose/go-jose: "), "go-jose/go-jose/jwt: "), 200)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
