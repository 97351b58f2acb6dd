package webhook

import (
	"strings"
	"testing"
)

func TestRepoKey(t *testing.T) {
	tests := []struct {
		name string
		url  string
		want string // "" means an error
	}{
		{"https clone", "https://git.corp.example/platform/auth.git", "git.corp.example/platform/auth"},
		{"web", "https://git.corp.example/platform/auth", "git.corp.example/platform/auth"},
		{"web trailing slash", "https://git.corp.example/platform/auth/", "git.corp.example/platform/auth"},
		{"user, password and port", "https://bot:tok@git.corp.example:8443/platform/auth.git", "git.corp.example/platform/auth"},
		{"ssh URL with port", "ssh://git@git.corp.example:2222/platform/auth.git", "git.corp.example/platform/auth"},
		{"scp-like", "git@git.corp.example:platform/auth.git", "git.corp.example/platform/auth"},
		{"scp-like without user", "git.corp.example:platform/auth", "git.corp.example/platform/auth"},
		{"case folded", "https://Git.Corp.Example/Platform/Auth.git", "git.corp.example/platform/auth"},
		{"nested group", "https://gitlab.corp.example/a/b/c/repo.git", "gitlab.corp.example/a/b/c/repo"},
		{"loopback", "http://127.0.0.1:38211/repos/auth.git", "127.0.0.1/repos/auth"},
		{"no path", "https://git.corp.example/", ""},
		{"no host", "file:///srv/git/auth.git", ""},
		{"garbage", "://", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := RepoKey(tt.url)
			switch {
			case tt.want == "" && err == nil:
				t.Errorf("RepoKey(%q) = %q, want an error", tt.url, got)
			case tt.want != "" && (err != nil || got != tt.want):
				t.Errorf("RepoKey(%q) = %q, %v, want %q", tt.url, got, err, tt.want)
			}
		})
	}
}

func TestRepoKeyRedactsPassword(t *testing.T) {
	_, err := RepoKey("https://bot:hunter2@git.corp.example/")
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("RepoKey error %v shows the password", err)
	}
}

func TestEventMatches(t *testing.T) {
	ev := Event{RepoURLs: []string{"https://gitlab.corp.example/finance/billing.git", "git@gitlab.corp.example:finance/billing.git"}}
	tests := []struct {
		url  string
		want bool
	}{
		{"https://gitlab.corp.example/finance/billing.git", true},
		{"https://gitlab.corp.example/finance/billing", true},
		{"ssh://git@gitlab.corp.example/finance/billing.git", true},
		{"https://gitlab.corp.example/finance/billing-v2.git", false},
		{"https://gitlab.corp.example/finance/billing/sub.git", false},
		{"https://git.corp.example/finance/billing.git", false},
		{"not a url", false},
	}
	for _, tt := range tests {
		if got := ev.Matches(tt.url); got != tt.want {
			t.Errorf("Matches(%q) = %v, want %v", tt.url, got, tt.want)
		}
	}
}
