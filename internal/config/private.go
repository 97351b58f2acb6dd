package config

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Private is the "private" section: modules served from the company's own
// Git servers. Modules matched by a source's patterns are never requested
// from the public upstreams and never looked up in the public checksum
// database; their first-seen hashes are recorded instead.
type Private struct {
	// GitDir keeps one bare mirror per repository, reused across requests
	// and restarts. Empty means {data_dir}/git.
	GitDir string `yaml:"git_dir"`
	// GitTimeout bounds each Git operation (a fetch, an archive).
	GitTimeout Duration `yaml:"git_timeout"`
	// MaxConcurrentGit bounds Git processes across all sources.
	MaxConcurrentGit int `yaml:"max_concurrent_git"`
	// Webhook authenticates push events (POST /webhook/{gitea|gitlab|github}).
	Webhook Webhook `yaml:"webhook"`
	// Sources are tried in order; the first whose patterns match a module
	// serves it.
	Sources []PrivateSource `yaml:"sources"`
}

// Webhook holds where the webhook secret is read from. The secret itself
// never appears in the configuration.
type Webhook struct {
	SecretEnv  string `yaml:"secret_env"`
	SecretFile string `yaml:"secret_file"`
}

// A PrivateSource maps module path patterns to a Git server.
type PrivateSource struct {
	Name string `yaml:"name"`
	// Patterns use the go command's GOPRIVATE glob syntax. In URL mode the
	// part of a module path a pattern matches is the repository root, so
	// write one * per path element of the repository.
	Patterns []string `yaml:"patterns"`
	// URL is the repository URL template: {root} is the repository root
	// ("corp.example.com/platform/auth"), {path} the root without its host
	// element ("platform/auth").
	URL string `yaml:"url"`
	// Discovery finds repositories through go-import meta tags over HTTPS
	// instead of a template.
	Discovery bool `yaml:"discovery"`
	// Username goes with the password or token (default "git").
	Username     string `yaml:"username"`
	PasswordEnv  string `yaml:"password_env"`
	PasswordFile string `yaml:"password_file"`
	// SSHKeyFile is a private key for ssh:// URLs.
	SSHKeyFile string `yaml:"ssh_key_file"`
	// SSHKnownHostsFile holds the Git server's host keys (known_hosts
	// format) for ssh:// URLs; empty means the user's ~/.ssh/known_hosts.
	SSHKnownHostsFile string `yaml:"ssh_known_hosts_file"`
	// CAFile is a PEM bundle of the certificate authorities that sign the
	// Git server's HTTPS certificate, when not the system's.
	CAFile string `yaml:"ca_file"`
}

// Patterns returns the patterns of every private source, in order.
func (p Private) Patterns() []string {
	var out []string
	for _, s := range p.Sources {
		out = append(out, s.Patterns...)
	}
	return out
}

// Secret reads a secret from the environment variable envName or the file
// fileName (trailing newline trimmed); both empty gives "". getenv nil
// means os.Getenv. Errors name where the secret was looked for, never its
// value.
func Secret(envName, fileName string, getenv func(string) string) (string, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	switch {
	case envName != "":
		v := getenv(envName)
		if v == "" {
			return "", fmt.Errorf("environment variable %s is empty or unset", envName)
		}
		return v, nil
	case fileName != "":
		b, err := os.ReadFile(fileName)
		if err != nil {
			return "", fmt.Errorf("reading secret file: %w", err)
		}
		v := strings.TrimRight(string(b), "\r\n")
		if v == "" {
			return "", fmt.Errorf("secret file %s is empty", fileName)
		}
		return v, nil
	}
	return "", nil
}

var sourceName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// private checks the "private" section.
func (v *validator) private() {
	p := v.c.Private
	if p.GitTimeout.Duration < 0 {
		v.add("private.git_timeout", "", "must not be negative, got %q", p.GitTimeout.String())
	}
	if n := p.MaxConcurrentGit; n < 0 || n > 256 {
		v.add("private.max_concurrent_git", "", "must be between 0 (default 4) and 256, got %d", n)
	}
	if p.Webhook.SecretEnv != "" && p.Webhook.SecretFile != "" {
		v.add("private.webhook", "", "set secret_env or secret_file, not both")
	}
	seen := make(map[string]int)
	const key = "private.sources"
	for i, s := range p.Sources {
		at := fmt.Sprintf("[%d]", i)
		switch {
		case s.Name == "":
			v.add(key, at+".name", "required: a short name such as \"corp-gitlab\", used in logs and `modgate source test NAME`")
		case !sourceName.MatchString(s.Name):
			v.add(key, at+".name", "%q: use lower-case letters, digits, - and _", s.Name)
		default:
			if j, dup := seen[s.Name]; dup {
				v.add(key, at+".name", "%q is also the name of private.sources[%d]; names must be unique", s.Name, j)
			}
			seen[s.Name] = i
		}
		if len(s.Patterns) == 0 {
			v.add(key, at+".patterns", "required: module path patterns such as [\"corp.example.com/*/*\"]")
		}
		v.patternsAt(key, at+".patterns", s.Patterns)
		switch {
		case s.URL != "" && s.Discovery:
			v.add(key, at, "set url or discovery: true, not both")
		case s.URL == "" && !s.Discovery:
			v.add(key, at+".url", "required: a repository URL template such as \"https://git.corp.example/{path}.git\", or set discovery: true")
		case s.URL != "":
			v.repoTemplate(key, at+".url", s)
		}
		if s.PasswordEnv != "" && s.PasswordFile != "" {
			v.add(key, at, "set password_env or password_file, not both")
		}
		if s.SSHKeyFile != "" && (s.PasswordEnv != "" || s.PasswordFile != "") {
			v.add(key, at, "set an ssh_key_file or a password, not both")
		}
		for _, f := range []struct{ name, path string }{{"password_file", s.PasswordFile}, {"ssh_key_file", s.SSHKeyFile}, {"ssh_known_hosts_file", s.SSHKnownHostsFile}, {"ca_file", s.CAFile}} {
			if f.path != "" && !filepath.IsAbs(f.path) {
				v.add(key, at+"."+f.name, "%q is not an absolute path; write the full path", f.path)
			}
		}
	}
}

// repoTemplate checks a source's URL template.
func (v *validator) repoTemplate(key, at string, s PrivateSource) {
	if !strings.Contains(s.URL, "{path}") && !strings.Contains(s.URL, "{root}") {
		v.add(key, at, "%q has neither {path} nor {root}; write where the repository of a module lives, such as \"https://git.corp.example/{path}.git\"", s.URL)
		return
	}
	filled := strings.NewReplacer("{path}", "group/repo", "{root}", "corp.example/group/repo").Replace(s.URL)
	u, err := url.Parse(filled)
	if err != nil {
		v.add(key, at, "%q is not a URL: %v", s.URL, unwrapURLError(err))
		return
	}
	if _, hasPassword := u.User.Password(); hasPassword || u.User != nil && u.Scheme != "ssh" {
		v.add(key, at, "credentials in the URL would be logged; use username and password_env or password_file")
	}
	switch u.Scheme {
	case "https", "http", "file":
		if s.SSHKeyFile != "" {
			v.add(key, at, "ssh_key_file needs an ssh:// URL, got scheme %q", u.Scheme)
		}
		if s.SSHKnownHostsFile != "" {
			v.add(key, at, "ssh_known_hosts_file needs an ssh:// URL, got scheme %q", u.Scheme)
		}
	case "ssh":
		if s.PasswordEnv != "" || s.PasswordFile != "" {
			v.add(key, at, "ssh:// URLs authenticate with ssh_key_file, not a password")
		}
	default:
		v.add(key, at, "scheme %q not supported (want https, http, ssh or file)", u.Scheme)
	}
}
