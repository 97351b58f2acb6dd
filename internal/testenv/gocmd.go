package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// GoTimeout bounds every RunGo call.
const GoTimeout = 2 * time.Minute

// DeadProxy is a proxy URL on loopback where nothing listens: a request
// sent through it fails at once with "connection refused". See GoEnv.
const DeadProxy = "http://127.0.0.1:1"

// GoEnv returns a clean environment for running the real go command against
// the module proxy at proxyURL, verifying against the checksum database
// given by sumdb (a GOSUMDB value such as Upstream.VerifierKey(); "" means
// "off", never the public default).
//
// Nothing is inherited but PATH, with the directory of GoBinary put first so
// that a nested "go" resolves to the same toolchain. In particular no GO*
// variable of the calling process leaks in. The result sets:
//
//	GOPROXY=<proxyURL> GOSUMDB=<sumdb> GOFLAGS=-modcacherw GOENV=off GOTOOLCHAIN=local
//	GOPRIVATE= GONOPROXY= GONOSUMDB= GOINSECURE= CGO_ENABLED=0
//	HOME, GOPATH, GOMODCACHE, GOCACHE, GOTMPDIR in a fresh t.TempDir()
//
// GOPROXY has no ",direct", so the go command never reaches for a VCS or
// the network. HOME is empty: a test that needs credentials writes
// $HOME/.netrc (the go command's default GOAUTH reads it).
//
// HTTP_PROXY and HTTPS_PROXY name DeadProxy, and NO_PROXY is empty: the go
// command never sends a request for a loopback address or localhost
// through a proxy, so everything a test serves on 127.0.0.1 is reached
// directly, and any other request (a checksum database's own host, a
// go-import lookup) fails at once without a name lookup: the subprocess
// side of GuardNetwork. A test that reaches a Git server through its own
// proxy overrides them (GitServer.GoDirect); only the real-upstream test
// removes them.
//
// overrides are applied last, in order: "KEY=VALUE" sets KEY, a bare "KEY"
// removes it.
//
// A fresh GOCACHE makes every build compile the runtime again (about 20 s
// on a small machine); "go mod download" and "go list -m" don't care. Tests
// that build can pass "GOCACHE="+HostGoCache(t), or a directory that
// TestMain creates for the whole package: the build cache is safe for
// concurrent use and holds only build outputs keyed by content, never
// modules, so sharing it does not weaken what the test proves.
func GoEnv(t testing.TB, proxyURL, sumdb string, overrides ...string) []string {
	t.Helper()
	if sumdb == "" {
		sumdb = "off"
	}
	root := t.TempDir()
	home := filepath.Join(root, "home")
	gopath := filepath.Join(root, "gopath")
	tmp := filepath.Join(root, "tmp")
	for _, dir := range []string{home, tmp} {
		if err := os.Mkdir(dir, 0o777); err != nil {
			t.Fatalf("testenv: %v", err)
		}
	}
	if err := TelemetryOff(home); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	env := []string{
		"PATH=" + filepath.Dir(GoBinary(t)) + string(os.PathListSeparator) + os.Getenv("PATH"),
		"HOME=" + home,
		"GOPATH=" + gopath,
		"GOMODCACHE=" + filepath.Join(gopath, "pkg", "mod"),
		"GOCACHE=" + filepath.Join(root, "gocache"),
		"GOTMPDIR=" + tmp,
		"GOENV=off",
		"GOFLAGS=-modcacherw", // so that t.TempDir can remove the module cache
		"GOTOOLCHAIN=local",
		"GOPROXY=" + proxyURL,
		"GOSUMDB=" + sumdb,
		"GOPRIVATE=",
		"GONOPROXY=",
		"GONOSUMDB=",
		"GOINSECURE=",
		"CGO_ENABLED=0",
		"HTTP_PROXY=" + DeadProxy,
		"HTTPS_PROXY=" + DeadProxy,
		"NO_PROXY=",
	}
	for _, o := range overrides {
		key, _, set := strings.Cut(o, "=")
		env = slices.DeleteFunc(env, func(kv string) bool { return strings.HasPrefix(kv, key+"=") })
		if set {
			env = append(env, o)
		}
	}
	return env
}

// TelemetryOff switches the go command's telemetry off for a test HOME.
// Otherwise the go command writes counters there, from a child process that
// can outlive it, and races the test's removal of its temporary directory.
func TelemetryOff(home string) error {
	dir := filepath.Join(home, ".config", "go", "telemetry")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "mode"), []byte("off"), 0o666)
}

// HostGoCache returns the build cache of the user running the tests
// ("go env GOCACHE" in the test process's own environment), for passing as
// "GOCACHE="+HostGoCache(t) to GoEnv. It fails the test if there is none.
func HostGoCache(t testing.TB) string {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), GoBinary(t), "env", "GOCACHE").Output()
	dir := strings.TrimSpace(string(out))
	if err != nil || dir == "" || dir == "off" {
		t.Fatalf("testenv: go env GOCACHE = %q, %v; want a directory", dir, err)
	}
	return dir
}

// GoBinary returns the go command of the toolchain running the test:
// $GOROOT/bin/go of the running program when it exists, else "go" from PATH
// (which go test puts first). It fails the test if there is none.
func GoBinary(t testing.TB) string {
	t.Helper()
	// runtime.GOROOT is deprecated because a binary may run far from its
	// toolchain; a test binary runs right next to it, which is the point.
	if root := runtime.GOROOT(); root != "" {
		goBin := filepath.Join(root, "bin", "go")
		if runtime.GOOS == "windows" {
			goBin += ".exe"
		}
		if _, err := os.Stat(goBin); err == nil {
			return goBin
		}
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("testenv: no go command: %v", err)
	}
	return goBin
}

// RunGo runs "go args..." in dir with exactly the environment env (usually
// from GoEnv) and returns what it printed. err is nil when the command
// exited 0; otherwise it names the command and wraps the *exec.ExitError
// (exit status) or the reason it could not run, including the GoTimeout
// deadline and the end of the test (t.Context).
func RunGo(t testing.TB, dir string, env []string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), GoTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, GoBinary(t), args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.WaitDelay = 5 * time.Second // don't hang on pipes held open by a killed command's children
	var outBuf, errBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outBuf, &errBuf
	err = cmd.Run()
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("%w (timed out after %v)", err, GoTimeout)
		}
		err = fmt.Errorf("go %s: %w", strings.Join(args, " "), err)
	}
	return outBuf.String(), errBuf.String(), err
}

// WriteModule creates a consumer project in dir (created if needed): go.mod
// with the content gomod (skipped when gomod is ""), and files, keyed by
// slash-separated paths relative to dir. It fails the test on any error,
// including a name that would escape dir.
//
//	testenv.WriteModule(t, dir, "module example.com/app\n\ngo 1.21\n", map[string]string{
//		"main.go": "package main\n\nimport \"example.com/hello\"\n\nfunc main() { println(hello.Hello()) }\n",
//	})
func WriteModule(t testing.TB, dir, gomod string, files map[string]string) {
	t.Helper()
	all := maps.Clone(files)
	if all == nil {
		all = make(map[string]string)
	}
	if gomod != "" {
		all["go.mod"] = gomod
	}
	for name, content := range all {
		local := filepath.FromSlash(name)
		if !filepath.IsLocal(local) {
			t.Fatalf("testenv: WriteModule: file name %q is not local to the module directory", name)
		}
		file := filepath.Join(dir, local)
		if err := os.MkdirAll(filepath.Dir(file), 0o777); err != nil {
			t.Fatalf("testenv: WriteModule: %v", err)
		}
		if err := os.WriteFile(file, []byte(content), 0o666); err != nil {
			t.Fatalf("testenv: WriteModule: %v", err)
		}
	}
}
