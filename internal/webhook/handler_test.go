package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const testSecret = "s3cret-for-tests"

// recorder collects the events a Handler accepts.
type recorder struct {
	mu     sync.Mutex
	events []Event
	err    error // returned by onEvent
}

func (rec *recorder) onEvent(ctx context.Context, ev Event) error {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.events = append(rec.events, ev)
	return rec.err
}

func (rec *recorder) calls() []Event {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]Event(nil), rec.events...)
}

func newTestHandler(t *testing.T, maxBody int64) (*Handler, *recorder) {
	t.Helper()
	rec := new(recorder)
	h, err := NewHandler(Config{Secret: []byte(testSecret), MaxBody: maxBody}, rec.onEvent)
	if err != nil {
		t.Fatalf("NewHandler: %v", err)
	}
	return h, rec
}

func readPayload(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// hexMAC returns the hex HMAC-SHA256 of body under secret.
func hexMAC(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// Header sets for each provider, signing body with secret.
func githubHeaders(event, secret string, body []byte) map[string]string {
	return map[string]string{
		"Content-Type": "application/json", "X-GitHub-Event": event, "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
		"X-Hub-Signature-256": "sha256=" + hexMAC(secret, body),
	}
}

func giteaHeaders(event, secret string, body []byte) map[string]string {
	return map[string]string{
		"Content-Type": "application/json", "X-Gitea-Event": event, "X-Gitea-Delivery": "f6266f16-1bf3-46a5-9ea4-602e06ead473",
		"X-Gitea-Signature": hexMAC(secret, body),
		// Gitea sends GitHub's event header too; it must not confuse anything.
		"X-GitHub-Event": event,
	}
}

func gitlabHeaders(event, token string) map[string]string {
	return map[string]string{
		"Content-Type": "application/json", "X-Gitlab-Event": event, "X-Gitlab-Event-UUID": "13792a34-cac6-4fda-95a8-c58e00a3954e",
		"X-Gitlab-Token": token,
	}
}

// post sends a delivery to h at /webhook/{provider} without a ServeMux, so
// the provider comes from the last path element.
func post(t *testing.T, h http.Handler, provider string, headers map[string]string, body []byte) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/webhook/"+provider, bytes.NewReader(body))
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	checkBody(t, w)
	return w
}

// checkBody checks that an answer is one text line starting "modgate: ".
func checkBody(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	body := w.Body.String()
	if !strings.HasPrefix(body, "modgate: ") || strings.Count(body, "\n") != 1 || !strings.HasSuffix(body, "\n") {
		t.Errorf("body %q is not one line starting \"modgate: \"", body)
	}
	if ct := w.Header().Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Errorf("Content-Type = %q, want text/plain; charset=utf-8", ct)
	}
}

func TestAcceptedEvents(t *testing.T) {
	githubURLs := []string{"https://ghe.corp.example/platform/auth.git", "git@ghe.corp.example:platform/auth.git", "https://ghe.corp.example/platform/auth"}
	gitlabURLs := []string{"https://gitlab.corp.example/finance/billing.git", "git@gitlab.corp.example:finance/billing.git", "https://gitlab.corp.example/finance/billing"}
	tests := []struct {
		name     string
		provider string
		file     string
		headers  func(body []byte) map[string]string
		form     bool // send as application/x-www-form-urlencoded payload=...
		want     Event
	}{
		{
			name: "github push tag", provider: "github", file: "github-push-tag.json",
			headers: func(b []byte) map[string]string { return githubHeaders("push", testSecret, b) },
			want: Event{Provider: "github", RepoURLs: githubURLs, Ref: "refs/tags/v1.2.0", Tag: "v1.2.0",
				After: "9a1c3b5e7d2f4a6c8e0b1d3f5a7c9e1b3d5f7a9c", Delivery: "72d3162e-cc78-11e3-81ab-4c9367dc0958"},
		},
		{
			name: "github push tag as form", provider: "github", file: "github-push-tag.json", form: true,
			headers: func(b []byte) map[string]string { return githubHeaders("push", testSecret, b) },
			want: Event{Provider: "github", RepoURLs: githubURLs, Ref: "refs/tags/v1.2.0", Tag: "v1.2.0",
				After: "9a1c3b5e7d2f4a6c8e0b1d3f5a7c9e1b3d5f7a9c", Delivery: "72d3162e-cc78-11e3-81ab-4c9367dc0958"},
		},
		{
			name: "github create tag", provider: "github", file: "github-create-tag.json",
			headers: func(b []byte) map[string]string { return githubHeaders("create", testSecret, b) },
			want: Event{Provider: "github", RepoURLs: githubURLs, Ref: "refs/tags/v1.3.0", Tag: "v1.3.0",
				Delivery: "72d3162e-cc78-11e3-81ab-4c9367dc0958"},
		},
		{
			name: "github push deleting a branch", provider: "github", file: "github-push-branch-delete.json",
			headers: func(b []byte) map[string]string { return githubHeaders("push", testSecret, b) },
			want: Event{Provider: "github", RepoURLs: githubURLs, Ref: "refs/heads/feature/x", Deleted: true,
				Delivery: "72d3162e-cc78-11e3-81ab-4c9367dc0958"},
		},
		{
			name: "gitea push tag of a subdirectory module", provider: "gitea", file: "gitea-push-tag.json",
			headers: func(b []byte) map[string]string { return giteaHeaders("push", testSecret, b) },
			want: Event{Provider: "gitea",
				RepoURLs: []string{"https://git.corp.example/platform/monorepo.git", "ssh://git@git.corp.example:2222/platform/monorepo.git", "https://git.corp.example/platform/monorepo"},
				Ref:      "refs/tags/libs/log/v0.3.1", Tag: "libs/log/v0.3.1",
				After: "3f786850e387550fdab836ed7e6dc881de23001b", Delivery: "f6266f16-1bf3-46a5-9ea4-602e06ead473"},
		},
		{
			name: "gitea with only X-Hub-Signature-256", provider: "gitea", file: "gitea-push-tag.json",
			headers: func(b []byte) map[string]string {
				return map[string]string{"X-Gitea-Event": "push", "X-Hub-Signature-256": "sha256=" + hexMAC(testSecret, b)}
			},
			want: Event{Provider: "gitea",
				RepoURLs: []string{"https://git.corp.example/platform/monorepo.git", "ssh://git@git.corp.example:2222/platform/monorepo.git", "https://git.corp.example/platform/monorepo"},
				Ref:      "refs/tags/libs/log/v0.3.1", Tag: "libs/log/v0.3.1", After: "3f786850e387550fdab836ed7e6dc881de23001b"},
		},
		{
			name: "gitea create tag", provider: "gitea", file: "gitea-create-tag.json",
			headers: func(b []byte) map[string]string { return giteaHeaders("create", testSecret, b) },
			want: Event{Provider: "gitea",
				RepoURLs: []string{"https://git.corp.example/platform/log.git", "git@git.corp.example:platform/log.git", "https://git.corp.example/platform/log"},
				Ref:      "refs/tags/v0.4.0", Tag: "v0.4.0", After: "3f786850e387550fdab836ed7e6dc881de23001b",
				Delivery: "f6266f16-1bf3-46a5-9ea4-602e06ead473"},
		},
		{
			name: "gitlab tag push", provider: "gitlab", file: "gitlab-tag-push.json",
			headers: func([]byte) map[string]string { return gitlabHeaders("Tag Push Hook", testSecret) },
			want: Event{Provider: "gitlab", RepoURLs: gitlabURLs, Ref: "refs/tags/v2.0.0", Tag: "v2.0.0",
				After: "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7", Delivery: "13792a34-cac6-4fda-95a8-c58e00a3954e"},
		},
		{
			name: "gitlab branch push", provider: "gitlab", file: "gitlab-push.json",
			headers: func([]byte) map[string]string { return gitlabHeaders("Push Hook", testSecret) },
			want: Event{Provider: "gitlab", RepoURLs: gitlabURLs, Ref: "refs/heads/main",
				After: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7", Delivery: "13792a34-cac6-4fda-95a8-c58e00a3954e"},
		},
		{
			name: "gitlab tag deleted", provider: "gitlab", file: "gitlab-tag-delete.json",
			headers: func([]byte) map[string]string { return gitlabHeaders("Tag Push Hook", testSecret) },
			want: Event{Provider: "gitlab", RepoURLs: gitlabURLs, Ref: "refs/tags/v2.0.0", Tag: "v2.0.0", Deleted: true,
				Delivery: "13792a34-cac6-4fda-95a8-c58e00a3954e"},
		},
		{
			name: "gitlab system hook tag push", provider: "gitlab", file: "gitlab-tag-push.json",
			headers: func([]byte) map[string]string { return gitlabHeaders("System Hook", testSecret) },
			want: Event{Provider: "gitlab", RepoURLs: gitlabURLs, Ref: "refs/tags/v2.0.0", Tag: "v2.0.0",
				After: "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7", Delivery: "13792a34-cac6-4fda-95a8-c58e00a3954e"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, rec := newTestHandler(t, 0)
			body := readPayload(t, tt.file)
			if tt.form {
				body = []byte(url.Values{"payload": {string(body)}}.Encode())
			}
			headers := tt.headers(body)
			if tt.form {
				headers["Content-Type"] = "application/x-www-form-urlencoded"
			}
			w := post(t, h, tt.provider, headers, body)
			if w.Code != http.StatusAccepted {
				t.Fatalf("status = %d (%s), want 202", w.Code, w.Body)
			}
			calls := rec.calls()
			if len(calls) != 1 {
				t.Fatalf("onEvent called %d times, want 1", len(calls))
			}
			if diff := cmp.Diff(tt.want, calls[0]); diff != "" {
				t.Errorf("event (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRefusedDeliveries(t *testing.T) {
	const maxBody = 4096
	githubPush := readPayload(t, "github-push-tag.json")
	giteaPush := readPayload(t, "gitea-push-tag.json")
	gitlabPush := readPayload(t, "gitlab-tag-push.json")
	tampered := bytes.Replace(githubPush, []byte("v1.2.0"), []byte("v9.9.9"), 1)
	giteaTampered := bytes.Replace(giteaPush, []byte("v0.3.1"), []byte("v0.3.2"), 1)
	malformed := []byte(`{"ref": "refs/tags/v1.0.0", "repository": `)
	noURLs := []byte(`{"ref": "refs/tags/v1.0.0", "after": "9a1c3b5e7d2f4a6c8e0b1d3f5a7c9e1b3d5f7a9c", "repository": {"name": "auth"}}`)
	noRef := []byte(`{"after": "9a1c3b5e7d2f4a6c8e0b1d3f5a7c9e1b3d5f7a9c", "repository": {"clone_url": "https://ghe.corp.example/a/b.git"}}`)
	noRefType := []byte(`{"ref":"v1.0.0","repository":{"clone_url":"https://ghe.corp.example/a/b.git"}}`)
	large := append([]byte(`{"ref":"refs/tags/v1.0.0","padding":"`), bytes.Repeat([]byte("x"), maxBody)...)
	large = append(large, `"}`...)

	without := func(m map[string]string, key string) map[string]string {
		delete(m, key)
		return m
	}
	tests := []struct {
		name       string
		provider   string
		headers    map[string]string
		body       []byte
		wantStatus int
		wantBody   string // part of the answer
	}{
		{"github unsigned", "github", without(githubHeaders("push", testSecret, githubPush), "X-Hub-Signature-256"), githubPush, 401, "missing signature header X-Hub-Signature-256"},
		{"github wrong secret", "github", githubHeaders("push", "other-secret", githubPush), githubPush, 401, "does not match"},
		{"github tampered body", "github", githubHeaders("push", testSecret, githubPush), tampered, 401, "does not match"},
		{"github signature without prefix", "github", map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature-256": hexMAC(testSecret, githubPush)}, githubPush, 401, "sha256=<hex>"},
		{"github signature not hex", "github", map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=zz"}, githubPush, 401, "does not match"},
		{"github legacy sha1 header only", "github", map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature": "sha1=0123"}, githubPush, 401, "missing signature"},
		{"github unsigned ping", "github", without(githubHeaders("ping", testSecret, githubPush), "X-Hub-Signature-256"), readPayload(t, "github-ping.json"), 401, "missing signature"},
		{"gitea unsigned", "gitea", without(giteaHeaders("push", testSecret, giteaPush), "X-Gitea-Signature"), giteaPush, 401, "missing signature header X-Gitea-Signature"},
		{"gitea wrong secret", "gitea", giteaHeaders("push", "other-secret", giteaPush), giteaPush, 401, "does not match"},
		{"gitea tampered body", "gitea", giteaHeaders("push", testSecret, giteaPush), giteaTampered, 401, "does not match"},
		{"gitea with GitHub's signature of another body", "gitea", map[string]string{"X-Gitea-Event": "push", "X-Hub-Signature-256": "sha256=" + hexMAC(testSecret, githubPush)}, giteaPush, 401, "does not match"},
		{"gitlab no token", "gitlab", without(gitlabHeaders("Tag Push Hook", testSecret), "X-Gitlab-Token"), gitlabPush, 401, "missing X-Gitlab-Token"},
		{"gitlab wrong token", "gitlab", gitlabHeaders("Tag Push Hook", "other-secret"), gitlabPush, 401, "does not match"},
		{"gitlab token prefix of the secret", "gitlab", gitlabHeaders("Tag Push Hook", testSecret[:4]), gitlabPush, 401, "does not match"},
		{"github malformed JSON", "github", githubHeaders("push", testSecret, malformed), malformed, 400, "invalid github \"push\" payload"},
		{"gitea malformed JSON", "gitea", giteaHeaders("push", testSecret, malformed), malformed, 400, "invalid gitea"},
		{"gitlab malformed JSON", "gitlab", gitlabHeaders("Push Hook", testSecret), malformed, 400, "invalid gitlab"},
		{"no repository URL", "github", githubHeaders("push", testSecret, noURLs), noURLs, 400, "no repository URL"},
		{"no ref", "github", githubHeaders("push", testSecret, noRef), noRef, 400, "no ref"},
		{"create without ref_type", "github", githubHeaders("create", testSecret, noRefType), noRefType, 400, `ref "v1.0.0" is not a full ref`},
		{"unknown provider", "bitbucket", githubHeaders("push", testSecret, githubPush), githubPush, 404, `unknown webhook provider "bitbucket"`},
		{"too large", "github", githubHeaders("push", testSecret, large), large, 413, "larger than 4096 bytes"},
		{"github ping", "github", githubHeaders("ping", testSecret, readPayload(t, "github-ping.json")), readPayload(t, "github-ping.json"), 200, `ignored github event "ping"`},
		{"github issues", "github", githubHeaders("issues", testSecret, githubPush), githubPush, 200, "ignored"},
		{"gitea pull request", "gitea", giteaHeaders("pull_request", testSecret, giteaPush), giteaPush, 200, "ignored"},
		{"gitlab merge request", "gitlab", gitlabHeaders("Merge Request Hook", testSecret), gitlabPush, 200, "ignored"},
		{"gitlab system hook of another kind", "gitlab", gitlabHeaders("System Hook", testSecret), []byte(`{"object_kind":"repository_update","event_name":"repository_update"}`), 200, "ignored"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, rec := newTestHandler(t, maxBody)
			w := post(t, h, tt.provider, tt.headers, tt.body)
			if w.Code != tt.wantStatus {
				t.Errorf("status = %d (%s), want %d", w.Code, w.Body, tt.wantStatus)
			}
			if !strings.Contains(w.Body.String(), tt.wantBody) {
				t.Errorf("body %q does not contain %q", w.Body, tt.wantBody)
			}
			if calls := rec.calls(); len(calls) != 0 {
				t.Errorf("onEvent called with %+v, want no call", calls)
			}
		})
	}
}

func TestMethodNotAllowed(t *testing.T) {
	h, rec := newTestHandler(t, 0)
	req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/webhook/github", nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	checkBody(t, w)
	if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "POST" {
		t.Errorf("GET: status %d, Allow %q, want 405 and POST", w.Code, w.Header().Get("Allow"))
	}
	if len(rec.calls()) != 0 {
		t.Error("onEvent called for a GET")
	}
}

// TestTooLargeWithoutLength covers a chunked body, whose size is known only
// while it is read.
func TestTooLargeWithoutLength(t *testing.T) {
	h, rec := newTestHandler(t, 64)
	body := bytes.Repeat([]byte("x"), 65)
	req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/webhook/github", io.MultiReader(bytes.NewReader(body)))
	req.ContentLength = -1
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-Hub-Signature-256", "sha256="+hexMAC(testSecret, body))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	checkBody(t, w)
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("status = %d (%s), want 413", w.Code, w.Body)
	}
	if len(rec.calls()) != 0 {
		t.Error("onEvent called for an oversized body")
	}
}

func TestOnEventError(t *testing.T) {
	h, rec := newTestHandler(t, 0)
	rec.err = errors.New("refreshing corp.example.com/auth: git fetch: exit status 128\nfatal: could not read")
	body := readPayload(t, "github-push-tag.json")
	w := post(t, h, "github", githubHeaders("push", testSecret, body), body)
	if w.Code != http.StatusInternalServerError {
		t.Errorf("status = %d, want 500", w.Code)
	}
	if want := "modgate: internal error (request id ; details are in the server log)\n"; w.Body.String() != want {
		t.Errorf("body = %q, want %q", w.Body, want)
	}
}

// TestServeMuxRoute mounts the handler the way the server does and sends a
// delivery over HTTP on the loopback interface.
func TestServeMuxRoute(t *testing.T) {
	h, rec := newTestHandler(t, 0)
	mux := http.NewServeMux()
	mux.Handle("POST /webhook/{provider}", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	body := readPayload(t, "gitlab-tag-push.json")
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/webhook/gitlab", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range gitlabHeaders("Tag Push Hook", testSecret) {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted || string(answer) != "modgate: accepted refs/tags/v2.0.0\n" {
		t.Errorf("answer = %d %q, want 202 \"modgate: accepted refs/tags/v2.0.0\\n\"", resp.StatusCode, answer)
	}
	if calls := rec.calls(); len(calls) != 1 || calls[0].Provider != "gitlab" || calls[0].Tag != "v2.0.0" {
		t.Errorf("events = %+v, want one gitlab event for v2.0.0", calls)
	}
}

func TestNewHandlerErrors(t *testing.T) {
	onEvent := func(context.Context, Event) error { return nil }
	if _, err := NewHandler(Config{}, onEvent); err == nil {
		t.Error("NewHandler without a secret succeeded")
	}
	if _, err := NewHandler(Config{Secret: []byte("x")}, nil); err == nil {
		t.Error("NewHandler without onEvent succeeded")
	}
}
