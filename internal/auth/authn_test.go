package auth

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
)

// echoIdentity answers with the request's identity:
// "METHOD NAME CLIENTIP SCOPES".
var echoIdentity = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	id := FromContext(r.Context())
	fmt.Fprintf(w, "%s %s %s %s", id.Method, id.Name, id.ClientIP, FormatScopes(id.Scopes))
})

// testAuth is an Authenticator with its token store and clock.
type testAuth struct {
	*Authenticator
	tokens *Tokens
	clock  *fakeClock

	mu      sync.Mutex
	refused []int // statuses reported to OnRefused
}

func newTestAuth(t *testing.T, cfg Config) *testAuth {
	t.Helper()
	ta := &testAuth{clock: newClock()}
	ta.tokens = openTokens(t, t.TempDir(), TokensOptions{Now: ta.clock.Now})
	a, err := New(cfg, Deps{
		Tokens: ta.tokens,
		Now:    ta.clock.Now,
		OnRefused: func(r *http.Request, id Identity, status int, err error) {
			ta.mu.Lock()
			ta.refused = append(ta.refused, status)
			ta.mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ta.Authenticator = a
	return ta
}

// request is one request to the middleware.
type request struct {
	remote  string            // RemoteAddr, default 192.0.2.1:40000
	auth    string            // Authorization header
	headers map[string]string // other headers
}

func (ta *testAuth) do(t *testing.T, req request) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequestWithContext(t.Context(), "GET", "/corp.example.com/lib/@v/list", nil)
	r.RemoteAddr = req.remote
	if r.RemoteAddr == "" {
		r.RemoteAddr = "192.0.2.1:40000"
	}
	if req.auth != "" {
		r.Header.Set("Authorization", req.auth)
	}
	for k, v := range req.headers {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	ta.Middleware(echoIdentity).ServeHTTP(w, r)
	return w
}

func basic(password string) string {
	r, _ := http.NewRequest("GET", "/", nil)
	r.SetBasicAuth("anyone", password)
	return r.Header.Get("Authorization")
}

// checkResponse checks a response's status and that its body contains want.
func checkResponse(t *testing.T, what string, w *httptest.ResponseRecorder, status int, want string) {
	t.Helper()
	if w.Code != status || !strings.Contains(w.Body.String(), want) {
		t.Errorf("%s: %d %q, want %d containing %q", what, w.Code, w.Body.String(), status, want)
	}
}

func TestMiddlewareTokens(t *testing.T) {
	ta := newTestAuth(t, Config{Anonymous: true, AnonymousScopes: mustScopes(t, "read:public.example"), Tokens: true})
	text, tok := createToken(t, ta.tokens, "ci", "read:corp.example.com/*")
	expiring, _, err := ta.tokens.Create("short", mustScopes(t, "read"), ta.clock.Now().Add(1))
	if err != nil {
		t.Fatal(err)
	}
	ta.clock.Advance(1)
	ok := "token ci 192.0.2.1 read:corp.example.com/*"
	tests := []struct {
		name   string
		auth   string
		status int
		want   string
	}{
		{"basic password", basic(text), 200, ok},
		{"bearer", "Bearer " + text, 200, ok},
		{"bearer lower case", "bearer " + text, 200, ok},
		{"anonymous", "", 200, "anonymous anonymous 192.0.2.1 read:public.example"},
		{"wrong token", basic("mgt_" + tok.ID + "_" + strings.Repeat("0", 64)), 401, "modgate: unknown or revoked token"},
		{"not a token", basic("hunter2"), 401, "modgate: not a modgate token"},
		{"empty password", basic(""), 401, "modgate: unsupported Authorization header"},
		{"other scheme", "Digest username=x", 401, "modgate: unsupported Authorization header"},
		{"expired", "Bearer " + expiring, 401, `modgate: token "short" expired at`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := ta.do(t, request{auth: tt.auth})
			checkResponse(t, "GET with "+tt.name, w, tt.status, tt.want)
			if tt.status == 401 {
				if got := w.Header().Get("WWW-Authenticate"); got != Challenge {
					t.Errorf("WWW-Authenticate = %q, want %q", got, Challenge)
				}
				if got := w.Header().Get("Content-Type"); got != "text/plain; charset=utf-8" {
					t.Errorf("Content-Type = %q", got)
				}
				if body := w.Body.String(); strings.Count(body, "\n") != 1 || !strings.HasPrefix(body, "modgate: ") {
					t.Errorf("body %q is not one line starting \"modgate: \"", body)
				}
			}
		})
	}
}

func TestMiddlewareRateLimit(t *testing.T) {
	ta := newTestAuth(t, Config{Anonymous: true, AnonymousScopes: mustScopes(t, "read"), Tokens: true, FailedPerMinute: 3})
	good, _ := createToken(t, ta.tokens, "ci", "read")
	bad := basic("wrong")
	attacker, other := "192.0.2.1:1000", "192.0.2.2:1000"

	for i := range 3 {
		checkResponse(t, fmt.Sprintf("bad attempt %d", i+1), ta.do(t, request{remote: attacker, auth: bad}), 401, "not a modgate token")
	}
	w := ta.do(t, request{remote: attacker, auth: "Bearer " + good})
	checkResponse(t, "good token from the limited address", w, 429, "modgate: too many failed attempts from 192.0.2.1")
	if got := w.Header().Get("Retry-After"); got != "20" {
		t.Errorf("Retry-After = %q, want 20 (3 per minute)", got)
	}
	checkResponse(t, "no credentials from the limited address", ta.do(t, request{remote: attacker}), 200, "anonymous")
	checkResponse(t, "bad token from another address", ta.do(t, request{remote: other, auth: bad}), 401, "not a modgate token")
	checkResponse(t, "good token from another address", ta.do(t, request{remote: other, auth: "Bearer " + good}), 200, "token ci")

	ta.clock.Advance(20e9)
	checkResponse(t, "good token after waiting", ta.do(t, request{remote: attacker, auth: "Bearer " + good}), 200, "token ci")

	// IPv6 clients are limited per /64.
	for range 3 {
		ta.do(t, request{remote: "[2001:db8:1:2::1]:1000", auth: bad})
	}
	checkResponse(t, "same /64", ta.do(t, request{remote: "[2001:db8:1:2::99]:1000", auth: bad}), 429, "too many failed attempts")
	checkResponse(t, "other /64", ta.do(t, request{remote: "[2001:db8:1:3::1]:1000", auth: bad}), 401, "not a modgate token")

	ta.mu.Lock()
	defer ta.mu.Unlock()
	if n := strings.Count(fmt.Sprint(ta.refused), "429"); n != 2 {
		t.Errorf("OnRefused saw statuses %v, want two 429s", ta.refused)
	}
}

func TestMiddlewareTrustedHeader(t *testing.T) {
	cfg := Config{
		Anonymous:           true,
		AnonymousScopes:     mustScopes(t, "read:public.example"),
		Tokens:              true,
		TrustedHeader:       "X-Forwarded-User",
		TrustedProxies:      []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
		HeaderIdentities:    []NamedScopes{{Name: "alice", Scopes: mustScopes(t, "admin")}},
		HeaderDefaultScopes: mustScopes(t, "read:corp.example.com/*"),
	}
	ta := newTestAuth(t, cfg)
	tests := []struct {
		name    string
		remote  string
		headers map[string]string
		auth    string
		status  int
		want    string
	}{
		{"mapped user from proxy", "10.0.0.1:5000", map[string]string{"X-Forwarded-User": "alice"}, "", 200, "header alice 10.0.0.1 admin"},
		{"other user from proxy", "10.0.0.1:5000", map[string]string{"X-Forwarded-User": "bob"}, "", 200, "header bob 10.0.0.1 read:corp.example.com/*"},
		{"header wins over Authorization", "10.0.0.1:5000", map[string]string{"X-Forwarded-User": "bob"}, basic("proxy-password"), 200, "header bob"},
		{"client address from X-Forwarded-For", "10.0.0.1:5000", map[string]string{"X-Forwarded-User": "bob", "X-Forwarded-For": "203.0.113.9, 198.51.100.7, 10.0.0.2"}, "", 200, "header bob 198.51.100.7 "},
		{"proxy without user is anonymous", "10.0.0.1:5000", map[string]string{"X-Forwarded-For": "198.51.100.7"}, "", 200, "anonymous anonymous 198.51.100.7 read:public.example"},
		{"header from a client", "192.0.2.5:5000", map[string]string{"X-Forwarded-User": "alice"}, "", 403, "modgate: header X-Forwarded-User is accepted only from a trusted proxy, and 192.0.2.5 is not one"},
		{"X-Forwarded-For from a client is ignored", "192.0.2.5:5000", map[string]string{"X-Forwarded-For": "10.0.0.1"}, "", 200, "anonymous anonymous 192.0.2.5 "},
		{"empty user", "10.0.0.1:5000", map[string]string{"X-Forwarded-User": " "}, "", 403, "does not hold a user name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkResponse(t, tt.name, ta.do(t, request{remote: tt.remote, headers: tt.headers, auth: tt.auth}), tt.status, tt.want)
		})
	}
}

func TestMiddlewareClientIPs(t *testing.T) {
	ta := newTestAuth(t, Config{
		Anonymous: true,
		Allow:     []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32")},
		Deny:      []netip.Prefix{netip.MustParsePrefix("192.0.2.66/32")},
	})
	tests := []struct {
		remote string
		status int
	}{
		{"192.0.2.1:1", 200},
		{"[::ffff:192.0.2.1]:1", 200},
		{"[2001:db8::5]:1", 200},
		{"192.0.2.66:1", 403},
		{"198.51.100.1:1", 403},
		{"[2001:db9::5]:1", 403},
		{"not-an-address", 403},
	}
	for _, tt := range tests {
		t.Run(tt.remote, func(t *testing.T) {
			w := ta.do(t, request{remote: tt.remote})
			checkResponse(t, "GET from "+tt.remote, w, tt.status, "")
			if tt.status == 403 && !strings.Contains(w.Body.String(), "is not allowed") {
				t.Errorf("body %q does not say the address is not allowed", w.Body.String())
			}
		})
	}
}

func TestMiddlewareTokensDisabled(t *testing.T) {
	ta := newTestAuth(t, Config{Anonymous: true})
	text, _ := createToken(t, ta.tokens, "ci", "read")
	checkResponse(t, "token while tokens are disabled", ta.do(t, request{auth: "Bearer " + text}), 401, "modgate: this server does not accept tokens")
	checkResponse(t, "anonymous without anonymous scopes", ta.do(t, request{}), 200, "anonymous anonymous 192.0.2.1 ")
}

func TestNewChecksDeps(t *testing.T) {
	if _, err := New(Config{Tokens: true}, Deps{}); err == nil {
		t.Error("New(tokens enabled, no store) succeeded")
	}
	if _, err := New(Config{TrustedHeader: "X-User"}, Deps{}); err == nil {
		t.Error("New(trusted header, no proxies) succeeded")
	}
}

func TestFromContextWithoutIdentity(t *testing.T) {
	id := FromContext(t.Context())
	if id.Authenticated() || id.Method != MethodAnonymous || len(id.Scopes) != 0 {
		t.Errorf("FromContext(empty) = %+v, want anonymous without scopes", id)
	}
	if !errors.Is(newTestAuth(t, Config{}).Authorize(id, Read, "x.example"), ErrUnauthenticated) {
		t.Error("an absent identity may read")
	}
}
