package auth

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"testing"

	"github.com/modgate/modgate/internal/testenv"
)

// A testCA issues certificates for tests (see testenv.CA).
type testCA struct{ *testenv.CA }

func newTestCA(t *testing.T, name string) *testCA { return &testCA{testenv.NewCA(t, name)} }

// issue returns a PEM certificate and key for cn: a server certificate for
// 127.0.0.1 when server is set, a client certificate otherwise.
func (ca *testCA) issue(t *testing.T, cn string, server bool) (certPEM, keyPEM []byte) {
	return ca.Issue(t, cn, server)
}

// clientCert returns a tls.Certificate for cn issued by ca.
func (ca *testCA) clientCert(t *testing.T, cn string) tls.Certificate {
	return ca.TLSCert(t, cn, false)
}

// writeFile writes data to dir/name atomically (as certificate renewal
// tools do) and returns the path.
func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	return path
}
