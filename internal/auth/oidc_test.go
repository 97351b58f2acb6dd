package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/modgate/modgate/internal/testenv"
)

// oidcSetup is an Authenticator trusting one test issuer, with a rule
// that gives repository acme/* on main read access to corp.example.com.
type oidcSetup struct {
	*testAuth
	issuer *testenv.OIDCIssuer
}

func newOIDCSetup(t *testing.T) *oidcSetup {
	t.Helper()
	is := testenv.NewOIDCIssuer(t)
	read, _ := ParseScope("read:corp.example.com/*")
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(is.CA.PEM)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfigFor(pool)}}
	t.Cleanup(client.CloseIdleConnections)
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "https://" + dead.Addr().String()
	dead.Close()
	ta := newTestAuth(t, Config{
		Tokens:          true,
		FailedPerMinute: 1000,
		OIDC: &OIDCConfig{
			Client:          client,
			RefreshInterval: time.Minute,
			Issuers: []OIDCIssuer{
				{URL: is.URL, Audience: "https://modgate.example", NameClaim: "sub", Rules: []ClaimRule{
					{Name: "acme-main", Claims: map[string]string{"repository": "acme/*", "ref": "refs/heads/main"}, Scopes: []Scope{read}},
				}},
				{URL: deadURL, Audience: "https://modgate.example"},
			},
		},
	})
	return &oidcSetup{testAuth: ta, issuer: is}
}

// claims are valid claims for the setup, at its clock, changed by edit.
func (s *oidcSetup) claims(edit func(map[string]any)) map[string]any {
	now := s.clock.Now()
	c := map[string]any{
		"iss":        s.issuer.URL,
		"aud":        "https://modgate.example",
		"sub":        "repo:acme/app:ref:refs/heads/main",
		"repository": "acme/app",
		"ref":        "refs/heads/main",
		"iat":        now.Unix(),
		"nbf":        now.Add(-time.Second).Unix(),
		"exp":        now.Add(5 * time.Minute).Unix(),
	}
	if edit != nil {
		edit(c)
	}
	return c
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestOIDCTokens: a valid ID token from a trusted issuer, as a Bearer
// token or the password of user "oidc", gets the scopes of the rules its
// claims match, and the identity names the subject and the rule; every
// other token is refused with 401 (or 403 when valid but granted
// nothing) and a one-line reason.
func TestOIDCTokens(t *testing.T) {
	s := newOIDCSetup(t)
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	valid := s.issuer.Token(t, s.claims(nil))
	hmacKey := s.issuer.PublicKeyJSON(t)
	noneToken := b64(mustJSON(t, map[string]string{"alg": "none", "typ": "JWT", "kid": s.issuer.Kid()})) + "." + b64(mustJSON(t, s.claims(nil))) + "."

	tests := []struct {
		name   string
		auth   string
		status int
		body   string // substring
	}{
		{"bearer", "Bearer " + valid, 200, "oidc repo:acme/app:ref:refs/heads/main 192.0.2.1 read:corp.example.com/*"},
		{"basic user oidc", userBasic("oidc", valid), 200, "oidc repo:acme/app:ref:refs/heads/main"},
		{"basic other user", userBasic("alice", valid), 401, `an ID token is sent with the user name "oidc"`},
		{"expired", "Bearer " + s.issuer.Token(t, s.claims(func(c map[string]any) { c["exp"] = s.clock.Now().Add(-time.Minute).Unix() })), 401, "the ID token expired at"},
		{"expired within skew", "Bearer " + s.issuer.Token(t, s.claims(func(c map[string]any) { c["exp"] = s.clock.Now().Add(-10 * time.Second).Unix() })), 200, "oidc "},
		{"not yet valid", "Bearer " + s.issuer.Token(t, s.claims(func(c map[string]any) { c["nbf"] = s.clock.Now().Add(5 * time.Minute).Unix() })), 401, "not valid yet"},
		{"no expiry", "Bearer " + s.issuer.Token(t, s.claims(func(c map[string]any) { delete(c, "exp") })), 401, "has no expiry"},
		{"wrong audience", "Bearer " + s.issuer.Token(t, s.claims(func(c map[string]any) { c["aud"] = "https://other.example" })), 401, `audience is not "https://modgate.example"`},
		{"wrong issuer", "Bearer " + s.issuer.Token(t, s.claims(func(c map[string]any) { c["iss"] = "https://evil.example" })), 401, `issuer "https://evil.example" is not trusted`},
		{"unknown key id", "Bearer " + testenv.SignJWT(t, jose.ES256, other, "key-unknown", s.claims(nil)), 401, `signed with key "key-unknown", which issuer`},
		{"known key id, other key", "Bearer " + testenv.SignJWT(t, jose.ES256, other, s.issuer.Kid(), s.claims(nil)), 401, "signature is not valid"},
		{"rule does not match repository", "Bearer " + s.issuer.Token(t, s.claims(func(c map[string]any) { c["repository"] = "evil/app" })), 403, "matches no claim rule"},
		{"rule does not match branch", "Bearer " + s.issuer.Token(t, s.claims(func(c map[string]any) { c["ref"] = "refs/heads/feature" })), 403, "matches no claim rule"},
		{"rule does not match nested repository", "Bearer " + s.issuer.Token(t, s.claims(func(c map[string]any) { c["repository"] = "acme/app/x" })), 403, "matches no claim rule"},
		{"claim of the wrong type", "Bearer " + s.issuer.Token(t, s.claims(func(c map[string]any) { c["repository"] = []string{"acme/app"} })), 403, "matches no claim rule"},
		{"alg none", "Bearer " + noneToken, 401, "not a signed JWT with an accepted algorithm"},
		{"HMAC with the public key", "Bearer " + testenv.SignJWT(t, jose.HS256, hmacKey, s.issuer.Kid(), s.claims(nil)), 401, "not a signed JWT with an accepted algorithm"},
		{"garbage", "Bearer a.b.c", 401, "not a signed JWT"},
		{"issuer down", "Bearer " + s.issuer.Token(t, s.claims(func(c map[string]any) { c["iss"] = s.cfg.OIDC.Issuers[1].URL })), 503, "cannot be reached"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := s.do(t, request{auth: tt.auth})
			body := w.Body.String()
			if w.Code != tt.status || !strings.Contains(body, tt.body) || strings.Count(body, "\n") > 1 {
				t.Errorf("%s = %d %q, want %d containing %q on one line", tt.name, w.Code, body, tt.status, tt.body)
			}
			if w.Code == 401 && w.Header().Get("WWW-Authenticate") == "" {
				t.Errorf("%s: 401 without WWW-Authenticate", tt.name)
			}
		})
	}
	// The issuer that is down answers 503 again, without being asked
	// again within the refresh interval, not 401.
	down := s.issuer.Token(t, s.claims(func(c map[string]any) { c["iss"] = s.cfg.OIDC.Issuers[1].URL }))
	if w := s.do(t, request{auth: "Bearer " + down}); w.Code != 503 {
		t.Errorf("second token of the issuer that is down = %d %q, want 503", w.Code, w.Body.String())
	}
	// The keys were fetched once for the valid tokens, and the unknown
	// key id (within the refresh interval) did not fetch them again.
	if n := s.issuer.JWKSFetches.Load(); n != 1 {
		t.Errorf("JWKS fetched %d times, want 1", n)
	}
}

// TestOIDCKeyRotation: after the issuer rotates its key, tokens signed
// by the new key are accepted once the keys are fetched again (at most
// once per refresh interval), and tokens signed by the retired key are
// refused.
func TestOIDCKeyRotation(t *testing.T) {
	s := newOIDCSetup(t)
	old := s.issuer.Token(t, s.claims(nil))
	if w := s.do(t, request{auth: "Bearer " + old}); w.Code != 200 {
		t.Fatalf("token before rotation = %d %q, want 200", w.Code, w.Body.String())
	}
	s.issuer.Rotate(t)
	s.clock.Advance(2 * time.Minute)
	fresh := s.issuer.Token(t, s.claims(nil))
	if w := s.do(t, request{auth: "Bearer " + fresh}); w.Code != 200 {
		t.Errorf("token signed by the new key = %d %q, want 200", w.Code, w.Body.String())
	}
	if n := s.issuer.JWKSFetches.Load(); n != 2 {
		t.Errorf("JWKS fetched %d times, want 2 (once more for the new key id)", n)
	}
	// Many tokens with made-up key ids within the interval fetch nothing.
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for i := range 5 {
		tok := testenv.SignJWT(t, jose.ES256, other, "made-up-"+string(rune('a'+i)), s.claims(nil))
		if w := s.do(t, request{auth: "Bearer " + tok}); w.Code != 401 {
			t.Errorf("made-up key id = %d, want 401", w.Code)
		}
	}
	if n := s.issuer.JWKSFetches.Load(); n != 2 {
		t.Errorf("JWKS fetched %d times after made-up key ids, want still 2", n)
	}
	s.clock.Advance(2 * time.Minute)
	stale := s.issuer.Token(t, s.claims(nil)) // the current key: still fine
	if w := s.do(t, request{auth: "Bearer " + stale}); w.Code != 200 {
		t.Errorf("token signed by the current key = %d %q, want 200", w.Code, w.Body.String())
	}
	// The retired key (its token re-made with valid times) is refused.
	if w := s.do(t, request{auth: "Bearer " + old}); w.Code != 401 {
		t.Errorf("token signed by the retired key = %d %q, want 401", w.Code, w.Body.String())
	}
}

// TestOIDCOddKeys: keys of unknown types or for encryption in the
// issuer's key set are skipped, not fatal; a symmetric key published there
// never verifies an HMAC token made with it.
func TestOIDCOddKeys(t *testing.T) {
	s := newOIDCSetup(t)
	secret := []byte("0123456789abcdef0123456789abcdef")
	s.issuer.ExtraKeys = []map[string]any{
		{"kty": "oct", "kid": "shared", "k": b64(secret), "alg": "HS256"},
		{"kty": "XYZ", "kid": "future"},
		{"kty": "EC", "kid": "enc-key", "use": "enc", "crv": "P-256",
			"x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
	}
	if w := s.do(t, request{auth: "Bearer " + s.issuer.Token(t, s.claims(nil))}); w.Code != 200 {
		t.Errorf("valid token with odd keys in the set = %d %q, want 200", w.Code, w.Body.String())
	}
	hmac := testenv.SignJWT(t, jose.HS256, secret, "shared", s.claims(nil))
	if w := s.do(t, request{auth: "Bearer " + hmac}); w.Code != 401 {
		t.Errorf("HMAC token with the published symmetric key = %d %q, want 401", w.Code, w.Body.String())
	}
}

// TestOIDCIssuerConfig: HMAC and none cannot be configured.
func TestOIDCIssuerConfig(t *testing.T) {
	for _, alg := range []string{"HS256", "none", "rs256"} {
		_, err := New(Config{OIDC: &OIDCConfig{Issuers: []OIDCIssuer{{URL: "https://i.example", Audience: "a", Algorithms: []string{alg}}}}}, Deps{})
		if err == nil || !strings.Contains(err.Error(), "is not accepted") {
			t.Errorf("algorithm %q: New error = %v, want not accepted", alg, err)
		}
	}
}

func tlsConfigFor(pool *x509.CertPool) *tls.Config { return &tls.Config{RootCAs: pool} }
