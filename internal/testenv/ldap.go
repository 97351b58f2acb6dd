package testenv

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// An LDAPServer is OpenLDAP's real slapd, started on 127.0.0.1 with a
// generated database, serving LDAPS and LDAP with StartTLS under a
// certificate from its own CA. One server serves a whole test package
// (SharedLDAP); StopShared stops it when the package's tests end.
//
// The directory (base dc=example,dc=com):
//
//	uid=alice,ou=people    password LDAPPassword("alice"), in cn=developers
//	uid=bob,ou=people      password LDAPPassword("bob"), in cn=others only
//	uid=carol,ou=people    password LDAPPassword("carol"), in cn=developers
//	cn=modgate             the service account (BindDN, BindPassword)
//	cn=developers,ou=groups and cn=others,ou=groups (groupOfNames)
type LDAPServer struct {
	LDAPSURL     string // ldaps://127.0.0.1:port
	StartTLSURL  string // ldap://127.0.0.1:port, for StartTLS
	CAPEM        []byte // the CA of the server certificate
	CAFile       string
	BindDN       string
	BindPassword string
	Base         string

	dir  string
	args []string
	log  LogBuffer

	mu  sync.Mutex
	cmd *exec.Cmd
	// exited is closed when cmd ends.
	exited chan struct{}
}

// slapdPath is where Debian's slapd package installs the server.
const slapdPath = "/usr/sbin/slapd"

// LDAPPassword is the password of the test directory's user.
func LDAPPassword(user string) string { return "pw-" + user + "-secret" }

var (
	sharedLDAPOnce sync.Once
	sharedLDAP     *LDAPServer
	sharedLDAPErr  error
)

// SharedLDAP returns the package's LDAP server, starting it on first use.
// When slapd is missing it skips the test, or fails it under
// MODGATE_REQUIRE_SERVERS=1 (.ci/run installs Debian's slapd). The
// package's TestMain calls StopShared after the tests.
func SharedLDAP(t testing.TB) *LDAPServer {
	t.Helper()
	if _, err := exec.LookPath(slapdPath); err != nil {
		Unavailable(t, "testenv: no OpenLDAP server at %s (install Debian's slapd): %v", slapdPath, err)
	}
	sharedLDAPOnce.Do(func() {
		sharedLDAPErr = fmt.Errorf("starting slapd failed in an earlier test")
		sharedLDAP, sharedLDAPErr = startLDAP(t)
	})
	if sharedLDAPErr != nil {
		t.Fatalf("testenv: %v", sharedLDAPErr)
	}
	return sharedLDAP
}

// StopShared stops the servers SharedLDAP started and removes their files.
func StopShared() {
	if sharedLDAP != nil {
		sharedLDAP.Stop()
		os.RemoveAll(sharedLDAP.dir)
	}
}

func startLDAP(t testing.TB) (*LDAPServer, error) {
	dir, err := os.MkdirTemp("", "modgate-slapd-")
	if err != nil {
		return nil, err
	}
	ca := NewCA(t, "modgate test LDAP CA")
	certPEM, keyPEM := ca.Issue(t, "127.0.0.1", true)
	s := &LDAPServer{
		CAPEM:        ca.PEM,
		CAFile:       filepath.Join(dir, "ca.pem"),
		BindDN:       "cn=modgate,dc=example,dc=com",
		BindPassword: "service-secret",
		Base:         "dc=example,dc=com",
		dir:          dir,
	}
	files := map[string]string{
		"ca.pem":     string(ca.PEM),
		"server.pem": string(certPEM),
		"server.key": string(keyPEM),
		"slapd.conf": strings.Join([]string{
			"include /etc/ldap/schema/core.schema",
			"include /etc/ldap/schema/cosine.schema",
			"include /etc/ldap/schema/inetorgperson.schema",
			"include /etc/ldap/schema/nis.schema",
			"modulepath /usr/lib/ldap",
			"moduleload back_mdb",
			"pidfile " + filepath.Join(dir, "slapd.pid"),
			"TLSCACertificateFile " + filepath.Join(dir, "ca.pem"),
			"TLSCertificateFile " + filepath.Join(dir, "server.pem"),
			"TLSCertificateKeyFile " + filepath.Join(dir, "server.key"),
			"database mdb",
			`suffix "dc=example,dc=com"`,
			`rootdn "cn=admin,dc=example,dc=com"`,
			"rootpw admin-secret",
			"directory " + filepath.Join(dir, "db"),
			"access to attrs=userPassword by anonymous auth by * none",
			"access to * by users read by * none",
			"",
		}, "\n"),
		"data.ldif": ldapData(),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			return nil, err
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "db"), 0o700); err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "slapd.conf")
	if out, err := exec.Command(slapdPath, "-T", "add", "-f", conf, "-l", filepath.Join(dir, "data.ldif")).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("slapadd: %v\n%s", err, out)
	}
	ldapPort, ldapsPort := freePort(t), freePort(t)
	s.StartTLSURL = "ldap://127.0.0.1:" + strconv.Itoa(ldapPort)
	s.LDAPSURL = "ldaps://127.0.0.1:" + strconv.Itoa(ldapsPort)
	s.args = []string{"-d", "0", "-f", conf, "-h", s.StartTLSURL + "/ " + s.LDAPSURL + "/"}
	if err := s.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// ldapData is the LDIF of the test directory.
func ldapData() string {
	var b strings.Builder
	b.WriteString("dn: dc=example,dc=com\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n")
	b.WriteString("dn: ou=people,dc=example,dc=com\nobjectClass: organizationalUnit\nou: people\n\n")
	b.WriteString("dn: ou=groups,dc=example,dc=com\nobjectClass: organizationalUnit\nou: groups\n\n")
	b.WriteString("dn: cn=modgate,dc=example,dc=com\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: modgate\nuserPassword: service-secret\n\n")
	for _, u := range []string{"alice", "bob", "carol"} {
		fmt.Fprintf(&b, "dn: uid=%s,ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\nuid: %s\ncn: %s\nsn: %s\nuserPassword: %s\n\n", u, u, u, u, LDAPPassword(u))
	}
	b.WriteString("dn: cn=developers,ou=groups,dc=example,dc=com\nobjectClass: groupOfNames\ncn: developers\nmember: uid=alice,ou=people,dc=example,dc=com\nmember: uid=carol,ou=people,dc=example,dc=com\n\n")
	b.WriteString("dn: cn=others,ou=groups,dc=example,dc=com\nobjectClass: groupOfNames\ncn: others\nmember: uid=bob,ou=people,dc=example,dc=com\n\n")
	return b.String()
}

// Start starts slapd (again, after Stop) on the same ports.
func (s *LDAPServer) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return nil
	}
	addr := strings.TrimPrefix(s.LDAPSURL, "ldaps://")
	for attempt := 0; attempt < 50; attempt++ {
		cmd := exec.Command(slapdPath, s.args...)
		cmd.Stdout, cmd.Stderr = &s.log, &s.log
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("starting slapd: %v", err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		if waitListening(addr, exited, 10*time.Second) {
			s.cmd, s.exited = cmd, exited
			return nil
		}
		cmd.Process.Kill()
		<-exited
		// The port may still be held by the previous slapd's socket.
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("slapd did not start listening on %s:\n%s", addr, s.log.String())
}

// Stop stops slapd; the directory then refuses connections until Start.
func (s *LDAPServer) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// TLSConfig is a client TLS configuration that trusts the server.
func (s *LDAPServer) TLSConfig() *tls.Config {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.CAPEM)
	return &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
}

// Log is slapd's output, for failure messages.
func (s *LDAPServer) Log() string { return s.log.String() }
