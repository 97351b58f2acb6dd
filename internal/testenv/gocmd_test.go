package testenv_test

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/modgate/modgate/internal/testenv"
)

// TestGoAgreesOnHashes downloads every fixture with the real go command,
// verified against the Upstream's checksum database, and compares the
// hashes it computed with the ones testenv computed.
func TestGoAgreesOnHashes(t *testing.T) {
	mods := testenv.Fixtures(t)
	up := testenv.NewUpstream(t, mods)
	env := testenv.GoEnv(t, up.URL(), up.VerifierKey())

	args := []string{"mod", "download", "-json"}
	for _, m := range mods {
		args = append(args, m.String())
	}
	stdout, stderr, err := testenv.RunGo(t, t.TempDir(), env, args...)
	if err != nil {
		t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	}

	type download struct{ Path, Version, Error, Sum, GoModSum string }
	got := make(map[string]download)
	dec := json.NewDecoder(strings.NewReader(stdout))
	for {
		var d download
		if err := dec.Decode(&d); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decoding go mod download -json output: %v\n%s", err, stdout)
		}
		got[d.Path+"@"+d.Version] = d
	}
	for _, m := range mods {
		d, ok := got[m.String()]
		if !ok {
			t.Errorf("go mod download -json printed nothing for %s", m)
			continue
		}
		if d.Error != "" || d.Sum != m.ZipHash || d.GoModSum != m.ModHash {
			t.Errorf("go mod download %s: Sum %q, GoModSum %q, Error %q; want %q, %q", m, d.Sum, d.GoModSum, d.Error, m.ZipHash, m.ModHash)
		}
	}

	// The go command found the checksum database through the proxy and
	// looked the modules up there: the hashes were verified, not just computed.
	for _, p := range []string{"/sumdb/sum.test/supported", "/sumdb/sum.test/lookup/example.com/!upper@v1.0.0"} {
		if up.Count(p) == 0 {
			t.Errorf("the go command never requested %s; requests: %q", p, up.Requests())
		}
	}
}

// TestGoRefusesTampering checks that the faults an Upstream injects are
// ones the real go command notices, the way a user would see them.
func TestGoRefusesTampering(t *testing.T) {
	tests := []struct {
		name       string
		fault      func(up *testenv.Upstream)
		wantStderr string // regexp
	}{
		{
			name:       "tampered zip",
			fault:      func(up *testenv.Upstream) { up.SetTamper("example.com/hello", "v1.1.0", true) },
			wantStderr: `(?s)verifying module: checksum mismatch.*SECURITY ERROR`,
		},
		{
			name:       "tampered mod",
			fault:      func(up *testenv.Upstream) { up.SetTamperMod("example.com/hello", "v1.1.0", true) },
			wantStderr: `(?s)verifying go.mod: checksum mismatch.*SECURITY ERROR`,
		},
		{
			name:       "upstream down",
			fault:      func(up *testenv.Upstream) { up.SetDown(true) },
			wantStderr: `503 Service Unavailable\s+server response: upstream down for test`,
		},
		{
			name:       "refused version",
			fault:      func(up *testenv.Upstream) { up.SetStatus("/example.com/hello/@v/v1.1.0", 403) },
			wantStderr: `403 Forbidden\s+server response: /example.com/hello/@v/v1.1.0.info: status 403 forced for test`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := testenv.NewUpstream(t, testenv.Fixtures(t))
			tt.fault(up)
			env := testenv.GoEnv(t, up.URL(), up.VerifierKey())
			stdout, stderr, err := testenv.RunGo(t, t.TempDir(), env, "mod", "download", "example.com/hello@v1.1.0")
			if err == nil || !regexp.MustCompile(tt.wantStderr).MatchString(stderr) {
				t.Errorf("go mod download example.com/hello@v1.1.0 = %v\nstdout:\n%s\nstderr:\n%s\nwant failure matching %q", err, stdout, stderr, tt.wantStderr)
			}
			var exitErr *exec.ExitError
			if err != nil && !errors.As(err, &exitErr) {
				t.Errorf("RunGo error %v does not wrap *exec.ExitError", err)
			}
		})
	}
}

// TestGoBuildsConsumer resolves, lists and builds a consumer project the
// way a developer would, through WriteModule, GoEnv and RunGo.
func TestGoBuildsConsumer(t *testing.T) {
	mods := testenv.Fixtures(t)
	up := testenv.NewUpstream(t, mods)
	env := testenv.GoEnv(t, up.URL(), up.VerifierKey(), "GOCACHE="+testenv.HostGoCache(t))
	dir := filepath.Join(t.TempDir(), "app")
	testenv.WriteModule(t, dir, "module example.com/app\n\ngo 1.21\n\nrequire example.com/greet v1.0.0\n", map[string]string{
		"main.go":          "package main\n\nimport \"example.com/greet\"\n\nfunc main() { println(greet.Greet()) }\n",
		"internal/x/x.go":  "package x\n",
		"testdata/keep.md": "nested files are written too\n",
	})

	steps := []struct {
		args       []string
		wantStdout string
		wantStderr string
	}{
		{[]string{"mod", "tidy"}, "", "go: downloading example.com/greet v1.0.0\ngo: downloading example.com/hello v1.0.0\n"},
		{[]string{"list", "-m", "all"}, "example.com/app\nexample.com/greet v1.0.0\nexample.com/hello v1.0.0\n", ""},
		{[]string{"list", "-m", "-versions", "example.com/hello"}, "example.com/hello v1.0.0 v1.1.0 v1.2.0-rc.1\n", ""},
		{[]string{"list", "-m", "example.com/hello@latest"}, "example.com/hello v1.1.0\n", ""},
		{[]string{"run", "."}, "", "Hello, world. Nice to meet you.\n"},
	}
	for _, s := range steps {
		stdout, stderr, err := testenv.RunGo(t, dir, env, s.args...)
		if err != nil || stdout != s.wantStdout || stderr != s.wantStderr {
			t.Fatalf("go %s = %v\nstdout: %q\nstderr: %q\nwant stdout %q, stderr %q", strings.Join(s.args, " "), err, stdout, stderr, s.wantStdout, s.wantStderr)
		}
	}

	// go.sum holds exactly the hashes testenv computed.
	data, err := os.ReadFile(filepath.Join(dir, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	want := up.Module("example.com/greet", "v1.0.0").GoSum() + up.Module("example.com/hello", "v1.0.0").GoSum()
	if string(data) != want {
		t.Errorf("go.sum after go mod tidy:\n%s\nwant:\n%s", data, want)
	}
}

func TestGoEnv(t *testing.T) {
	// Variables of the calling process that would break hermeticity.
	t.Setenv("GOFLAGS", "-mod=vendor")
	t.Setenv("GONOSUMDB", "*")
	t.Setenv("GOPROXY", "http://192.0.2.1")
	t.Setenv("GOEXPERIMENT", "nosuchexperiment")

	env := testenv.GoEnv(t, "http://127.0.0.1:1", "", "GOCACHE=/shared/cache", "CGO_ENABLED", "GOAUTH=off")
	got := make(map[string]string)
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if _, dup := got[k]; dup {
			t.Errorf("GoEnv sets %s twice", k)
		}
		got[k] = v
	}
	tests := []struct {
		key, want string
	}{
		{"GOPROXY", "http://127.0.0.1:1"},
		{"GOSUMDB", "off"},
		{"GOFLAGS", "-modcacherw"},
		{"GOENV", "off"},
		{"GOTOOLCHAIN", "local"},
		{"GONOSUMDB", ""},
		{"GOPRIVATE", ""},
		{"GONOPROXY", ""},
		{"GOINSECURE", ""},
		{"GOCACHE", "/shared/cache"},
		{"GOAUTH", "off"},
		{"HTTP_PROXY", testenv.DeadProxy},
		{"HTTPS_PROXY", testenv.DeadProxy},
		{"NO_PROXY", ""},
	}
	for _, tt := range tests {
		if v, ok := got[tt.key]; !ok || v != tt.want {
			t.Errorf("GoEnv: %s=%q (set: %v), want %q", tt.key, v, ok, tt.want)
		}
	}
	for _, key := range []string{"GOEXPERIMENT", "CGO_ENABLED"} {
		if v, ok := got[key]; ok {
			t.Errorf("GoEnv sets %s=%q, want it unset", key, v)
		}
	}
	for _, key := range []string{"HOME", "GOPATH", "GOMODCACHE", "GOTMPDIR"} {
		if !filepath.IsAbs(got[key]) || strings.HasPrefix(got[key], os.Getenv("HOME")+"/") {
			t.Errorf("GoEnv: %s=%q, want a fresh temporary directory", key, got[key])
		}
	}
	if path := got["PATH"]; !slices.Contains(filepath.SplitList(path), filepath.Dir(testenv.GoBinary(t))) {
		t.Errorf("GoEnv: PATH=%q does not hold the directory of %s", path, testenv.GoBinary(t))
	}

	// The go command sees the same.
	stdout, stderr, err := testenv.RunGo(t, t.TempDir(), env, "env", "GOFLAGS", "GONOSUMDB", "GOMODCACHE")
	want := "-modcacherw\n\n" + got["GOMODCACHE"] + "\n"
	if err != nil || stdout != want {
		t.Errorf("go env = %v %q (stderr %q), want %q", err, stdout, stderr, want)
	}
}

func TestWriteModule(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "app")
	testenv.WriteModule(t, dir, "module example.com/app\n", map[string]string{"a/b/c.go": "package b\n"})
	for name, want := range map[string]string{"go.mod": "module example.com/app\n", "a/b/c.go": "package b\n"} {
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil || string(data) != want {
			t.Errorf("after WriteModule, %s = %q, %v; want %q", name, data, err, want)
		}
	}
}

// TestGoEnvKeepsTheGoCommandOnLoopback: the go command run with GoEnv
// reaches a server on 127.0.0.1 but not the same server as 0.0.0.0 (which
// Linux delivers locally, so the check itself sends nothing anywhere):
// that request goes to DeadProxy and fails.
func TestGoEnvKeepsTheGoCommandOnLoopback(t *testing.T) {
	t.Parallel()
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	if _, stderr, err := testenv.RunGo(t, t.TempDir(), testenv.GoEnv(t, up.URL(), ""), "mod", "download", "example.com/hello@v1.0.0"); err != nil {
		t.Fatalf("go mod download from %s: %v\n%s", up.URL(), err, stderr)
	}
	up.ResetLog()
	other := strings.Replace(up.URL(), "127.0.0.1", "0.0.0.0", 1)
	_, stderr, err := testenv.RunGo(t, t.TempDir(), testenv.GoEnv(t, other, ""), "mod", "download", "example.com/hello@v1.0.0")
	if err == nil || !strings.Contains(stderr, "proxyconnect") {
		t.Errorf("go mod download from %s = %v, want a refused proxy connection:\n%s", other, err, stderr)
	}
	if n := len(up.Requests()); n != 0 {
		t.Errorf("the upstream was reached %d times through 0.0.0.0", n)
	}
}
