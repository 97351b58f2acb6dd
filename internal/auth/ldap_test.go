package auth

import (
	"strings"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/testenv"
)

// ldapAuth is an Authenticator checking passwords against the test
// directory: search-then-bind over LDAPS, or direct bind over StartTLS.
func ldapAuth(t *testing.T, dir *testenv.LDAPServer, direct bool) *testAuth {
	t.Helper()
	read, _ := ParseScope("read:corp.example.com/*")
	lc := &LDAPConfig{
		URL:          dir.LDAPSURL,
		TLS:          dir.TLSConfig(),
		BindDN:       dir.BindDN,
		BindPassword: dir.BindPassword,
		UserBase:     "ou=people," + dir.Base,
		UserFilter:   "(&(objectClass=inetOrgPerson)(uid={user}))",
		GroupBase:    "ou=groups," + dir.Base,
		GroupFilter:  "(&(objectClass=groupOfNames)(member={dn}))",
		CacheTTL:     time.Minute,
	}
	if direct {
		lc.URL, lc.StartTLS = dir.StartTLSURL, true
		lc.BindDN, lc.BindPassword = "", ""
		lc.UserDNTemplate = "uid={user},ou=people," + dir.Base
	}
	return newTestAuth(t, Config{
		Tokens:          true,
		FailedPerMinute: 1000,
		Groups:          []NamedScopes{{Name: "Developers", Scopes: []Scope{read}}},
		LDAP:            lc,
	})
}

// TestLDAP: against the real slapd, the right password gets the scopes of
// the user's directory groups; a wrong password and an unknown user get
// the same 401; a user in no mapped group gets 403; an injection attempt
// in the user name finds nobody.
func TestLDAP(t *testing.T) {
	dir := testenv.SharedLDAP(t)
	for _, mode := range []struct {
		name   string
		direct bool
	}{{"search then bind over LDAPS", false}, {"direct bind over StartTLS", true}} {
		t.Run(mode.name, func(t *testing.T) {
			ta := ldapAuth(t, dir, mode.direct)
			tests := []struct {
				name, user, password string
				status               int
				body                 string
			}{
				{"in the group", "alice", testenv.LDAPPassword("alice"), 200, "ldap alice 192.0.2.1 read:corp.example.com/*"},
				{"wrong password", "alice", testenv.LDAPPassword("bob"), 401, "modgate: wrong user name or password\n"},
				{"unknown user", "dave", testenv.LDAPPassword("alice"), 401, "modgate: wrong user name or password\n"},
				{"filter injection", "*", testenv.LDAPPassword("alice"), 401, "modgate: wrong user name or password\n"},
				{"filter injection 2", "alice)(uid=*", testenv.LDAPPassword("alice"), 401, "modgate: wrong user name or password\n"},
				{"dn injection", "alice,ou=people", testenv.LDAPPassword("alice"), 401, "modgate: wrong user name or password\n"},
				{"in no mapped group", "bob", testenv.LDAPPassword("bob"), 403, `modgate: user "bob" is in no directory group that gives access to this server` + "\n"},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					w := ta.do(t, request{auth: userBasic(tt.user, tt.password)})
					if w.Code != tt.status || w.Body.String() != tt.body {
						t.Errorf("Basic %s = %d %q, want %d %q\nslapd log:\n%s", tt.user, w.Code, w.Body.String(), tt.status, tt.body, dir.Log())
					}
				})
			}
		})
	}
}

// TestLDAPDirectoryDown: while the directory is down, users whose check
// is not cached get 503 (never 401, never access), a cached success
// holds until its TTL, a wrong password is never let in by the cache;
// when the directory is back, users get in again.
func TestLDAPDirectoryDown(t *testing.T) {
	dir := testenv.SharedLDAP(t)
	ta := ldapAuth(t, dir, false)
	alice := userBasic("alice", testenv.LDAPPassword("alice"))
	if w := ta.do(t, request{auth: alice}); w.Code != 200 {
		t.Fatalf("alice = %d %q, want 200", w.Code, w.Body.String())
	}
	dir.Stop()
	t.Cleanup(func() {
		if err := dir.Start(); err != nil {
			t.Fatal(err)
		}
	})
	if w := ta.do(t, request{auth: alice}); w.Code != 200 {
		t.Errorf("alice (cached) while down = %d %q, want 200", w.Code, w.Body.String())
	}
	for _, cred := range []string{
		userBasic("alice", "wrong"),
		userBasic("carol", testenv.LDAPPassword("carol")),
		userBasic("dave", "anything"),
	} {
		w := ta.do(t, request{auth: cred})
		if w.Code != 503 || !strings.Contains(w.Body.String(), "cannot be reached") {
			t.Errorf("credentials while the directory is down = %d %q, want 503 cannot be reached", w.Code, w.Body.String())
		}
	}
	ta.clock.Advance(2 * time.Minute)
	if w := ta.do(t, request{auth: alice}); w.Code != 503 {
		t.Errorf("alice after the cache expired, directory down = %d %q, want 503", w.Code, w.Body.String())
	}
	if err := dir.Start(); err != nil {
		t.Fatal(err)
	}
	for _, cred := range []string{alice, userBasic("carol", testenv.LDAPPassword("carol"))} {
		if w := ta.do(t, request{auth: cred}); w.Code != 200 {
			t.Errorf("after the directory is back = %d %q, want 200", w.Code, w.Body.String())
		}
	}
	if w := ta.do(t, request{auth: userBasic("alice", "wrong")}); w.Code != 401 {
		t.Errorf("wrong password after a cached success = %d, want 401", w.Code)
	}
}

// TestLDAPConfig: plain LDAP without StartTLS is refused, and one of
// the two bind modes is required.
func TestLDAPConfig(t *testing.T) {
	for _, tt := range []struct {
		cfg  LDAPConfig
		want string
	}{
		{LDAPConfig{URL: "ldap://127.0.0.1:389", UserDNTemplate: "uid={user}"}, "needs StartTLS"},
		{LDAPConfig{URL: "ldaps://127.0.0.1:636", StartTLS: true, UserDNTemplate: "uid={user}"}, "start_tls is for ldap://"},
		{LDAPConfig{URL: "ldaps://127.0.0.1:636"}, "either a service account"},
		{LDAPConfig{URL: "http://127.0.0.1", UserDNTemplate: "uid={user}"}, "want ldaps://"},
	} {
		_, err := New(Config{LDAP: &tt.cfg}, Deps{})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%+v) = %v, want error containing %q", tt.cfg, err, tt.want)
		}
	}
}

// TestLDAPFailuresRateLimited: wrong directory passwords use up the
// address's failure budget (then even the right one waits, 429); the
// directory being down does not.
func TestLDAPFailuresRateLimited(t *testing.T) {
	dir := testenv.SharedLDAP(t)
	ta := ldapAuth(t, dir, false)
	ta.limiter = newFailureLimiter(2)
	for i := range 2 {
		if w := ta.do(t, request{auth: userBasic("alice", "wrong")}); w.Code != 401 {
			t.Fatalf("wrong password #%d = %d, want 401", i+1, w.Code)
		}
	}
	if w := ta.do(t, request{auth: userBasic("alice", testenv.LDAPPassword("alice"))}); w.Code != 429 {
		t.Errorf("right password after 2 failures = %d, want 429", w.Code)
	}

	ta = ldapAuth(t, dir, false)
	ta.limiter = newFailureLimiter(2)
	dir.Stop()
	t.Cleanup(func() {
		if err := dir.Start(); err != nil {
			t.Fatal(err)
		}
	})
	for range 3 {
		if w := ta.do(t, request{auth: userBasic("carol", testenv.LDAPPassword("carol"))}); w.Code != 503 {
			t.Errorf("directory down = %d, want 503", w.Code)
		}
	}
	if err := dir.Start(); err != nil {
		t.Fatal(err)
	}
	if w := ta.do(t, request{auth: userBasic("carol", testenv.LDAPPassword("carol"))}); w.Code != 200 {
		t.Errorf("after the directory is back = %d %q, want 200 (outages use no failure budget)", w.Code, w.Body.String())
	}
}
