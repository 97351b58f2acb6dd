package server_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/modgate/modgate/internal/audit"
	"github.com/modgate/modgate/internal/config"
	"github.com/modgate/modgate/internal/testenv"
)

// End-to-end tests of the organisation's own identities through the real
// go command over HTTPS: htpasswd users and LDAP users with .netrc, and
// OIDC ID tokens from a GOAUTH command, as a CI job fetches them. Anonymous
// clients may read only example.com/hello; example.com/greet needs the
// scopes these identities get.

// netrcHome returns a HOME whose .netrc sends user and password to s.
func netrcHome(t *testing.T, s *secure, user, password string) string {
	t.Helper()
	home := t.TempDir()
	if err := testenv.TelemetryOff(home); err != nil {
		t.Fatal(err)
	}
	line := fmt.Sprintf("machine %s login %s password %s\n", strings.TrimPrefix(s.URL, "https://"), user, password)
	if err := os.WriteFile(filepath.Join(home, ".netrc"), []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	return home
}

// goauthHome returns a HOME and the GOAUTH setting of a command that
// prints token as a Bearer header for every URL of s.
func goauthHome(t *testing.T, s *secure, token string) []string {
	t.Helper()
	home := t.TempDir()
	if err := testenv.TelemetryOff(home); err != nil {
		t.Fatal(err)
	}
	tokenFile := writeTemp(t, "id-token", []byte(token), 0o600)
	cmd := writeTemp(t, "ci-token.sh", fmt.Appendf(nil,
		"#!/bin/sh\nprintf '%%s\\n\\n' '%s/'\nprintf 'Authorization: Bearer %%s\\n\\n' \"$(cat %s)\"\n", s.URL, tokenFile), 0o755)
	return []string{"HOME=" + home, "GOAUTH=" + cmd}
}

// expectRefused runs go mod download of mod and checks that it fails
// with every one of wants in its stderr.
func expectRefused(t *testing.T, env []string, mod string, wants ...string) {
	t.Helper()
	stderr := failGo(t, t.TempDir(), env, "mod", "download", mod)
	for _, want := range wants {
		if !strings.Contains(stderr, want) {
			t.Errorf("go mod download %s: stderr does not contain %q:\n%s", mod, want, stderr)
		}
	}
}

// servedRecord is the first audit record of mod's zip being served.
func servedRecord(t *testing.T, s *secure, mod string) audit.Record {
	t.Helper()
	for _, r := range readAuditLog(t, auditDir(s.instance)) {
		if r.Module+"@"+r.Version == mod && r.File == "zip" && (r.Result == audit.ResultHit || r.Result == audit.ResultMiss) {
			return r
		}
	}
	t.Errorf("no audit record of %s served", mod)
	return audit.Record{}
}

// TestIdentityHTPasswd: an htpasswd user in .netrc downloads the modules
// its group may read, and the audit record names the user, the method and
// the group; a wrong password and an unknown user are refused with the
// same 401 line.
func TestIdentityHTPasswd(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	hash, err := bcrypt.GenerateFromPassword([]byte("alice-pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	file := writeTemp(t, "htpasswd", []byte("alice:"+string(hash)+"\n"), 0o600)
	s := startTLS(t, up, func(c *config.Config) {
		c.Auth.Anonymous.Scopes = []string{publicScope}
		c.Auth.Groups = []config.AuthGroup{{Name: "developers", Scopes: []string{"read:example.com/greet"}}}
		c.Auth.HTPasswd = config.AuthHTPasswd{File: file, Users: []config.AuthUser{{Name: "alice", Groups: []string{"developers"}}}}
	})
	greet := up.Module("example.com/greet", "v1.0.0")

	env := s.goEnv(t, up, "HOME="+netrcHome(t, s, "alice", "alice-pw"))
	if got := goDownload(t, env, greet.String()); len(got) != 1 || got[0].Error != "" || got[0].Sum != greet.ZipHash {
		t.Errorf("go mod download %s as alice = %+v, want it downloaded", greet, got)
	}
	for _, cred := range [][2]string{{"alice", "wrong-pw"}, {"mallory", "alice-pw"}} {
		env := s.goEnv(t, up, "HOME="+netrcHome(t, s, cred[0], cred[1]))
		expectRefused(t, env, greet.String(), "401 Unauthorized", "server response: modgate: wrong user name or password")
	}

	s.instance.shutdown(t)
	rec := servedRecord(t, s, greet.String())
	if rec.Identity != "alice" || rec.AuthMethod != "htpasswd" || rec.Grants != "group developers" {
		t.Errorf("audit record of alice's download = %+v, want identity alice, method htpasswd, grants \"group developers\"", rec)
	}
}

// TestIdentityLDAP: a directory user in .netrc downloads what its group
// may read; a user in no mapped group is refused with 403; a wrong
// password with 401; while the directory is down, 503 (and the go
// command says why); when it is back, users get in again.
func TestIdentityLDAP(t *testing.T) {
	dir := testenv.SharedLDAP(t)
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	pwFile := writeTemp(t, "bind-password", []byte(dir.BindPassword+"\n"), 0o600)
	s := startTLS(t, up, func(c *config.Config) {
		c.Auth.Anonymous.Scopes = []string{publicScope}
		c.Auth.Groups = []config.AuthGroup{{Name: "developers", Scopes: []string{"read:example.com/greet"}}}
		c.Auth.LDAP = config.AuthLDAP{
			URL: dir.LDAPSURL, CAFile: dir.CAFile,
			BindDN: dir.BindDN, BindPasswordFile: pwFile,
			UserBase: "ou=people," + dir.Base, UserFilter: "(&(objectClass=inetOrgPerson)(uid={user}))",
			GroupBase: "ou=groups," + dir.Base, GroupFilter: "(&(objectClass=groupOfNames)(member={dn}))",
			CacheTTL: config.Duration{Duration: -time.Second}, // every request asks the directory
		}
	})
	greet := up.Module("example.com/greet", "v1.0.0")
	aliceEnv := s.goEnv(t, up, "HOME="+netrcHome(t, s, "alice", testenv.LDAPPassword("alice")))

	if got := goDownload(t, aliceEnv, greet.String()); len(got) != 1 || got[0].Error != "" || got[0].Sum != greet.ZipHash {
		t.Errorf("go mod download %s as alice = %+v, want it downloaded", greet, got)
	}
	expectRefused(t, s.goEnv(t, up, "HOME="+netrcHome(t, s, "bob", testenv.LDAPPassword("bob"))), greet.String(),
		"403 Forbidden", `user "bob" is in no directory group that gives access to this server`)
	for _, cred := range [][2]string{{"alice", "wrong"}, {"dave", testenv.LDAPPassword("alice")}} {
		expectRefused(t, s.goEnv(t, up, "HOME="+netrcHome(t, s, cred[0], cred[1])), greet.String(),
			"401 Unauthorized", "server response: modgate: wrong user name or password")
	}

	dir.Stop()
	t.Cleanup(func() {
		if err := dir.Start(); err != nil {
			t.Error(err)
		}
	})
	aliceEnv = s.goEnv(t, up, "HOME="+netrcHome(t, s, "alice", testenv.LDAPPassword("alice")))
	expectRefused(t, aliceEnv, greet.String(), "503 Service Unavailable", "cannot be reached, so credentials cannot be checked")
	if err := dir.Start(); err != nil {
		t.Fatal(err)
	}
	aliceEnv = s.goEnv(t, up, "HOME="+netrcHome(t, s, "alice", testenv.LDAPPassword("alice")))
	if got := goDownload(t, aliceEnv, greet.String()); len(got) != 1 || got[0].Error != "" {
		t.Errorf("go mod download %s as alice after the directory is back = %+v, want it downloaded", greet, got)
	}

	s.instance.shutdown(t)
	rec := servedRecord(t, s, greet.String())
	if rec.Identity != "alice" || rec.AuthMethod != "ldap" || rec.Grants != "ldap group developers" || !strings.HasPrefix(rec.Subject, "uid=alice,") {
		t.Errorf("audit record of alice's download = %+v, want identity alice, method ldap, her DN, grants \"ldap group developers\"", rec)
	}
}

// TestIdentityOIDC: a CI job whose GOAUTH command prints its ID token
// downloads what the matching claim rule grants, and the audit record
// names the subject and the rule with the claims that matched; a token
// for another repository gets 403, an expired one 401, each with its
// reason on the go command's stderr.
func TestIdentityOIDC(t *testing.T) {
	is := testenv.NewOIDCIssuer(t)
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	caFile := writeTemp(t, "issuer-ca.pem", is.CA.PEM, 0o644)
	s := startTLS(t, up, func(c *config.Config) {
		c.Auth.Anonymous.Scopes = []string{publicScope}
		c.Auth.OIDC = config.AuthOIDC{CAFile: caFile, Issuers: []config.AuthOIDCIssuer{{
			URL: is.URL, Audience: "modgate-test",
			Rules: []config.AuthClaimRule{{Name: "acme-main",
				Claims: map[string]string{"repository": "acme/*", "ref": "refs/heads/main"},
				Scopes: []string{"read:example.com/greet"}}},
		}}}
	})
	greet := up.Module("example.com/greet", "v1.0.0")
	token := func(repo string, exp time.Time) string {
		return is.Token(t, map[string]any{
			"iss": is.URL, "aud": "modgate-test", "sub": "repo:" + repo + ":ref:refs/heads/main",
			"repository": repo, "ref": "refs/heads/main",
			"iat": time.Now().Unix(), "exp": exp.Unix(),
		})
	}

	env := s.goEnv(t, up, goauthHome(t, s, token("acme/app", time.Now().Add(10*time.Minute)))...)
	if got := goDownload(t, env, greet.String()); len(got) != 1 || got[0].Error != "" || got[0].Sum != greet.ZipHash {
		t.Errorf("go mod download %s with an acme/app token = %+v, want it downloaded", greet, got)
	}
	expectRefused(t, s.goEnv(t, up, goauthHome(t, s, token("evil/app", time.Now().Add(10*time.Minute)))...), greet.String(),
		"403 Forbidden", "matches no claim rule")
	expectRefused(t, s.goEnv(t, up, goauthHome(t, s, token("acme/app", time.Now().Add(-10*time.Minute)))...), greet.String(),
		"401 Unauthorized", "the ID token expired at")
	// The same token as the password of the user "oidc" in .netrc.
	env = s.goEnv(t, up, "HOME="+netrcHome(t, s, "oidc", token("acme/lib", time.Now().Add(10*time.Minute))))
	if got := goDownload(t, env, greet.String()); len(got) != 1 || got[0].Error != "" {
		t.Errorf("go mod download %s with the token in .netrc = %+v, want it downloaded", greet, got)
	}

	s.instance.shutdown(t)
	rec := servedRecord(t, s, greet.String())
	want := "rule acme-main (ref=refs/heads/main, repository=acme/app)"
	if rec.AuthMethod != "oidc" || rec.Issuer != is.URL || rec.Subject != "repo:acme/app:ref:refs/heads/main" || rec.Grants != want {
		t.Errorf("audit record of the CI download = %+v, want method oidc, the issuer, subject repo:acme/app:ref:refs/heads/main, grants %q", rec, want)
	}
}
