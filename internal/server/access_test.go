package server_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/audit"
	"github.com/modgate/modgate/internal/auth"
	"github.com/modgate/modgate/internal/cli"
	"github.com/modgate/modgate/internal/config"
	"github.com/modgate/modgate/internal/testenv"
)

// End-to-end tests of access control and the audit log through a running
// modgate: the real go command with .netrc and GOAUTH over HTTPS, scope
// boundaries, client certificates, the trusted proxy header, revoked and
// expired tokens, the audit records of a series of requests and their
// verification, and an audit log that cannot be written.
//
// The go command sends credentials only over HTTPS, so those tests serve
// modgate with a certificate issued by a CA made in the test and give the
// go command that CA with SSL_CERT_FILE.

// publicScope is what anonymous clients may read in these tests: the
// example.com/hello modules (v1 and /v2). The other fixtures
// (example.com/greet, example.com/legacy, ...) are "private".
const publicScope = "read:example.com/hello"

// A testCA issues certificates for one test (see testenv.CA).
type testCA struct{ *testenv.CA }

func newTestCA(t *testing.T, name string) *testCA { return &testCA{testenv.NewCA(t, name)} }

func (ca *testCA) issue(t *testing.T, cn string, server bool) (certPEM, keyPEM []byte) {
	return ca.Issue(t, cn, server)
}

func (ca *testCA) clientCert(t *testing.T, cn string) tls.Certificate {
	return ca.TLSCert(t, cn, false)
}

// writeTemp writes data to a new file name in a fresh temporary directory
// and returns its path.
func writeTemp(t *testing.T, name string, data []byte, perm os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, perm); err != nil {
		t.Fatal(err)
	}
	return path
}

// secure is a modgate serving HTTPS with a certificate from its own CA.
type secure struct {
	*instance
	ca     *testCA
	caFile string // the CA certificate, for SSL_CERT_FILE
}

// startTLS starts modgate in front of up serving HTTPS on 127.0.0.1 with a
// certificate for 127.0.0.1 issued by a CA made for the test. edit may
// change the configuration further (after the TLS files are set).
func startTLS(t *testing.T, up *testenv.Upstream, edit func(*config.Config)) *secure {
	t.Helper()
	ca := newTestCA(t, "modgate test CA")
	certPEM, keyPEM := ca.issue(t, "127.0.0.1", true)
	s := &secure{ca: ca, caFile: writeTemp(t, "ca.pem", ca.PEM, 0o644)}
	certFile := writeTemp(t, "server.pem", certPEM, 0o644)
	keyFile := writeTemp(t, "server.key", keyPEM, 0o600)
	s.instance = startModgate(t, up, func(c *config.Config) {
		c.TLS.CertFile, c.TLS.KeyFile = certFile, keyFile
		if edit != nil {
			edit(c)
		}
	})
	// The harness names the listener with http://; the server wraps it in
	// TLS because tls.cert_file is set.
	s.URL = "https://" + strings.TrimPrefix(s.URL, "http://")
	return s
}

// client returns an HTTPS client that trusts s's CA and presents certs.
func (s *secure) client(t *testing.T, certs ...tls.Certificate) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.ca.PEM)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: certs}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// goEnv is the go command's environment for s: trusting its CA, with no
// credentials unless overrides add them.
func (s *secure) goEnv(t *testing.T, up *testenv.Upstream, overrides ...string) []string {
	return testenv.GoEnv(t, s.URL, up.VerifierKey(), append([]string{"SSL_CERT_FILE=" + s.caFile}, overrides...)...)
}

// A response is what call got back.
type response struct {
	status int
	body   string
	header http.Header
}

// call sends one request with c and reads the whole answer. header holds
// name, value pairs.
func call(t *testing.T, c *http.Client, method, url, body string, header ...string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return response{status: resp.StatusCode, body: string(b), header: resp.Header}
}

// bearer is the header pair that sends tok as a Bearer token.
func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

// createToken creates a token in the data directory of in, as `modgate
// token create` does from another process, and returns its text.
func createToken(t *testing.T, in *instance, name string, expires time.Time, scopes ...string) string {
	t.Helper()
	parsed, err := auth.ParseScopes(scopes)
	if err != nil {
		t.Fatal(err)
	}
	text, _, err := openTokens(t, in).Create(name, parsed, expires)
	if err != nil {
		t.Fatalf("creating token %q: %v", name, err)
	}
	return text
}

// openTokens opens the token store of in, as the token command does.
func openTokens(t *testing.T, in *instance) *auth.Tokens {
	t.Helper()
	tokens, err := auth.OpenTokens(config.Config{DataDir: in.DataDir}.AuthDir(), auth.TokensOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tokens
}

// auditDir is the audit log directory of in (the default, {data_dir}/audit).
func auditDir(in *instance) string { return config.Config{DataDir: in.DataDir}.AuditDir() }

// readAuditLog returns every record of the audit log in dir, in order.
func readAuditLog(t *testing.T, dir string) []audit.Record {
	t.Helper()
	var recs []audit.Record
	err := audit.Query(dir, audit.Filter{}, func(r audit.Record) error {
		recs = append(recs, r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// recordOf returns the record of the request with id, failing the test if
// there is not exactly one.
func recordOf(t *testing.T, recs []audit.Record, id string) audit.Record {
	t.Helper()
	var found []audit.Record
	for _, r := range recs {
		if r.RequestID == id {
			found = append(found, r)
		}
	}
	if id == "" || len(found) != 1 {
		t.Fatalf("%d audit records for request id %q, want 1", len(found), id)
	}
	return found[0]
}

// verifyAudit runs audit.Verify on dir with the server's key.
func verifyAudit(t *testing.T, dir string) audit.Report {
	t.Helper()
	pub, err := audit.LoadPublicKey(audit.KeyPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(dir, pub)
	if err != nil && rep.OK() {
		t.Fatalf("audit.Verify(%s): %v", dir, err)
	}
	return rep
}

// TestAuthGoCommand runs the real go command over HTTPS against a modgate
// where anonymous clients may read only example.com/hello: with a read
// token for example.com/greet in .netrc, in a NETRC file named by
// GOAUTH=netrc, or from a GOAUTH command, it downloads example.com/greet;
// without credentials (or with GOAUTH=off) it is refused with 401 and the
// server's reason reaches its stderr.
func TestAuthGoCommand(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	s := startTLS(t, up, func(c *config.Config) { c.Auth.Anonymous.Scopes = []string{publicScope} })
	tok := createToken(t, s.instance, "ci", time.Time{}, "read:example.com/greet")
	// The go command matches a .netrc machine against the URL's host and
	// port (since GOAUTH, Go 1.24): "machine 127.0.0.1" alone would not
	// apply to https://127.0.0.1:PORT.
	netrc := []byte("machine " + strings.TrimPrefix(s.URL, "https://") + " login ci password " + tok + "\n")
	greet := up.Module("example.com/greet", "v1.0.0")

	// goauthCommand is a GOAUTH command that sends the token as a Bearer
	// header to every URL of the server.
	goauthCommand := writeTemp(t, "goauth.sh", fmt.Appendf(nil,
		"#!/bin/sh\nprintf '%%s\\n\\n%%s\\n\\n' '%s/' 'Authorization: Bearer %s'\n", s.URL, tok), 0o755)

	tests := []struct {
		name string
		// setup returns the environment overrides, given the HOME the
		// go command will use.
		setup func(t *testing.T, home string) []string
		ok    bool
	}{
		{
			name: "netrc in HOME",
			setup: func(t *testing.T, home string) []string {
				if err := os.WriteFile(filepath.Join(home, ".netrc"), netrc, 0o600); err != nil {
					t.Fatal(err)
				}
				return nil
			},
			ok: true,
		},
		{
			name: "GOAUTH=netrc with NETRC",
			setup: func(t *testing.T, home string) []string {
				return []string{"GOAUTH=netrc", "NETRC=" + writeTemp(t, "credentials", netrc, 0o600)}
			},
			ok: true,
		},
		{
			name: "GOAUTH command",
			setup: func(t *testing.T, home string) []string {
				return []string{"GOAUTH=" + goauthCommand}
			},
			ok: true,
		},
		{
			name:  "no credentials",
			setup: func(t *testing.T, home string) []string { return nil },
		},
		{
			name: "GOAUTH=off ignores .netrc",
			setup: func(t *testing.T, home string) []string {
				if err := os.WriteFile(filepath.Join(home, ".netrc"), netrc, 0o600); err != nil {
					t.Fatal(err)
				}
				return []string{"GOAUTH=off"}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			home := t.TempDir()
			if err := testenv.TelemetryOff(home); err != nil {
				t.Fatal(err)
			}
			env := s.goEnv(t, up, append(tt.setup(t, home), "HOME="+home)...)
			if tt.ok {
				got := goDownload(t, env, greet.String())
				if len(got) != 1 || got[0].Error != "" || got[0].Sum != greet.ZipHash {
					t.Errorf("go mod download %s = %+v, want it downloaded with sum %s", greet, got, greet.ZipHash)
				}
				return
			}
			stderr := failGo(t, t.TempDir(), env, "mod", "download", greet.String())
			for _, want := range []string{"401 Unauthorized", "anonymous clients may not read example.com/greet"} {
				if !strings.Contains(stderr, want) {
					t.Errorf("go mod download without credentials: stderr does not contain %q:\n%s", want, stderr)
				}
			}
		})
	}

	// The public module needs no credentials.
	hello := up.Module("example.com/hello", "v1.0.0")
	if got := goDownload(t, s.goEnv(t, up), hello.String()); len(got) != 1 || got[0].Sum != hello.ZipHash {
		t.Errorf("anonymous go mod download %s = %+v, want it downloaded", hello, got)
	}
}

// TestAuthScopeBoundaries: a token for one module cannot read another,
// and is told "not found" exactly as for a module that does not exist; a
// read token cannot use the admin API; an admin token creates and revokes
// tokens through it, and both actions are audited under its name.
func TestAuthScopeBoundaries(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	in := startModgate(t, up, func(c *config.Config) { c.Auth.Anonymous.Scopes = []string{publicScope} })
	c := http.DefaultClient
	reader := createToken(t, in, "greet-reader", time.Time{}, "read:example.com/greet")
	admin := createToken(t, in, "platform", time.Time{}, "admin")

	if r := call(t, c, "GET", in.URL+"/example.com/greet/@v/v1.0.0.info", "", bearer(reader)...); r.status != http.StatusOK {
		t.Fatalf("token in scope: %d %q, want 200", r.status, r.body)
	}
	// Outside its scope: an existing module and one that does not exist
	// answer alike, so the token learns nothing about which modules exist.
	hidden := call(t, c, "GET", in.URL+"/example.com/legacy/@v/list", "", bearer(reader)...)
	absent := call(t, c, "GET", in.URL+"/example.com/absent/@v/list", "", bearer(reader)...)
	if hidden.status != http.StatusNotFound || hidden.body != "modgate: example.com/legacy: not found\n" {
		t.Errorf("token out of scope, existing module: %d %q; want 404 \"not found\"", hidden.status, hidden.body)
	}
	if absent.status != hidden.status || strings.ReplaceAll(absent.body, "absent", "legacy") != hidden.body {
		t.Errorf("token out of scope: a missing module answers %d %q, an existing one %d %q; they must not differ",
			absent.status, absent.body, hidden.status, hidden.body)
	}
	// Anonymous clients are asked for credentials instead.
	if r := call(t, c, "GET", in.URL+"/example.com/legacy/@v/list", ""); r.status != http.StatusUnauthorized || r.header.Get("WWW-Authenticate") == "" {
		t.Errorf("anonymous, private module: %d %q (WWW-Authenticate %q); want 401 with a challenge", r.status, r.body, r.header.Get("WWW-Authenticate"))
	}

	// The admin API.
	if r := call(t, c, "GET", in.URL+"/admin/tokens", "", bearer(reader)...); r.status != http.StatusForbidden || !strings.Contains(r.body, `may not administer`) {
		t.Errorf("read token on GET /admin/tokens: %d %q; want 403", r.status, r.body)
	}
	if r := call(t, c, "POST", in.URL+"/admin/tokens", `{"name":"sneaky","scopes":["admin"]}`, append(bearer(reader), "Content-Type", "application/json")...); r.status != http.StatusForbidden {
		t.Errorf("read token on POST /admin/tokens: %d %q; want 403", r.status, r.body)
	}
	if r := call(t, c, "GET", in.URL+"/admin/tokens", ""); r.status != http.StatusUnauthorized {
		t.Errorf("anonymous GET /admin/tokens: %d %q; want 401", r.status, r.body)
	}

	r := call(t, c, "POST", in.URL+"/admin/tokens", `{"name":"release","scopes":["read:example.com/legacy"],"expires":"1h"}`,
		append(bearer(admin), "Content-Type", "application/json")...)
	if r.status != http.StatusCreated {
		t.Fatalf("admin token on POST /admin/tokens: %d %q; want 201", r.status, r.body)
	}
	var created struct{ ID, Token string }
	if err := json.Unmarshal([]byte(r.body), &created); err != nil || created.ID == "" || created.Token == "" {
		t.Fatalf("POST /admin/tokens answered %q (%v); want the id and the token", r.body, err)
	}
	if r := call(t, c, "GET", in.URL+"/example.com/legacy/@v/list", "", bearer(created.Token)...); r.status != http.StatusOK || !strings.Contains(r.body, "v2.0.0+incompatible") {
		t.Errorf("new token on its module: %d %q; want the list", r.status, r.body)
	}
	if r := call(t, c, "GET", in.URL+"/admin/tokens", "", bearer(admin)...); r.status != http.StatusOK || !strings.Contains(r.body, `"release"`) || strings.Contains(r.body, created.Token) {
		t.Errorf("GET /admin/tokens: %d %q; want the new token listed, without its secret", r.status, r.body)
	}
	if r := call(t, c, "DELETE", in.URL+"/admin/tokens/"+created.ID, "", bearer(admin)...); r.status != http.StatusOK {
		t.Errorf("DELETE /admin/tokens/%s: %d %q; want 200", created.ID, r.status, r.body)
	}
	if r := call(t, c, "GET", in.URL+"/example.com/legacy/@v/list", "", bearer(created.Token)...); r.status != http.StatusUnauthorized || !strings.Contains(r.body, "unknown or revoked token") {
		t.Errorf("revoked token: %d %q; want 401 saying it is revoked", r.status, r.body)
	}

	in.shutdown(t)
	var actions []string
	for _, rec := range readAuditLog(t, auditDir(in)) {
		if rec.Result == audit.ResultAdmin && strings.Contains(rec.Detail, "id="+created.ID) {
			actions = append(actions, rec.Action+" by "+rec.Identity)
		}
	}
	if want := []string{"token.create by platform", "token.revoke by platform"}; !slices.Equal(actions, want) {
		t.Errorf("audited admin actions on the new token = %q, want %q", actions, want)
	}
}

// TestAuthMTLS: a client certificate from the configured client CA is the
// identity its common name names, with that name's scopes, and the audit
// record says so; a certificate from another CA is refused in the
// handshake; no certificate is anonymous.
func TestAuthMTLS(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	clients := newTestCA(t, "corp client CA")
	rogueCA := newTestCA(t, "rogue CA")
	caFile := writeTemp(t, "clients.pem", clients.PEM, 0o644)
	s := startTLS(t, up, func(c *config.Config) {
		c.TLS.ClientCAFile = caFile
		c.Auth.Anonymous.Scopes = []string{publicScope}
		c.Auth.MTLS.Identities = []config.AuthIdentity{{Name: "ci-runner", Scopes: []string{"read:example.com/greet"}}}
	})
	const greet = "/example.com/greet/@v/v1.0.0.info"

	runner := call(t, s.client(t, clients.clientCert(t, "ci-runner")), "GET", s.URL+greet, "")
	if runner.status != http.StatusOK {
		t.Errorf("certificate of ci-runner: %d %q, want 200", runner.status, runner.body)
	}
	// A certificate the CA issued to a name without scopes: known, but may
	// not read the module.
	if r := call(t, s.client(t, clients.clientCert(t, "stranger")), "GET", s.URL+greet, ""); r.status != http.StatusNotFound {
		t.Errorf("certificate of an unlisted name: %d %q, want 404", r.status, r.body)
	}
	if r := call(t, s.client(t), "GET", s.URL+greet, ""); r.status != http.StatusUnauthorized {
		t.Errorf("no certificate: %d %q, want 401", r.status, r.body)
	}
	// A certificate from another CA, with the same name. A Go client
	// offers only certificates from the CAs the server names, so it
	// connects without one and is anonymous...
	rogue := rogueCA.clientCert(t, "ci-runner")
	if r := call(t, s.client(t, rogue), "GET", s.URL+greet, ""); r.status != http.StatusUnauthorized {
		t.Errorf("certificate from another CA, not offered: %d %q, want 401", r.status, r.body)
	}
	// ...and a client that offers it anyway is refused in the handshake.
	forced := s.client(t)
	forced.Transport.(*http.Transport).TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		return &rogue, nil
	}
	req, err := http.NewRequestWithContext(t.Context(), "GET", s.URL+greet, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := forced.Do(req)
	if err == nil {
		resp.Body.Close()
		t.Errorf("certificate from another CA, offered: %s, want the handshake refused", resp.Status)
	} else if !strings.Contains(err.Error(), "certificate") {
		t.Errorf("certificate from another CA, offered: %v; want a TLS certificate error", err)
	}

	in := s.instance
	in.shutdown(t)
	rec := recordOf(t, readAuditLog(t, auditDir(in)), runner.header.Get("X-Request-Id"))
	if rec.Identity != "ci-runner" || rec.Module != "example.com/greet" || rec.Version != "v1.0.0" || rec.File != "info" || rec.Result != audit.ResultMiss {
		t.Errorf("audit record of the ci-runner request = %+v; want identity ci-runner, example.com/greet v1.0.0 info, miss", rec)
	}
}

// TestAuthTrustedHeader: the identity header is accepted from a configured
// proxy address and refused (403) from any other.
func TestAuthTrustedHeader(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	tests := []struct {
		name    string
		proxies []string
		status  int
		body    string // a substring of the answer
	}{
		{name: "from the proxy", proxies: []string{"127.0.0.1/32"}, status: http.StatusOK, body: `"Version":"v1.0.0"`},
		{name: "from elsewhere", proxies: []string{"192.0.2.0/24"}, status: http.StatusForbidden, body: "X-Forwarded-User is accepted only from a trusted proxy, and 127.0.0.1 is not one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := startModgate(t, up, func(c *config.Config) {
				c.Auth.Anonymous.Scopes = []string{publicScope}
				c.Auth.TrustedHeader = config.AuthTrustedHeader{
					Name:       "X-Forwarded-User",
					Proxies:    tt.proxies,
					Identities: []config.AuthIdentity{{Name: "alice", Scopes: []string{"read:example.com/greet"}}},
				}
			})
			r := call(t, http.DefaultClient, "GET", in.URL+"/example.com/greet/@v/v1.0.0.info", "", "X-Forwarded-User", "alice")
			if r.status != tt.status || !strings.Contains(r.body, tt.body) {
				t.Fatalf("GET with X-Forwarded-User: alice: %d %q; want %d containing %q", r.status, r.body, tt.status, tt.body)
			}
			in.shutdown(t)
			rec := recordOf(t, readAuditLog(t, auditDir(in)), r.header.Get("X-Request-Id"))
			want := audit.ResultMiss
			if tt.status == http.StatusForbidden {
				want = audit.ResultForbidden
			}
			if rec.Result != want || rec.Module != "example.com/greet" || (want == audit.ResultMiss && rec.Identity != "alice") {
				t.Errorf("audit record = %+v; want result %s for example.com/greet (identity alice when served)", rec, want)
			}
		})
	}
}

// TestAuthTokenRevokedAndExpired: a token revoked from another process
// (as `modgate token revoke` does) fails at the very next request, and a
// token stops working once it expires, not before.
func TestAuthTokenRevokedAndExpired(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	in := startModgate(t, up, func(c *config.Config) { c.Auth.Anonymous.Scopes = []string{publicScope} })
	const greet = "/example.com/greet/@v/v1.0.0.info"
	c := http.DefaultClient

	t.Run("revoked", func(t *testing.T) {
		tok := createToken(t, in, "revoke-me", time.Time{}, "read:example.com/greet")
		if r := call(t, c, "GET", in.URL+greet, "", bearer(tok)...); r.status != http.StatusOK {
			t.Fatalf("before revocation: %d %q, want 200", r.status, r.body)
		}
		if _, err := openTokens(t, in).Revoke("revoke-me"); err != nil {
			t.Fatal(err)
		}
		if r := call(t, c, "GET", in.URL+greet, "", bearer(tok)...); r.status != http.StatusUnauthorized || !strings.Contains(r.body, "unknown or revoked token") {
			t.Errorf("right after revocation: %d %q, want 401 saying the token is revoked", r.status, r.body)
		}
	})

	t.Run("expired", func(t *testing.T) {
		// The server reads the clock itself; give the token a few seconds
		// and poll across its expiry.
		expires := time.Now().Add(3 * time.Second)
		tok := createToken(t, in, "short-lived", expires, "read:example.com/greet")
		if r := call(t, c, "GET", in.URL+greet, "", bearer(tok)...); r.status != http.StatusOK {
			t.Fatalf("before expiry: %d %q, want 200 (expires %s, now %s)", r.status, r.body, expires, time.Now())
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			r := call(t, c, "GET", in.URL+greet, "", bearer(tok)...)
			answered := time.Now()
			if r.status == http.StatusOK {
				if answered.After(deadline) {
					t.Fatalf("token expiring at %s still works at %s", expires, answered)
				}
				time.Sleep(50 * time.Millisecond) // polling interval, not synchronisation
				continue
			}
			if r.status != http.StatusUnauthorized || !strings.Contains(r.body, "expired") {
				t.Fatalf("after expiry: %d %q, want 401 saying the token expired", r.status, r.body)
			}
			if answered.Before(expires) {
				t.Errorf("token expiring at %s refused already at %s", expires, answered)
			}
			break
		}
	})
}

// TestAuditRecordsRequests makes a hit, a miss, a refusal for missing
// credentials, a refusal hidden as "not found" and a real "not found",
// then checks, once the server has closed, that the log verifies and
// holds one record per request with who, what and how it ended. Editing
// one record then makes `modgate audit verify` fail naming it.
func TestAuditRecordsRequests(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	in := startModgate(t, up, func(c *config.Config) { c.Auth.Anonymous.Scopes = []string{publicScope} })
	tok := createToken(t, in, "ci", time.Time{}, "read:example.com/greet")
	c := http.DefaultClient

	type want struct {
		status                       int
		identity, mod, version, file string
		result                       audit.Result
		detail                       string
	}
	requests := []struct {
		path   string
		header []string
		want   want
	}{
		{"/example.com/hello/@v/v1.0.0.info", nil, want{200, "anonymous", "example.com/hello", "v1.0.0", "info", audit.ResultMiss, ""}},
		{"/example.com/hello/@v/v1.0.0.info", nil, want{200, "anonymous", "example.com/hello", "v1.0.0", "info", audit.ResultHit, ""}},
		{"/example.com/greet/@v/v1.0.0.mod", nil, want{401, "anonymous", "example.com/greet", "v1.0.0", "mod", audit.ResultUnauthorized, "anonymous clients may not read"}},
		{"/example.com/greet/@v/v1.0.0.mod", bearer(tok), want{200, "ci", "example.com/greet", "v1.0.0", "mod", audit.ResultMiss, ""}},
		{"/example.com/greet/@v/v1.0.0.zip", []string{"Authorization", "Bearer mgt_0000000000000000_" + strings.Repeat("0", 64)}, want{401, "anonymous", "example.com/greet", "v1.0.0", "zip", audit.ResultUnauthorized, "unknown or revoked token"}},
		{"/example.com/legacy/@v/list", bearer(tok), want{404, "ci", "example.com/legacy", "", "list", audit.ResultForbidden, "not found"}},
		{"/example.com/hello/@v/v1.9.9.info", nil, want{404, "anonymous", "example.com/hello", "v1.9.9", "info", audit.ResultNotFound, ""}},
	}
	ids := make([]string, len(requests))
	sizes := make([]int64, len(requests))
	for i, rq := range requests {
		r := call(t, c, "GET", in.URL+rq.path, "", rq.header...)
		if r.status != rq.want.status {
			t.Fatalf("GET %s: %d %q, want %d", rq.path, r.status, r.body, rq.want.status)
		}
		ids[i], sizes[i] = r.header.Get("X-Request-Id"), int64(len(r.body))
	}
	in.shutdown(t)

	dir := auditDir(in)
	if rep := verifyAudit(t, dir); !rep.OK() {
		t.Fatalf("audit verify on the untouched log:\n%s", rep)
	}
	recs := readAuditLog(t, dir)
	for i, rq := range requests {
		rec := recordOf(t, recs, ids[i])
		w := rq.want
		if rec.Identity != w.identity || rec.Module != w.mod || rec.Version != w.version || rec.File != w.file ||
			rec.Result != w.result || rec.Bytes != sizes[i] || !strings.Contains(rec.Detail, w.detail) ||
			rec.ClientIP != "127.0.0.1" || rec.Time.IsZero() || rec.UserAgent == "" {
			t.Errorf("GET %s (%v): audit record = %+v\nwant identity %q, %s %s %s, result %s, bytes %d, detail containing %q, client 127.0.0.1",
				rq.path, rq.header, rec, w.identity, w.mod, w.version, w.file, w.result, sizes[i], w.detail)
		}
	}

	// Edit the record of the token's download: claim someone else made it.
	edited := recordOf(t, recs, ids[3])
	file, line, seq := findRecordLine(t, dir, edited.RequestID)
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	changed := bytes.Replace(lines[line-1], []byte(`"identity":"ci"`), []byte(`"identity":"ops"`), 1)
	if bytes.Equal(changed, lines[line-1]) {
		t.Fatalf("record line has no identity field to edit: %s", lines[line-1])
	}
	lines[line-1] = changed
	if err := os.WriteFile(file, bytes.Join(lines, nil), 0o640); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := cli.Audit(t.Context(), []string{"verify", "--dir", dir}, &stdout, &stderr)
	wantLoc := fmt.Sprintf("%s:%d: seq %d: %s", filepath.Base(file), line, seq, audit.ProblemEdited)
	if code != 1 || !strings.Contains(stdout.String(), wantLoc) {
		t.Errorf("modgate audit verify after editing seq %d: exit %d\n%s%s\nwant exit 1 naming %q", seq, code, stdout.String(), stderr.String(), wantLoc)
	}
}

// findRecordLine returns the file, 1-based line and seq of the record of
// request id in the audit log in dir.
func findRecordLine(t *testing.T, dir, id string) (file string, line int, seq int64) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue // a directory
		}
		for i, l := range bytes.Split(data, []byte("\n")) {
			var e struct {
				Seq       int64  `json:"seq"`
				RequestID string `json:"request_id"`
			}
			if json.Unmarshal(l, &e) == nil && e.RequestID == id && e.Seq > 0 {
				return f, i + 1, e.Seq
			}
		}
	}
	t.Fatalf("no record of request %s in %s", id, dir)
	return "", 0, 0
}

// TestAuditUnwritable: when the audit log cannot be written, a fail-closed
// modgate refuses module requests with 503 and says why, and serves again
// once the log can be written (writing the held record then); a
// fail-open one keeps serving and counts the failures in
// modgate_audit_errors_total.
//
// The log is made unwritable by replacing its directory, after the server
// opened it, with a regular file: creating the log file then fails with
// ENOTDIR, which no privilege overrides. (Permissions would not do: the
// tests run as root, which ignores them.)
func TestAuditUnwritable(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	const hello = "/example.com/hello/@v/v1.0.0.info"
	for _, failClosed := range []bool{true, false} {
		t.Run(fmt.Sprintf("fail_closed=%v", failClosed), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "audit")
			in := startModgate(t, up, func(c *config.Config) {
				c.Audit.Dir = dir
				c.Audit.FailClosed = failClosed
			})
			c := http.DefaultClient
			breakDir(t, dir)
			// The sink finds out at its first write, after this request
			// was admitted.
			first := call(t, c, "GET", in.URL+hello, "")
			if first.status != http.StatusOK {
				t.Fatalf("first request: %d %q, want 200", first.status, first.body)
			}

			if failClosed {
				r := poll(t, func() (response, bool) {
					r := call(t, c, "GET", in.URL+hello, "")
					return r, r.status != http.StatusOK
				})
				if r.status != http.StatusServiceUnavailable || !strings.Contains(r.body, "audit log cannot be written") {
					t.Fatalf("fail-closed, log unwritable: %d %q; want 503 saying the audit log cannot be written", r.status, r.body)
				}
				if strings.Contains(r.body, dir) {
					t.Errorf("fail-closed answer shows clients the server's file system: %q", r.body)
				}
				if r := call(t, c, "GET", in.URL+"/healthz", ""); r.status != http.StatusOK {
					t.Errorf("/healthz while the audit log is unwritable: %d, want 200 (it is not audited)", r.status)
				}
				repairDir(t, dir)
				poll(t, func() (response, bool) {
					r := call(t, c, "GET", in.URL+hello, "")
					return r, r.status == http.StatusOK
				})
			} else {
				poll(t, func() (response, bool) {
					r := call(t, c, "GET", in.URL+"/metrics", "")
					return r, auditErrors(t, r.body) > 0
				})
				if r := call(t, c, "GET", in.URL+hello, ""); r.status != http.StatusOK {
					t.Errorf("fail-open, log unwritable: %d %q; want 200", r.status, r.body)
				}
				repairDir(t, dir)
			}

			in.shutdown(t)
			if rep := verifyAudit(t, dir); !rep.OK() {
				t.Fatalf("audit verify after the failure:\n%s", rep)
			}
			recs := readAuditLog(t, dir)
			var requestIDs []string
			var dropped bool
			for _, r := range recs {
				requestIDs = append(requestIDs, r.RequestID)
				dropped = dropped || r.Action == audit.ActionDropped
			}
			held := slices.Contains(requestIDs, first.header.Get("X-Request-Id"))
			if failClosed && !held {
				t.Errorf("fail-closed: the record of the request admitted before the failure was lost; records: %+v", recs)
			}
			if !failClosed && (held || !dropped) {
				t.Errorf("fail-open: record of the first request written %v, drop recorded %v; want it dropped and the drop recorded", held, dropped)
			}
		})
	}
}

// breakDir replaces the directory dir, which must hold no log file yet,
// with a regular file.
func breakDir(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) > 0 {
		t.Fatalf("audit directory not empty before any request: %v", entries)
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, []byte("not a directory\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// repairDir makes dir a directory again.
func repairDir(t *testing.T, dir string) {
	t.Helper()
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
}

// poll calls try until it reports done, failing the test after 20 s, and
// returns the last response.
func poll(t *testing.T, try func() (response, bool)) response {
	t.Helper()
	var r response
	pollUntil(t, 20*time.Second, func() string {
		var done bool
		if r, done = try(); done {
			return ""
		}
		return fmt.Sprintf("still %d %q", r.status, r.body)
	})
	return r
}

var auditErrorsLine = regexp.MustCompile(`(?m)^modgate_audit_errors_total\{[^}]*\} ([0-9.e+]+)$`)

// auditErrors sums modgate_audit_errors_total in a /metrics answer.
func auditErrors(t *testing.T, metrics string) float64 {
	t.Helper()
	var sum float64
	for _, m := range auditErrorsLine.FindAllStringSubmatch(metrics, -1) {
		var v float64
		if _, err := fmt.Sscan(m[1], &v); err != nil {
			t.Fatalf("metric line %q: %v", m[0], err)
		}
		sum += v
	}
	return sum
}
