package git

import (
	"errors"
	"io/fs"
	"maps"
	"strings"
	"testing"
)

func pkt(s string) string {
	const hex = "0123456789abcdef"
	n := len(s) + 4
	return string([]byte{hex[n>>12&15], hex[n>>8&15], hex[n>>4&15], hex[n&15]}) + s
}

func TestParseAdvertisement(t *testing.T) {
	h := func(c byte) string { return strings.Repeat(string(c), 40) }
	tests := []struct {
		name    string
		in      string
		want    refMap
		wantErr bool
	}{
		{
			name: "refs with peeled annotated tag",
			in: pkt("# service=git-upload-pack\n") + "0000" +
				pkt(h('a')+" HEAD\x00multi_ack symref=HEAD:refs/heads/main\n") +
				pkt(h('a')+" refs/heads/main\n") +
				pkt(h('b')+" refs/tags/v1.0.0\n") +
				pkt(h('c')+" refs/tags/v1.0.0^{}\n") +
				pkt(h('d')+" refs/pull/1/head\n") + "0000",
			want: refMap{"HEAD": h('a'), "refs/heads/main": h('a'), "refs/tags/v1.0.0": h('c')},
		},
		{
			name: "empty repository",
			in:   pkt("# service=git-upload-pack\n") + "0000" + pkt(strings.Repeat("0", 40)+" capabilities^{}\x00agent=git\n") + "0000",
			want: refMap{},
		},
		{name: "server error", in: pkt("ERR access denied\n"), wantErr: true},
		{name: "truncated", in: pkt("# service=git-upload-pack\n") + "0000" + pkt(h('a')+" HEAD\n"), wantErr: true},
		{name: "garbage", in: "<html>login</html>", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseAdvertisement(strings.NewReader(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseAdvertisement: error %v, want error %v", err, tt.wantErr)
			}
			if !tt.wantErr && !maps.Equal(got, tt.want) {
				t.Errorf("parseAdvertisement = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRepoKey(t *testing.T) {
	want := "git.corp.example/platform/auth"
	for _, in := range []string{
		"https://git.corp.example/platform/auth.git",
		"https://git.corp.example/platform/auth",
		"https://git.corp.example/platform/auth/",
		"https://GIT.corp.example:8443/Platform/Auth.git",
		"ssh://git@git.corp.example:2222/platform/auth.git",
		"git@git.corp.example:platform/auth.git",
		"git.corp.example/platform/auth",
	} {
		if got := repoKey(in); got != want {
			t.Errorf("repoKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseMetaGoImports(t *testing.T) {
	page := `<!DOCTYPE html><html><head>
<meta name="go-import" content="corp.example.com/a git https://git.corp.example/a.git">
<meta name="go-import" content="corp.example.com/b mod https://proxy.corp.example">
<meta name="go-import" content="corp.example.com/c git https://git.corp.example/c.git sub/dir">
<meta name="description" content="x y z">
</head><body><meta name="go-import" content="corp.example.com/late git https://x/late.git"></body></html>`
	got, err := parseMetaGoImports(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	want := []metaImport{
		{prefix: "corp.example.com/a", vcs: "git", repoRoot: "https://git.corp.example/a.git"},
		{prefix: "corp.example.com/c", vcs: "git", repoRoot: "https://git.corp.example/c.git", subdir: "sub/dir"},
	}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("parseMetaGoImports = %+v, want %+v", got, want)
	}
}

func TestTemplateRoot(t *testing.T) {
	s := &Source{cfg: Config{Patterns: []string{"corp.example.com/tools", "corp.example.com/*/*"}}}
	tests := []struct {
		name, module, root string
		ok                 bool
	}{
		{"exact pattern", "corp.example.com/tools", "corp.example.com/tools", true},
		{"under an exact pattern", "corp.example.com/tools/v2", "corp.example.com/tools", true},
		{"group and project", "corp.example.com/platform/auth", "corp.example.com/platform/auth", true},
		{"subdirectory and major", "corp.example.com/platform/auth/sub/v3", "corp.example.com/platform/auth", true},
		{"too short", "corp.example.com/platform", "", false},
		{"other host", "example.com/platform/auth", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root, ok := s.templateRoot(tt.module)
			if root != tt.root || ok != tt.ok {
				t.Errorf("templateRoot(%q) = %q, %v; want %q, %v", tt.module, root, ok, tt.root, tt.ok)
			}
		})
	}
	if got := expandTemplate("https://git.corp.example/{path}.git#{root}", "corp.example.com/platform/auth"); got != "https://git.corp.example/platform/auth.git#corp.example.com/platform/auth" {
		t.Errorf("expandTemplate = %q", got)
	}
}

func TestSplitProtocolPath(t *testing.T) {
	tests := []struct {
		in, mod, file string
		ok            bool
	}{
		{"corp.example.com/!a/@v/list", "corp.example.com/!a", "list", true},
		{"corp.example.com/a/@latest", "corp.example.com/a", "latest", true},
		{"corp.example.com/a/@v/v1.0.0.zip", "corp.example.com/a", "v1.0.0.zip", true},
		{"corp.example.com/a/@v/main.info", "corp.example.com/a", "main.info", true},
		{"corp.example.com/a/@v/v1.0.0.tar", "", "", false},
		{"corp.example.com/a/@v/x/y.info", "", "", false},
		{"sumdb/sum.example.com/latest", "", "", false},
	}
	for _, tt := range tests {
		mod, file, err := splitProtocolPath(tt.in)
		if (err == nil) != tt.ok || mod != tt.mod || file != tt.file {
			t.Errorf("splitProtocolPath(%q) = %q, %q, %v; want %q, %q, ok %v", tt.in, mod, file, err, tt.mod, tt.file, tt.ok)
		}
		if err != nil && !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("splitProtocolPath(%q) error %v does not match fs.ErrInvalid", tt.in, err)
		}
	}
}

func TestNewChecksConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		says string
	}{
		{"no name", Config{Patterns: []string{"corp.example.com"}, Dir: t.TempDir()}, "name is required"},
		{"no patterns", Config{Name: "x", Dir: t.TempDir()}, "pattern"},
		{"no dir", Config{Name: "x", Patterns: []string{"corp.example.com"}}, "dir is required"},
		{"credentials in URL", Config{Name: "x", Patterns: []string{"a.example"}, Dir: t.TempDir(), URL: "https://u:pw@git.example/{path}"}, "credentials belong"},
		{"bad scheme", Config{Name: "x", Patterns: []string{"a.example"}, Dir: t.TempDir(), URL: "ftp://git.example/{path}"}, `scheme "ftp"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.says) {
				t.Errorf("New = %v, want an error saying %q", err, tt.says)
			}
			if err != nil && strings.Contains(err.Error(), "pw@") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
	for _, u := range []string{"https://git.corp.example/{path}.git", "ssh://git@git.corp.example/{path}.git", "git@git.corp.example:{path}.git", "file:///srv/git/{path}.git"} {
		if _, err := New(Config{Name: "x", Patterns: []string{"a.example"}, Dir: t.TempDir(), URL: u}); err != nil {
			t.Errorf("New with URL %q: %v", u, err)
		}
	}
}

func TestAuthEnvKeepsSecretsOffTheCommandLine(t *testing.T) {
	env := authEnv("https://git.corp.example/", Credentials{Password: "tok"})
	joined := strings.Join(env, "\n")
	if !strings.Contains(joined, "GIT_CONFIG_KEY_1=http.https://git.corp.example/.extraHeader") ||
		!strings.Contains(joined, "GIT_CONFIG_VALUE_1=Authorization: Basic "+basicToken(Credentials{Username: "git", Password: "tok"})) ||
		!strings.Contains(joined, "GIT_CONFIG_COUNT=2") || !strings.Contains(joined, "GIT_CONFIG_KEY_0=credential.helper") {
		t.Errorf("authEnv = %q", env)
	}
	r := &runner{secrets: []string{"tok", basicToken(Credentials{Password: "tok"})}}
	if got := r.trim("fatal: Authorization: Basic " + basicToken(Credentials{Password: "tok"}) + " tok\nline two"); strings.Contains(got, "tok") || strings.Contains(got, "\n") {
		t.Errorf("trim = %q, want secrets redacted on one line", got)
	}
}
