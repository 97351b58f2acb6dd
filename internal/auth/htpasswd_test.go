package auth

import (
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// bcryptLine is an htpasswd line for user with password at cost.
func bcryptLine(t *testing.T, user, password string, cost int) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		t.Fatal(err)
	}
	return user + ":" + string(h) + "\n"
}

// writeFileAtomic replaces path the way editors and htpasswd do.
func writeFileAtomic(t *testing.T, path, data string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func userBasic(user, password string) string {
	r, _ := http.NewRequest("GET", "/", nil)
	r.SetBasicAuth(user, password)
	return r.Header.Get("Authorization")
}

func htpasswdConfig(t *testing.T, file string) Config {
	t.Helper()
	read, _ := ParseScope("read:corp.example.com/*")
	publish, _ := ParseScope("publish:corp.example.com/tools")
	return Config{
		Tokens: true,
		Groups: []NamedScopes{{Name: "developers", Scopes: []Scope{read}}},
		HTPasswd: &HTPasswdConfig{File: file, Users: []UserScopes{
			{Name: "alice", Groups: []string{"developers"}},
			{Name: "bob", Scopes: []Scope{publish}},
		}},
		FailedPerMinute: 100,
	}
}

// TestHTPasswdUsers: bcrypt users get their scopes directly or through
// groups; a wrong password and an unknown user get the same answer; a
// changed file is read again; a broken edit keeps the previous users.
func TestHTPasswdUsers(t *testing.T) {
	file := filepath.Join(t.TempDir(), "htpasswd")
	writeFileAtomic(t, file, "# users\n"+bcryptLine(t, "alice", "alice-pw", bcrypt.MinCost)+bcryptLine(t, "bob", "bob-pw", bcrypt.MinCost)+bcryptLine(t, "carol", "carol-pw", bcrypt.MinCost))
	ta := newTestAuth(t, htpasswdConfig(t, file))

	tests := []struct {
		name, user, password string
		status               int
		body                 string
	}{
		{"group scopes", "alice", "alice-pw", 200, "htpasswd alice 192.0.2.1 read:corp.example.com/*"},
		{"own scopes", "bob", "bob-pw", 200, "htpasswd bob 192.0.2.1 publish:corp.example.com/tools"},
		{"listed in no config", "carol", "carol-pw", 200, "htpasswd carol 192.0.2.1 "},
		{"wrong password", "alice", "bob-pw", 401, "modgate: wrong user name or password\n"},
		{"unknown user", "mallory", "alice-pw", 401, "modgate: wrong user name or password\n"},
		{"user name case", "Alice", "alice-pw", 401, "modgate: wrong user name or password\n"},
		{"control character", "ali\x01ce", "alice-pw", 401, "modgate: wrong user name or password\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := ta.do(t, request{auth: userBasic(tt.user, tt.password)})
			if w.Code != tt.status || w.Body.String() != tt.body {
				t.Errorf("Basic %s:%s = %d %q, want %d %q", tt.user, tt.password, w.Code, w.Body.String(), tt.status, tt.body)
			}
		})
	}

	// A new password works with the next request; the old one does not.
	writeFileAtomic(t, file, bcryptLine(t, "alice", "new-pw", bcrypt.MinCost))
	if w := ta.do(t, request{auth: userBasic("alice", "alice-pw")}); w.Code != 401 {
		t.Errorf("old password after the file changed = %d, want 401", w.Code)
	}
	if w := ta.do(t, request{auth: userBasic("alice", "new-pw")}); w.Code != 200 {
		t.Errorf("new password after the file changed = %d %q, want 200", w.Code, w.Body.String())
	}
	// A broken edit (a weak hash) keeps the users of the last good read.
	writeFileAtomic(t, file, "alice:$apr1$abcdefgh$0123456789abcdefghijkl\n")
	if w := ta.do(t, request{auth: userBasic("alice", "new-pw")}); w.Code != 200 {
		t.Errorf("password after a broken edit = %d %q, want 200 (previous users kept)", w.Code, w.Body.String())
	}
	if err := ta.htpasswd.loadError(); err == nil || !strings.Contains(err.Error(), "htpasswd:1: user \"alice\": the hash is MD5") {
		t.Errorf("loadError() = %v, want the MD5 line named", err)
	}
}

// TestHTPasswdWeakHashes: a file with anything but bcrypt is refused at
// start, naming each line and scheme.
func TestHTPasswdWeakHashes(t *testing.T) {
	file := filepath.Join(t.TempDir(), "htpasswd")
	writeFileAtomic(t, file, bcryptLine(t, "ok", "pw", bcrypt.MinCost)+
		"md5:$apr1$abcdefgh$0123456789abcdefghijkl\n"+
		"sha:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n"+
		"crypt:abJnggxhB/yWI\n"+
		"plain:password\n"+
		"noseparator\n")
	_, err := New(Config{HTPasswd: &HTPasswdConfig{File: file}}, Deps{})
	if err == nil {
		t.Fatal("New with weak hashes: no error")
	}
	for _, want := range []string{
		`htpasswd:2: user "md5": the hash is MD5; only bcrypt is accepted (create it with htpasswd -B)`,
		`htpasswd:3: user "sha": the hash is SHA-1`,
		`htpasswd:4: user "crypt": the hash is DES crypt`,
		`htpasswd:5: user "plain": the hash is not bcrypt`,
		`htpasswd:6: want user:hash`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("New: error does not contain %q:\n%v", want, err)
		}
	}
	if _, err := New(Config{HTPasswd: &HTPasswdConfig{File: file + ".missing"}}, Deps{}); err == nil {
		t.Error("New with a missing htpasswd file: no error")
	}
}

// TestHTPasswdTiming: an unknown user takes about as long as a wrong
// password (bcrypt work of the same cost), so timing does not reveal who
// exists.
func TestHTPasswdTiming(t *testing.T) {
	file := filepath.Join(t.TempDir(), "htpasswd")
	writeFileAtomic(t, file, bcryptLine(t, "alice", "alice-pw", 7))
	ta := newTestAuth(t, Config{HTPasswd: &HTPasswdConfig{File: file}})
	// Alternate the two, so that a busy moment of the machine hits both.
	var times [2][]time.Duration
	for range 7 {
		for i, user := range []string{"alice", "mallory"} {
			start := time.Now()
			if w := ta.do(t, request{auth: userBasic(user, "guess")}); w.Code != 401 {
				t.Fatalf("Basic %s:guess = %d, want 401", user, w.Code)
			}
			times[i] = append(times[i], time.Since(start))
		}
	}
	median := func(d []time.Duration) time.Duration {
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return d[len(d)/2]
	}
	wrong, unknown := median(times[0]), median(times[1])
	if unknown < wrong/2 || unknown > wrong*2 {
		t.Errorf("median time for an unknown user %v, for a wrong password %v: want them within a factor of 2", unknown, wrong)
	}
}

// TestPasswordFailuresRateLimited: wrong passwords use up the address's
// failure budget like wrong tokens; then even the right one waits (429).
func TestPasswordFailuresRateLimited(t *testing.T) {
	file := filepath.Join(t.TempDir(), "htpasswd")
	writeFileAtomic(t, file, bcryptLine(t, "alice", "alice-pw", bcrypt.MinCost))
	cfg := htpasswdConfig(t, file)
	cfg.FailedPerMinute = 3
	ta := newTestAuth(t, cfg)
	for i := range 3 {
		if w := ta.do(t, request{auth: userBasic("alice", "wrong")}); w.Code != 401 {
			t.Fatalf("wrong password #%d = %d, want 401", i+1, w.Code)
		}
	}
	if w := ta.do(t, request{auth: userBasic("alice", "alice-pw")}); w.Code != 429 {
		t.Errorf("right password after 3 failures = %d, want 429", w.Code)
	}
	if w := ta.do(t, request{remote: "198.51.100.7:1", auth: userBasic("alice", "alice-pw")}); w.Code != 200 {
		t.Errorf("right password from another address = %d, want 200", w.Code)
	}
}
