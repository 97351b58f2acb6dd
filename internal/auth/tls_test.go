package auth

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tlsFiles writes a server certificate for 127.0.0.1 issued by ca, named
// cn, into dir and returns the paths.
func tlsFiles(t *testing.T, ca *testCA, dir, cn string) (certFile, keyFile string) {
	t.Helper()
	c, k := ca.issue(t, cn, true)
	return writeFile(t, dir, "server.crt", c), writeFile(t, dir, "server.key", k)
}

// serveTLS serves h over TLS with cfg on 127.0.0.1 and returns the
// address.
func serveTLS(t *testing.T, cfg *tls.Config, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Refused handshakes are what some tests expect; keep them out of the output.
	srv := &http.Server{Handler: h, ErrorLog: log.New(io.Discard, "", 0)}
	go srv.Serve(tls.NewListener(ln, cfg))
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func pool(cas ...*testCA) *x509.CertPool {
	p := x509.NewCertPool()
	for _, ca := range cas {
		p.AddCert(ca.Cert)
	}
	return p
}

// get fetches https://addr/ with a client trusting serverCA and presenting
// certs, and returns the body.
func get(t *testing.T, addr string, serverCA *testCA, auth string, certs ...tls.Certificate) (string, error) {
	t.Helper()
	tc := &tls.Config{RootCAs: pool(serverCA)}
	if len(certs) > 0 {
		// Send the certificate even when the server's list of acceptable
		// CAs does not name its issuer, as a hostile client would.
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &certs[0], nil }
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(t.Context(), "GET", "https://"+addr+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}

func TestMutualTLS(t *testing.T) {
	serverCA, clientCA, strangerCA := newTestCA(t, "server CA"), newTestCA(t, "client CA"), newTestCA(t, "stranger CA")
	dir := t.TempDir()
	certFile, keyFile := tlsFiles(t, serverCA, dir, "modgate")
	caFile := writeFile(t, dir, "clients.pem", clientCA.PEM)
	cfg, err := ServerTLS(TLSOptions{CertFile: certFile, KeyFile: keyFile, ClientCAFile: caFile})
	if err != nil {
		t.Fatal(err)
	}
	ta := newTestAuth(t, Config{
		Anonymous:         true,
		AnonymousScopes:   mustScopes(t, "read:public.example"),
		Tokens:            true,
		CertIdentities:    []NamedScopes{{Name: "ci-runner", Scopes: mustScopes(t, "read:corp.example.com/*")}},
		CertDefaultScopes: mustScopes(t, "read:corp.example.com/shared"),
	})
	token, _ := createToken(t, ta.tokens, "ci", "publish:corp.example.com")
	addr := serveTLS(t, cfg, ta.Middleware(echoIdentity))

	tests := []struct {
		name    string
		certs   []tls.Certificate
		auth    string
		want    string
		wantErr bool
	}{
		{name: "mapped certificate", certs: []tls.Certificate{clientCA.clientCert(t, "ci-runner")}, want: "mtls ci-runner 127.0.0.1 read:corp.example.com/*"},
		{name: "other certificate", certs: []tls.Certificate{clientCA.clientCert(t, "laptop")}, want: "mtls laptop 127.0.0.1 read:corp.example.com/shared"},
		{name: "certificate wins over token", certs: []tls.Certificate{clientCA.clientCert(t, "laptop")}, auth: "Bearer " + token, want: "mtls laptop"},
		{name: "no certificate", want: "anonymous anonymous 127.0.0.1 read:public.example"},
		{name: "token without certificate", auth: "Bearer " + token, want: "token ci 127.0.0.1 publish:corp.example.com"},
		{name: "certificate from an unknown CA", certs: []tls.Certificate{strangerCA.clientCert(t, "ci-runner")}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, err := get(t, addr, serverCA, tt.auth, tt.certs...)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("GET with %s = %q, want a handshake failure", tt.name, body)
				}
				return
			}
			if err != nil || !strings.HasPrefix(body, tt.want) {
				t.Fatalf("GET with %s = %q, %v; want %q", tt.name, body, err, tt.want)
			}
		})
	}
}

func TestServerTLSMinVersion(t *testing.T) {
	ca := newTestCA(t, "server CA")
	certFile, keyFile := tlsFiles(t, ca, t.TempDir(), "modgate")
	for _, tt := range []struct {
		min      uint16
		client12 bool // whether a TLS 1.2-only client connects
	}{
		{min: 0, client12: true},
		{min: tls.VersionTLS12, client12: true},
		{min: tls.VersionTLS13, client12: false},
	} {
		cfg, err := ServerTLS(TLSOptions{CertFile: certFile, KeyFile: keyFile, MinVersion: tt.min})
		if err != nil {
			t.Fatal(err)
		}
		if cfg.MinVersion < tls.VersionTLS12 {
			t.Errorf("MinVersion %#x: config allows %#x", tt.min, cfg.MinVersion)
		}
		addr := serveTLS(t, cfg, http.NotFoundHandler())
		conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool(ca), MaxVersion: tls.VersionTLS12})
		if (err == nil) != tt.client12 {
			t.Errorf("MinVersion %#x: TLS 1.2 client: err = %v, want success %v", tt.min, err, tt.client12)
		}
		if conn != nil {
			conn.Close()
		}
	}
}

func TestServerTLSErrors(t *testing.T) {
	ca := newTestCA(t, "server CA")
	dir := t.TempDir()
	certFile, keyFile := tlsFiles(t, ca, dir, "modgate")
	notPEM := writeFile(t, dir, "junk.pem", []byte("junk"))
	tests := []struct {
		name string
		opt  TLSOptions
		want string
	}{
		{"no key", TLSOptions{CertFile: certFile}, "both required"},
		{"missing cert", TLSOptions{CertFile: filepath.Join(dir, "nope.crt"), KeyFile: keyFile}, "no such file"},
		{"key is not a key", TLSOptions{CertFile: certFile, KeyFile: notPEM}, "loading"},
		{"client CA not PEM", TLSOptions{CertFile: certFile, KeyFile: keyFile, ClientCAFile: notPEM}, "holds no PEM certificate"},
		{"bad version", TLSOptions{CertFile: certFile, KeyFile: keyFile, MinVersion: tls.VersionTLS10}, "not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ServerTLS(tt.opt); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ServerTLS = %v, want error containing %q", err, tt.want)
			}
		})
	}
	if _, err := ParseTLSVersion("1.1"); err == nil {
		t.Error(`ParseTLSVersion("1.1") succeeded`)
	}
}

// TestServerTLSReload checks that a renewed certificate is served at the
// next handshake, and that a broken renewal keeps the previous one.
func TestServerTLSReload(t *testing.T) {
	ca := newTestCA(t, "server CA")
	dir := t.TempDir()
	certFile, keyFile := tlsFiles(t, ca, dir, "first")
	cfg, err := ServerTLS(TLSOptions{CertFile: certFile, KeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTLS(t, cfg, http.NotFoundHandler())
	served := func() string {
		t.Helper()
		conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool(ca)})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if got := served(); got != "first" {
		t.Fatalf("served %q, want first", got)
	}
	tlsFiles(t, ca, dir, "second")
	if got := served(); got != "second" {
		t.Fatalf("after renewal served %q, want second", got)
	}
	// Half a renewal: a new certificate whose key has not arrived yet.
	c, _ := ca.issue(t, "third", true)
	writeFile(t, dir, "server.crt", c)
	if got := served(); got != "second" {
		t.Errorf("with a mismatched key served %q, want the previous certificate", got)
	}
	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	if got := served(); got != "second" {
		t.Errorf("with the key missing served %q, want the previous certificate", got)
	}
}

// TestServerTLSClientCAReload: a changed client CA file takes effect at
// the next handshake, and a broken one keeps the previous CA.
func TestServerTLSClientCAReload(t *testing.T) {
	serverCA, oldCA, newCA := newTestCA(t, "server CA"), newTestCA(t, "old client CA"), newTestCA(t, "new client CA")
	dir := t.TempDir()
	certFile, keyFile := tlsFiles(t, serverCA, dir, "modgate")
	caFile := writeFile(t, dir, "clients.pem", oldCA.PEM)
	cfg, err := ServerTLS(TLSOptions{CertFile: certFile, KeyFile: keyFile, ClientCAFile: caFile})
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTLS(t, cfg, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TLS.VerifiedChains) > 0 {
			io.WriteString(w, "verified "+r.TLS.VerifiedChains[0][0].Subject.CommonName)
		}
	}))
	oldCert, newCert := oldCA.clientCert(t, "old-runner"), newCA.clientCert(t, "new-runner")
	accepts := func(cert tls.Certificate, want string) bool {
		t.Helper()
		body, err := get(t, addr, serverCA, "", cert)
		return err == nil && body == "verified "+want
	}
	if !accepts(oldCert, "old-runner") || accepts(newCert, "new-runner") {
		t.Fatal("with the old CA: want the old CA's certificate verified and the new one refused")
	}
	writeFile(t, dir, "clients.pem", newCA.PEM)
	if accepts(oldCert, "old-runner") || !accepts(newCert, "new-runner") {
		t.Fatal("after replacing the CA file: want the new CA's certificate verified and the old one refused")
	}
	writeFile(t, dir, "clients.pem", []byte("-----BEGIN CERTIFICATE-----\ntruncated"))
	if !accepts(newCert, "new-runner") {
		t.Error("a broken CA file replaced the previous CA; want it kept")
	}
	if err := os.Remove(caFile); err != nil {
		t.Fatal(err)
	}
	if !accepts(newCert, "new-runner") || accepts(oldCert, "old-runner") {
		t.Error("with the CA file gone: want the previous CA kept")
	}
}
