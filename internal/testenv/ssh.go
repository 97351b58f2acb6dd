package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// An SSHServer is the real OpenSSH server (sshd), started by the test on
// 127.0.0.1 with keys of its own, that serves the repositories under a
// directory over ssh:// the way a company's Git server does: git runs
// git-upload-pack on it through ssh, authenticated by a key.
//
// It accepts one client key (KeyFile) for the user running the test and
// nothing else: no passwords, no other keys. Its host key is in
// KnownHostsFile, which is how a client learns to trust it.
type SSHServer struct {
	Addr           string // 127.0.0.1:port
	User           string // the login user, the one running the test
	KeyFile        string // the private key sshd accepts
	OtherKeyFile   string // a private key sshd does not accept
	KnownHostsFile string // known_hosts with the server's host key
	root           string
	log            LogBuffer // sshd's own log (-e), for failure messages
}

// sshdPath is where Debian's openssh-server installs sshd; sshd must be
// started by its absolute path.
const sshdPath = "/usr/sbin/sshd"

// NewSSHServer starts sshd serving the bare repositories under root (a
// GitServer's Root, so that both serve the same repositories) and stops
// it when the test ends. When sshd, ssh or ssh-keygen is missing it
// skips the test, or fails it under MODGATE_REQUIRE_SERVERS=1 (see
// Unavailable): .ci/run installs both (Debian's openssh-server and
// openssh-client) and sets it.
func NewSSHServer(t testing.TB, root string) *SSHServer {
	t.Helper()
	sshd, err := exec.LookPath(sshdPath)
	if err != nil {
		Unavailable(t, "testenv: no OpenSSH server at %s (install Debian's openssh-server): %v", sshdPath, err)
	}
	for _, tool := range []string{"ssh-keygen", "ssh"} {
		if _, err := exec.LookPath(tool); err != nil {
			Unavailable(t, "testenv: no %s (install Debian's openssh-client): %v", tool, err)
		}
	}
	u, err := user.Current()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	if os.Geteuid() == 0 {
		// sshd running as root insists on its privilege separation
		// directory; the package creates it at boot, which a container
		// never had.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Fatalf("testenv: %v", err)
		}
	}
	dir := t.TempDir()
	s := &SSHServer{User: u.Username, root: root,
		KeyFile:        filepath.Join(dir, "client_ed25519"),
		OtherKeyFile:   filepath.Join(dir, "other_ed25519"),
		KnownHostsFile: filepath.Join(dir, "known_hosts"),
	}
	hostKey := filepath.Join(dir, "host_ed25519")
	for _, key := range []string{hostKey, s.KeyFile, s.OtherKeyFile} {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "modgate-test", "-f", key).CombinedOutput(); err != nil {
			t.Fatalf("testenv: ssh-keygen: %v\n%s", err, out)
		}
	}
	clientPub, err := os.ReadFile(s.KeyFile + ".pub")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	authorized := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authorized, clientPub, 0o600); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	hostPub, err := os.ReadFile(hostKey + ".pub")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	keyType, keyData, _ := strings.Cut(strings.TrimSpace(string(hostPub)), " ")
	keyData, _, _ = strings.Cut(keyData, " ")

	// sshd takes its port from the configuration, so pick a free one and
	// try again in the unlikely case that someone takes it first.
	for attempt := 1; ; attempt++ {
		port := freePort(t)
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		config := filepath.Join(dir, "sshd_config")
		if err := os.WriteFile(config, []byte(strings.Join([]string{
			"Port " + strconv.Itoa(port),
			"ListenAddress 127.0.0.1",
			"HostKey " + hostKey,
			"AuthorizedKeysFile " + authorized,
			"AuthenticationMethods publickey",
			"PubkeyAuthentication yes",
			"PasswordAuthentication no",
			"KbdInteractiveAuthentication no",
			"PermitRootLogin prohibit-password",
			"StrictModes no", // the test's temporary directories are not 0700 all the way up
			"UsePAM no",
			"PidFile none",
			"LogLevel VERBOSE",
			"",
		}, "\n")), 0o600); err != nil {
			t.Fatalf("testenv: %v", err)
		}
		cmd := exec.Command(sshd, "-D", "-e", "-f", config)
		cmd.Stdout, cmd.Stderr = &s.log, &s.log
		if err := cmd.Start(); err != nil {
			t.Fatalf("testenv: starting sshd: %v", err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		if waitListening(s.Addr, exited, 10*time.Second) {
			t.Cleanup(func() {
				cmd.Process.Kill()
				<-exited
			})
			break
		}
		cmd.Process.Kill()
		<-exited
		if attempt == 3 {
			t.Fatalf("testenv: sshd did not start on %s:\n%s", s.Addr, s.Log())
		}
	}
	line := fmt.Sprintf("[127.0.0.1]:%s %s %s\n", s.port(), keyType, keyData)
	if err := os.WriteFile(s.KnownHostsFile, []byte(line), 0o600); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return s
}

// URL is the ssh:// URL of the repository name ("platform/auth").
func (s *SSHServer) URL(name string) string {
	return "ssh://" + s.User + "@" + s.Addr + filepath.ToSlash(filepath.Join(s.root, name)) + ".git"
}

// URLTemplate is a private source URL template ({path}) for the
// repositories this server serves.
func (s *SSHServer) URLTemplate() string {
	return "ssh://" + s.User + "@" + s.Addr + filepath.ToSlash(s.root) + "/{path}.git"
}

// Log returns what sshd has logged so far.
func (s *SSHServer) Log() string { return s.log.String() }

func (s *SSHServer) port() string {
	_, port, _ := net.SplitHostPort(s.Addr)
	return port
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitListening waits until addr accepts connections, and reports false
// if the process exits or the time runs out first.
func waitListening(addr string, exited <-chan struct{}, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}
