package webhook

import (
	"fmt"
	"net/url"
	"strings"
)

// RepoKey reduces a repository URL to "host/path" in lower case, so that the
// clone, SSH and web URLs of one repository compare equal: the scheme, user,
// password, port, query, trailing slash and ".git" suffix are dropped, and
// the scp-like SSH form "git@host:group/repo.git" is understood. Case is
// folded because the providers treat repository paths case-insensitively;
// at worst two repositories differing only in case both get refreshed.
func RepoKey(rawURL string) (string, error) {
	var host, path string
	if before, after, ok := strings.Cut(rawURL, ":"); ok && !strings.Contains(rawURL, "://") && !strings.Contains(before, "/") {
		// scp-like: [user@]host:path
		host, path = before, after
		if i := strings.LastIndex(before, "@"); i >= 0 {
			host = before[i+1:]
		}
	} else {
		u, err := url.Parse(rawURL)
		if err != nil {
			return "", fmt.Errorf("repository URL: %w", err)
		}
		host, path = u.Hostname(), u.Path
	}
	path = strings.TrimSuffix(strings.Trim(path, "/"), ".git")
	path = strings.Trim(path, "/")
	if host == "" || path == "" {
		return "", fmt.Errorf("repository URL %q has no host or no path", redact(rawURL))
	}
	return strings.ToLower(host + "/" + path), nil
}

// Matches reports whether repoURL, in any form RepoKey understands, names
// the repository of ev.
func (ev Event) Matches(repoURL string) bool {
	want, err := RepoKey(repoURL)
	if err != nil {
		return false
	}
	for _, u := range ev.RepoURLs {
		if got, err := RepoKey(u); err == nil && got == want {
			return true
		}
	}
	return false
}

// redact hides a password in a URL for error messages.
func redact(rawURL string) string {
	if u, err := url.Parse(rawURL); err == nil {
		return u.Redacted()
	}
	return "(unparsable URL)"
}
