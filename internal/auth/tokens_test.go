package auth

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable time source.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func openTokens(t *testing.T, dir string, opts TokensOptions) *Tokens {
	t.Helper()
	tokens, err := OpenTokens(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	return tokens
}

func mustScopes(t *testing.T, list ...string) []Scope {
	t.Helper()
	s, err := ParseScopes(list)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func createToken(t *testing.T, tokens *Tokens, name string, scopes ...string) (string, Token) {
	t.Helper()
	text, tok, err := tokens.Create(name, mustScopes(t, scopes...), time.Time{})
	if err != nil {
		t.Fatalf("Create(%q) = %v", name, err)
	}
	return text, tok
}

func TestTokensCreateAuthenticate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "auth")
	tokens := openTokens(t, dir, TokensOptions{})
	text, tok := createToken(t, tokens, "ci", "read:corp.example.com/*")
	if !strings.HasPrefix(text, "mgt_"+tok.ID+"_") {
		t.Errorf("token text %q does not start with mgt_<id>_", text)
	}
	got, err := tokens.Authenticate(text)
	if err != nil {
		t.Fatalf("Authenticate(new token) = %v", err)
	}
	if got.ID != tok.ID || got.Name != "ci" || FormatScopes(got.Scopes) != "read:corp.example.com/*" {
		t.Errorf("Authenticate = %+v, want %+v", got, tok)
	}

	id, secret, _ := parseToken(text)
	flipped := []byte(secret)
	flipped[0] = map[bool]byte{true: '1', false: '0'}[secret[0] == '0']
	bad := []struct{ name, text string }{
		{"wrong secret", "mgt_" + id + "_" + string(flipped)},
		{"unknown id", "mgt_0000000000000000_" + secret},
		{"no prefix", strings.TrimPrefix(text, "mgt_")},
		{"truncated", text[:len(text)-1]},
		{"upper case", strings.ToUpper(text)},
		{"empty", ""},
	}
	for _, b := range bad {
		if _, err := tokens.Authenticate(b.text); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("%s: Authenticate = %v, want ErrInvalidToken", b.name, err)
		}
	}
}

// TestTokensStoreOnlyHashes checks the file never holds a secret.
func TestTokensStoreOnlyHashes(t *testing.T) {
	dir := t.TempDir()
	tokens := openTokens(t, dir, TokensOptions{})
	text, _ := createToken(t, tokens, "release", "publish:corp.example.com")
	_, secret, _ := parseToken(text)
	data, err := os.ReadFile(filepath.Join(dir, "tokens.json"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), secret) || strings.Contains(string(data), text) {
		t.Errorf("tokens.json contains the secret:\n%s", data)
	}
	if !strings.Contains(string(data), `"sha256"`) || !strings.Contains(string(data), `"release"`) {
		t.Errorf("tokens.json lacks the record:\n%s", data)
	}
	fi, err := os.Stat(filepath.Join(dir, "tokens.json"))
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		t.Errorf("tokens.json mode %v, want no access for group and others", perm)
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, ".tokens-*"))
	if len(leftovers) > 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}
}

// TestTokensSharedBetweenInstances is the server and the token command
// using one directory: each sees the other's changes at its next call.
func TestTokensSharedBetweenInstances(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	var changes []string
	server := openTokens(t, dir, TokensOptions{OnChange: func(c TokenChange) {
		mu.Lock()
		changes = append(changes, c.Action+" "+c.Token.Name)
		mu.Unlock()
	}})
	cli := openTokens(t, dir, TokensOptions{})

	text, _ := createToken(t, cli, "ci", "read")
	if _, err := server.Authenticate(text); err != nil {
		t.Fatalf("server: Authenticate(token created by another instance) = %v", err)
	}
	if _, err := cli.Revoke("ci"); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Authenticate(text); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("server: Authenticate(token revoked by another instance) = %v, want ErrInvalidToken", err)
	}
	// The server's own changes are not reported back to it.
	createToken(t, server, "own", "read")
	if err := server.Reload(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"created ci", "revoked ci"}; !slices.Equal(changes, want) {
		t.Errorf("OnChange saw %q, want %q", changes, want)
	}
	list, err := cli.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Name != "own" {
		t.Errorf("cli: List() = %+v, want the token the server created", list)
	}
}

func TestTokensExpire(t *testing.T) {
	clock := newClock()
	tokens := openTokens(t, t.TempDir(), TokensOptions{Now: clock.Now})
	text, tok, err := tokens.Create("short", mustScopes(t, "read"), clock.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tokens.Authenticate(text); err != nil {
		t.Fatalf("Authenticate before expiry = %v", err)
	}
	clock.Advance(time.Hour)
	got, err := tokens.Authenticate(text)
	if !errors.Is(err, ErrTokenExpired) || errors.Is(err, ErrInvalidToken) {
		t.Fatalf("Authenticate at expiry = %v, want ErrTokenExpired only", err)
	}
	if got.ID != tok.ID || !strings.Contains(err.Error(), `"short" expired at 2026-03-01T13:00:00Z`) {
		t.Errorf("Authenticate at expiry = %+v, %v; want the token and when it expired", got, err)
	}
}

func TestTokensRevoke(t *testing.T) {
	tokens := openTokens(t, t.TempDir(), TokensOptions{})
	textA, a := createToken(t, tokens, "a", "read")
	textB, _ := createToken(t, tokens, "b", "read")

	got, err := tokens.Revoke(a.ID)
	if err != nil || got.Name != "a" {
		t.Fatalf("Revoke(id of a) = %+v, %v", got, err)
	}
	if _, err := tokens.Authenticate(textA); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("Authenticate(revoked) = %v, want ErrInvalidToken", err)
	}
	if _, err := tokens.Authenticate(textB); err != nil {
		t.Errorf("Authenticate(other token) = %v", err)
	}
	if _, err := tokens.Revoke("a"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Revoke(revoked) = %v, want fs.ErrNotExist", err)
	}
	if _, err := tokens.Revoke("b"); err != nil {
		t.Errorf("Revoke(by name) = %v", err)
	}
	// The name is free again.
	createToken(t, tokens, "a", "read")
}

func TestTokensCreateErrors(t *testing.T) {
	clock := newClock()
	tokens := openTokens(t, t.TempDir(), TokensOptions{Now: clock.Now})
	createToken(t, tokens, "taken", "read")
	read := mustScopes(t, "read")
	tests := []struct {
		name    string
		tokName string
		scopes  []Scope
		expires time.Time
		want    string
	}{
		{"empty name", "", read, time.Time{}, "a token needs a name"},
		{"space in name", "my token", read, time.Time{}, `token name "my token": use letters`},
		{"long name", strings.Repeat("x", 65), read, time.Time{}, "longer than 64"},
		{"id-like name", "0123456789abcdef", read, time.Time{}, "looks like a token id"},
		{"duplicate name", "taken", read, time.Time{}, `a token named "taken" already exists`},
		{"no scopes", "x", nil, time.Time{}, "at least one scope"},
		{"past expiry", "x", read, clock.Now().Add(-time.Second), "not in the future"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := tokens.Create(tt.tokName, tt.scopes, tt.expires)
			if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Create(%q) = %v, want ErrInvalidArgument containing %q", tt.tokName, err, tt.want)
			}
		})
	}
}

// TestTokensConcurrentWriters checks the cross-instance lock: no creation
// is lost when two stores write at once.
func TestTokensConcurrentWriters(t *testing.T) {
	dir := t.TempDir()
	stores := []*Tokens{openTokens(t, dir, TokensOptions{}), openTokens(t, dir, TokensOptions{})}
	const perStore = 10
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Go(func() {
			for j := range perStore {
				if _, _, err := s.Create(fmt.Sprintf("t%d-%d", i, j), mustScopes(t, "read"), time.Time{}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	fresh := openTokens(t, dir, TokensOptions{})
	list, err := fresh.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2*perStore {
		t.Errorf("after concurrent creation: %d tokens, want %d", len(list), 2*perStore)
	}
}

func TestOpenTokensBadFile(t *testing.T) {
	tests := []struct{ name, content, want string }{
		{"not json", "{", "unexpected EOF"},
		{"future format", `{"format": 2, "tokens": []}`, "has format 2"},
		{"unknown field", `{"format": 1, "tokens": [], "extra": 1}`, "unknown field"},
		{"bad hash", `{"format": 1, "tokens": [{"id": "0123456789abcdef", "name": "x", "scopes": ["read"], "sha256": "zz"}]}`, "malformed id or hash"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "tokens.json"), []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := OpenTokens(dir, TokensOptions{}); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("OpenTokens = %v, want error containing %q", err, tt.want)
			}
		})
	}
}

func TestParseExpiry(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in      string
		want    time.Time
		wantErr string
	}{
		{in: "", want: time.Time{}},
		{in: "never", want: time.Time{}},
		{in: "90d", want: now.AddDate(0, 0, 90)},
		{in: "36h", want: now.Add(36 * time.Hour)},
		{in: "2027-01-31", want: time.Date(2027, 1, 31, 0, 0, 0, 0, time.UTC)},
		{in: "2026-03-02T10:00:00+02:00", want: time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)},
		{in: "0d", wantErr: "positive number of days"},
		{in: "-5m", wantErr: "not in the future"},
		{in: "2020-01-01", wantErr: "not in the future"},
		{in: "soon", wantErr: `want "never", days`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseExpiry(tt.in, now)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("ParseExpiry(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || !got.Equal(tt.want) {
				t.Errorf("ParseExpiry(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}
