package auth

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

func TestAdminHandler(t *testing.T) {
	ta := newTestAuth(t, Config{Anonymous: true, AnonymousScopes: mustScopes(t, "read"), Tokens: true})
	var mu sync.Mutex
	var actions []string
	ta.onAdmin = func(ctx context.Context, action, detail string) {
		mu.Lock()
		defer mu.Unlock()
		actions = append(actions, FromContext(ctx).Name+" "+action+" "+detail)
	}
	adminToken, _ := createToken(t, ta.tokens, "platform", "admin")
	readToken, _ := createToken(t, ta.tokens, "reader", "read")
	srv := httptest.NewServer(ta.Middleware(ta.AdminHandler(ta.tokens)))
	t.Cleanup(srv.Close)

	call := func(method, path, token, contentType, body string) (int, http.Header, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(data)
	}

	// Who may use it.
	status, hdr, body := call("GET", "/admin/tokens", "", "", "")
	if status != 401 || hdr.Get("WWW-Authenticate") != Challenge || !strings.Contains(body, `"error"`) {
		t.Errorf("anonymous GET: %d %q %q, want 401 with a challenge", status, hdr.Get("WWW-Authenticate"), body)
	}
	status, _, body = call("GET", "/admin/tokens", readToken, "", "")
	if status != 403 || !strings.Contains(body, `token \"reader\" may not administer modgate`) {
		t.Errorf("read token GET: %d %s, want 403", status, body)
	}

	// Create.
	status, _, body = call("POST", "/admin/tokens", adminToken, "application/json",
		`{"name": "ci", "scopes": ["read:corp.example.com/*"], "expires": "90d"}`)
	if status != http.StatusCreated {
		t.Fatalf("POST: %d %s, want 201", status, body)
	}
	var created struct {
		ID      string   `json:"id"`
		Token   string   `json:"token"`
		Scopes  []string `json:"scopes"`
		Expires string   `json:"expires"`
	}
	if err := json.Unmarshal([]byte(body), &created); err != nil {
		t.Fatal(err)
	}
	if created.Scopes[0] != "read:corp.example.com/*" || created.Expires != "2026-05-30T12:00:00Z" {
		t.Errorf("POST answered %s", body)
	}
	if tok, err := ta.tokens.Authenticate(created.Token); err != nil || tok.ID != created.ID {
		t.Fatalf("created token: Authenticate = %+v, %v", tok, err)
	}

	for _, tt := range []struct {
		name, contentType, body string
		status                  int
		want                    string
	}{
		{"wrong content type", "text/plain", `{"name": "x", "scopes": ["read"]}`, 415, "application/json"},
		{"unknown field", "application/json", `{"name": "x", "scopes": ["read"], "admin": true}`, 400, "unknown field"},
		{"bad scope", "application/json", `{"name": "x", "scopes": ["write:x"]}`, 400, "unknown permission"},
		{"bad expiry", "application/json", `{"name": "x", "scopes": ["read"], "expires": "yesterday"}`, 400, "expiry"},
		{"duplicate name", "application/json", `{"name": "ci", "scopes": ["read"]}`, 400, "already exists"},
	} {
		status, _, body := call("POST", "/admin/tokens", adminToken, tt.contentType, tt.body)
		if status != tt.status || !strings.Contains(body, tt.want) {
			t.Errorf("POST with %s: %d %s, want %d containing %q", tt.name, status, body, tt.status, tt.want)
		}
	}

	// List: every token, no secret, no hash.
	status, _, body = call("GET", "/admin/tokens", adminToken, "", "")
	if status != 200 || strings.Count(body, `"id"`) != 3 || strings.Contains(body, created.Token[20:]) || strings.Contains(body, "sha256") {
		t.Errorf("GET: %d %s, want three tokens without secrets", status, body)
	}

	// Revoke.
	status, _, body = call("DELETE", "/admin/tokens/"+created.ID, adminToken, "", "")
	if status != 200 || !strings.Contains(body, `"name": "ci"`) {
		t.Errorf("DELETE: %d %s", status, body)
	}
	if _, err := ta.tokens.Authenticate(created.Token); err == nil {
		t.Error("revoked token still authenticates")
	}
	status, _, _ = call("DELETE", "/admin/tokens/"+created.ID, adminToken, "", "")
	if status != 404 {
		t.Errorf("DELETE of a revoked token: %d, want 404", status)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(actions) != 2 ||
		!strings.HasPrefix(actions[0], "platform token.create id="+created.ID+" name=ci scopes=read:corp.example.com/* expires=2026-05-30T12:00:00Z") ||
		!strings.HasPrefix(actions[1], "platform token.revoke id="+created.ID) {
		t.Errorf("OnAdminAction saw %q", actions)
	}
}
