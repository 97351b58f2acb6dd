package git_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modgate/modgate/internal/testenv"
	"github.com/modgate/modgate/internal/upstream"
	"github.com/modgate/modgate/internal/upstream/git"
)

// testSSH serves the shared repositories through a real sshd as well, and
// checks that an ssh:// source answers exactly as the https one (which
// testSameAsGoCommand compares with the go command), authenticates with
// its key only, trusts only the configured host key, and names each
// failure.
func testSSH(t *testing.T, w *world, httpsSrc *git.Source) {
	sshd := testenv.NewSSHServer(t, w.srv.Root)
	newSSH := func(t *testing.T, cred git.Credentials) *git.Source {
		t.Helper()
		return newSource(t, w.srv, func(c *git.Config) {
			c.URL = sshd.URLTemplate()
			c.Credentials = cred
		})
	}
	good := git.Credentials{SSHKeyFile: sshd.KeyFile, SSHKnownHostsFile: sshd.KnownHostsFile}

	t.Run("SameAsHTTPS", func(t *testing.T) {
		src := newSSH(t, good)
		auth := host + "/platform/auth"
		queries := []string{
			auth + "@v1.1.0", auth + "@latest", auth + "@feature", auth + "@" + w.mainHead[:12],
			auth + "/sub@v0.1.0", auth + "/v2@v2.0.0",
			host + "/platform/legacy@v2.0.0+incompatible", host + "/platform/major/v2@latest",
			host + "/platform/notags@latest",
		}
		for _, q := range queries {
			modPath, query, _ := strings.Cut(q, "@")
			file := query + ".info"
			if query == "latest" {
				file = "latest"
			}
			want := parseInfo(t, mustFetch(t, httpsSrc, escaped(t, modPath, file)))
			got := parseInfo(t, mustFetch(t, src, escaped(t, modPath, file)))
			if got.Version != want.Version || !got.Time.Equal(want.Time) || got.Origin.Hash != want.Origin.Hash {
				t.Errorf("%s over ssh = %s %v %s; over https %s %v %s", q, got.Version, got.Time, got.Origin.Hash, want.Version, want.Time, want.Origin.Hash)
				continue
			}
			if !strings.HasPrefix(got.Origin.URL, "ssh://") {
				t.Errorf("%s over ssh: origin URL %q, want the ssh:// repository", q, got.Origin.URL)
			}
			for _, ext := range []string{".mod", ".zip"} {
				p := escaped(t, modPath, want.Version+ext)
				a, b := mustFetch(t, src, p), mustFetch(t, httpsSrc, p)
				if ext == ".zip" {
					if ha, hb := zipHash(t, a), zipHash(t, b); ha != hb {
						t.Errorf("%s over ssh hashes %s, over https %s", p, ha, hb)
					}
				} else if !bytes.Equal(a, b) {
					t.Errorf("%s over ssh = %q, over https %q", p, a, b)
				}
			}
		}
		list := mustFetch(t, src, escaped(t, auth, "list"))
		if got := strings.Fields(string(list)); len(got) != 4 {
			t.Errorf("list over ssh = %q, want the 4 tags", got)
		}
		rep, err := src.Test(t.Context(), "corp.example.com/platform/auth")
		if err != nil || !rep.OK() {
			t.Errorf("Test over ssh = %+v, %v; want every check passed", rep, err)
		}
	})

	t.Run("WrongKey", func(t *testing.T) {
		src := newSSH(t, git.Credentials{SSHKeyFile: sshd.OtherKeyFile, SSHKnownHostsFile: sshd.KnownHostsFile})
		for _, file := range []string{"list", "v1.0.0.zip"} {
			_, err := fetch(t, src, escaped(t, host+"/platform/auth", file))
			if !errors.Is(err, git.ErrAuthentication) || !errors.Is(err, upstream.ErrUnavailable) {
				t.Fatalf("Fetch %s with a key sshd does not accept = %v, want ErrAuthentication", file, err)
			}
			if msg := err.Error(); !strings.Contains(msg, "authentication rejected") || !strings.Contains(msg, "Permission denied (publickey)") {
				t.Errorf("error %q does not say that the key was rejected", msg)
			}
		}
		rep, err := src.Test(t.Context(), "corp.example.com/platform/auth")
		if err != nil || rep.OK() || !strings.Contains(reportText(rep), "credentials: authentication rejected") {
			t.Errorf("Test with a wrong key = %s, %v; want a failed credentials check", reportText(rep), err)
		}
	})

	t.Run("UnknownHostKey", func(t *testing.T) {
		empty := filepath.Join(t.TempDir(), "known_hosts")
		if err := os.WriteFile(empty, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		src := newSSH(t, git.Credentials{SSHKeyFile: sshd.KeyFile, SSHKnownHostsFile: empty})
		_, err := fetch(t, src, escaped(t, host+"/platform/auth", "list"))
		if !errors.Is(err, upstream.ErrUnavailable) || errors.Is(err, git.ErrAuthentication) {
			t.Fatalf("Fetch from an unknown host = %v, want ErrUnavailable and not an authentication error", err)
		}
		if msg := err.Error(); !strings.Contains(msg, "host key is not trusted") || !strings.Contains(msg, "ssh_known_hosts_file") {
			t.Errorf("error %q does not say how to trust the host", msg)
		}
		// A different host key under the server's name is refused too.
		other, err := os.ReadFile(sshd.OtherKeyFile + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		fields := strings.Fields(string(other))
		line := "[127.0.0.1]:" + sshd.Addr[strings.LastIndex(sshd.Addr, ":")+1:] + " " + fields[0] + " " + fields[1] + "\n"
		if err := os.WriteFile(empty, []byte(line), 0o600); err != nil {
			t.Fatal(err)
		}
		src = newSSH(t, git.Credentials{SSHKeyFile: sshd.KeyFile, SSHKnownHostsFile: empty})
		if _, err := fetch(t, src, escaped(t, host+"/platform/auth", "list")); err == nil || !strings.Contains(err.Error(), "host key is not trusted") {
			t.Errorf("Fetch from a host presenting another key = %v, want the host key refused", err)
		}
	})

	t.Run("NoSuchRepository", func(t *testing.T) {
		src := newSSH(t, good)
		_, err := fetch(t, src, escaped(t, host+"/platform/nope", "list"))
		if !isNotExist(err) {
			t.Fatalf("Fetch of a missing repository over ssh = %v, want fs.ErrNotExist", err)
		}
		if !strings.Contains(err.Error(), "no such repository") {
			t.Errorf("error %q does not say the repository is missing", err)
		}
	})
	if t.Failed() {
		t.Logf("sshd log:\n%s", sshd.Log())
	}
}

// reportText renders a Report's checks as "name: detail" lines.
func reportText(rep git.Report) string {
	var b strings.Builder
	for _, c := range rep.Checks {
		b.WriteString(c.Name + ": " + c.Detail + "\n")
	}
	return b.String()
}
