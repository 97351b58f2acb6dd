package testenv

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// An OIDCIssuer is an OpenID Connect token issuer, as a CI system runs
// one: it serves a discovery document and its public keys (JWKS) over
// HTTPS on 127.0.0.1 (certificate from CA), and signs ID tokens with
// ES256. Rotate replaces the signing key, the way issuers rotate keys.
type OIDCIssuer struct {
	URL string // the issuer, as tokens' "iss" says it
	CA  *CA    // trusts the issuer's certificate

	mu        sync.Mutex
	key       *ecdsa.PrivateKey
	kid       string
	published []jose.JSONWebKey
	n         int
	// JWKSFetches counts requests for the keys.
	JWKSFetches atomic.Int64
	// ExtraKeys are published in the key set besides the signing key, as
	// they are (keys of other types or uses, symmetric keys).
	ExtraKeys []map[string]any
}

// NewOIDCIssuer starts an issuer, stopped when the test ends.
func NewOIDCIssuer(t testing.TB) *OIDCIssuer {
	t.Helper()
	is := &OIDCIssuer{CA: NewCA(t, "modgate test OIDC CA")}
	is.Rotate(t)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"issuer":                                is.URL,
			"jwks_uri":                              is.URL + "/jwks",
			"id_token_signing_alg_values_supported": []string{"ES256"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		is.JWKSFetches.Add(1)
		is.mu.Lock()
		keys := []any{}
		for _, k := range is.published {
			keys = append(keys, k)
		}
		for _, k := range is.ExtraKeys {
			keys = append(keys, k)
		}
		is.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"keys": keys})
	})
	srv := httptest.NewUnstartedServer(mux)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{is.CA.TLSCert(t, "127.0.0.1", true)}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	is.URL = srv.URL
	return is
}

// Rotate makes a new signing key and publishes only it: tokens signed by
// the old key stop verifying once the verifier fetches the keys again.
func (is *OIDCIssuer) Rotate(t testing.TB) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	is.mu.Lock()
	defer is.mu.Unlock()
	is.n++
	is.key, is.kid = key, fmt.Sprintf("key-%d", is.n)
	is.published = []jose.JSONWebKey{{Key: key.Public(), KeyID: is.kid, Algorithm: string(jose.ES256), Use: "sig"}}
}

// Token signs claims with the current key. Claims such as "iss", "aud",
// "exp" are whatever the caller puts in.
func (is *OIDCIssuer) Token(t testing.TB, claims map[string]any) string {
	t.Helper()
	is.mu.Lock()
	key, kid := is.key, is.kid
	is.mu.Unlock()
	return SignJWT(t, jose.ES256, key, kid, claims)
}

// SignJWT signs claims with key (an ecdsa, rsa or ed25519 private key,
// or []byte for HMAC) under alg and key id kid.
func SignJWT(t testing.TB, alg jose.SignatureAlgorithm, key crypto.PrivateKey, kid string, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	raw, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return raw
}

// PublicKeyJSON is the current public key as a JWK, for HMAC confusion
// attempts (signing with the public key's bytes as the HMAC secret).
func (is *OIDCIssuer) PublicKeyJSON(t testing.TB) []byte {
	t.Helper()
	is.mu.Lock()
	defer is.mu.Unlock()
	b, err := json.Marshal(is.published[0])
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return b
}

// Kid is the current key id.
func (is *OIDCIssuer) Kid() string {
	is.mu.Lock()
	defer is.mu.Unlock()
	return is.kid
}
