package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestRedacted(t *testing.T) {
	vkey := testVerifierKey(t)
	tests := []struct {
		name   string
		modify func(c *Config)
		check  func(r Config) string // returns the field that must be redacted
		want   string
	}{
		{
			name:   "goproxy password",
			modify: func(c *Config) { c.Upstream.GOPROXY = "https://u:hunter2@a.example/x|https://b.example,direct" },
			check:  func(r Config) string { return r.Upstream.GOPROXY },
			want:   "https://u:xxxxx@a.example/x|https://b.example,direct",
		},
		{
			name:   "goproxy token as user name",
			modify: func(c *Config) { c.Upstream.GOPROXY = "https://hunter2@a.example" },
			check:  func(r Config) string { return r.Upstream.GOPROXY },
			want:   "https://xxxxx@a.example",
		},
		{
			name:   "goproxy entry that is not a URL",
			modify: func(c *Config) { c.Upstream.GOPROXY = "htt ps://u:hunter2@a.example/p" },
			check:  func(r Config) string { return r.Upstream.GOPROXY },
			want:   "htt ps://xxxxx@a.example/p",
		},
		{
			name:   "public_url",
			modify: func(c *Config) { c.PublicURL = "https://u:hunter2@m.example" },
			check:  func(r Config) string { return r.PublicURL },
			want:   "https://u:xxxxx@m.example",
		},
		{
			name:   "sumdb URL",
			modify: func(c *Config) { c.SumDB.GOSUMDB = vkey + " https://u:hunter2@sum.test" },
			check:  func(r Config) string { return r.SumDB.GOSUMDB },
			want:   vkey + " https://u:xxxxx@sum.test",
		},
		{
			name:   "no credentials",
			modify: func(c *Config) { c.Upstream.GOPROXY = "https://a.example,direct" },
			check:  func(r Config) string { return r.Upstream.GOPROXY },
			want:   "https://a.example,direct",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig(t)
			tt.modify(&c)
			orig := c.Clone()
			r := c.Redacted()
			if got := tt.check(r); got != tt.want {
				t.Errorf("Redacted() = %q, want %q", got, tt.want)
			}
			if diff := cmp.Diff(orig, c, ignoreUnexported); diff != "" {
				t.Errorf("Redacted() changed the original (-want +got):\n%s", diff)
			}
			out, err := c.YAML()
			if err != nil {
				t.Fatalf("YAML() = %v", err)
			}
			if strings.Contains(string(out), "hunter2") {
				t.Errorf("YAML() shows a credential:\n%s", out)
			}
		})
	}
}

func TestRedactedDeepCopy(t *testing.T) {
	c := validConfig(t)
	c.Upstream.NoProxy = []string{"a.example"}
	r := c.Redacted()
	r.Upstream.NoProxy[0] = "changed"
	r.Sources["listen"] = "changed"
	if c.Upstream.NoProxy[0] != "a.example" || c.Sources["listen"] != SourceDefault {
		t.Errorf("changing Redacted() changed the original: %v %v", c.Upstream.NoProxy, c.Sources["listen"])
	}
}

func TestYAML(t *testing.T) {
	path := writeConfig(t, "listen: :8080\nupstream:\n  noproxy: [corp.example]\n")
	c, err := Load(path, envOf(map[string]string{"HOME": "/home/gopher", "MODGATE_LOG_LEVEL": "debug"}))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Set("cache.list_ttl", "2m", "flag --list-ttl"); err != nil {
		t.Fatal(err)
	}
	if err := c.Resolve(testGoEnv); err != nil {
		t.Fatal(err)
	}
	out, err := c.YAML()
	if err != nil {
		t.Fatalf("YAML() = %v", err)
	}
	for _, line := range []string{
		"listen: :8080 # config file " + path + ":1",
		"  level: debug # env MODGATE_LOG_LEVEL",
		"  goproxy: https://proxy.test,direct # go env GOPROXY",
		"  noproxy: [corp.example] # config file " + path + ":3",
		"  gosumdb: sum.test # go env GOSUMDB",
		"  list_ttl: 2m # flag --list-ttl",
		"  idle_timeout: 1m # default",
		"  retries: 2 # default",
	} {
		if !strings.Contains(string(out), line+"\n") {
			t.Errorf("YAML() has no line %q:\n%s", line, out)
		}
	}

	// What --print-config prints is a valid configuration file with the
	// same values.
	again, err := Load(writeConfig(t, string(out)), envOf(map[string]string{"HOME": "/elsewhere"}))
	if err != nil {
		t.Fatalf("Load(YAML()) = %v\n%s", err, out)
	}
	if diff := cmp.Diff(c.Effective(), again, ignoreUnexported, cmpIgnoreSources, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Load(YAML()) mismatch (-want +got):\n%s", diff)
	}
}

var cmpIgnoreSources = cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Sources" }, cmp.Ignore())

func TestDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"}, {90 * time.Second, "1m30s"}, {time.Minute, "1m"}, {time.Hour, "1h"},
		{time.Hour + time.Minute, "1h1m"}, {10 * time.Minute, "10m"}, {1500 * time.Millisecond, "1.5s"}, {-time.Minute, "-1m"},
	}
	for _, tt := range tests {
		got := Duration{tt.d}.String()
		if got != tt.want {
			t.Errorf("Duration{%v}.String() = %q, want %q", tt.d, got, tt.want)
		}
		back, err := ParseDuration(got)
		if err != nil || back.Duration != tt.d {
			t.Errorf("ParseDuration(%q) = %v, %v, want %v", got, back, err, tt.d)
		}
	}
}

// TestExampleFileIsDocumented keeps the example next to the code it documents.
func TestExampleFileIsDocumented(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(".", "example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	for i, line := range lines {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") || strings.HasSuffix(trimmed, ":") {
			continue // comments and section headers
		}
		if i == 0 || !strings.HasPrefix(strings.TrimSpace(lines[i-1]), "#") {
			t.Errorf("example.yaml:%d: %q has no comment above it", i+1, trimmed)
		}
	}
}

// TestYAMLShowsDerivedDefaults checks that --print-config shows the value
// in effect of a setting whose empty value stands for a derived default,
// not the empty value.
func TestYAMLShowsDerivedDefaults(t *testing.T) {
	path := writeConfig(t, "data_dir: /srv/modgate\naudit:\n  pseudonymize: true\npolicy:\n  vulndb:\n    url: https://vuln.test\n")
	c, err := Load(path, envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Resolve(testGoEnv); err != nil {
		t.Fatal(err)
	}
	out, err := c.YAML()
	if err != nil {
		t.Fatalf("YAML() = %v", err)
	}
	for _, line := range []string{
		"  dir: /srv/modgate/audit # default",
		"  pseudonym_key_file: /srv/modgate/audit.pseudonym-key # default",
		"  git_dir: /srv/modgate/git # default",
		"  max_concurrent_git: 4 # default",
		"    dir: /srv/modgate/vulndb # default",
	} {
		if !strings.Contains(string(out), line+"\n") {
			t.Errorf("YAML() has no line %q:\n%s", line, out)
		}
	}
	again, err := Load(writeConfig(t, string(out)), envOf(nil))
	if err != nil {
		t.Fatalf("Load(YAML()) = %v\n%s", err, out)
	}
	if diff := cmp.Diff(c.Effective(), again, ignoreUnexported, cmpIgnoreSources, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Load(YAML()) mismatch (-want +got):\n%s", diff)
	}
}
