package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// FuzzLoad feeds arbitrary bytes through Load, Resolve, Validate and YAML.
// None may panic, and whatever Load accepts must survive the round trip
// through YAML (what --print-config prints loads back to the same values).
func FuzzLoad(f *testing.F) {
	if example, err := os.ReadFile("example.yaml"); err == nil {
		f.Add(example)
	}
	for _, seed := range []string{
		"",
		"listen: :3000\n",
		"upstream:\n  goproxy: 'https://u:p@a.example|direct'\n  noproxy: [a, b]\n  retries: 3\n",
		"cache:\n  list_ttl: &x 1m\n  negative_ttl: *x\n",
		"log: {level: debug, format: json}\n",
		"upstream:\n  <<: {retries: 1}\n",
		"listen: [1]\nlisten: 2\n",
		"- a\n- b\n",
		"a: 1\n---\nb: 2\n",
		"server:\n  shutdown_timeout: -5s\n",
		"sumdb:\n  gosumdb: \"sum.test https://sum.test\"\n  nosumdb: ['x[']\n",
		"public_url: \"http://[::1\"\n",
		"listen: !!binary aGVsbG8=\n",
		"upstream: {retries: 99999999999999999999}\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "modgate.yaml")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		env := envOf(map[string]string{"HOME": "/home/gopher"})
		c, err := Load(path, env)
		if err != nil {
			return
		}
		if err := c.Resolve(testGoEnv); err != nil {
			t.Fatalf("Resolve after Load(%q) = %v", data, err)
		}
		_ = c.Validate()
		out, err := c.YAML()
		if err != nil {
			t.Fatalf("YAML() after Load(%q) = %v", data, err)
		}
		if strings.Contains(string(data), "@") {
			return // redaction changes values on purpose
		}
		if err := os.WriteFile(path, out, 0o644); err != nil {
			t.Fatal(err)
		}
		again, err := Load(path, env)
		if err != nil {
			t.Fatalf("Load(YAML()) = %v\ninput:\n%q\nprinted:\n%s", err, data, out)
		}
		if diff := cmp.Diff(c.Effective(), again, ignoreUnexported, cmpIgnoreSources, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("Load(YAML()) mismatch (-want +got):\n%s\ninput:\n%q", diff, data)
		}
	})
}
