package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/testenv"
)

// modgateBin is the binary under test, built once by TestMain.
var modgateBin string

func TestMain(m *testing.M) {
	testenv.GuardNetwork() // dials outside loopback fail; see TestRealUpstream
	dir, err := os.MkdirTemp("", "modgate-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	modgateBin = filepath.Join(dir, "modgate")
	build := exec.Command("go", "build", "-o", modgateBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building modgate:", err)
		os.Exit(1)
	}
	code := m.Run()
	testenv.StopS3()       // the versitygw the cluster tests share, if started
	testenv.StopPostgres() // likewise PostgreSQL
	os.RemoveAll(dir)
	os.Exit(code)
}

// process is a modgate binary running as a child process.
type process struct {
	cmd  *exec.Cmd
	URL  string
	logs *testenv.LogBuffer
	done chan struct{}
}

// startBinary runs `modgate serve` with args and env (added to a minimal
// environment), waits until it logs its listening address, and stops it
// (SIGTERM) at the end of the test if it is still running. Its HTTP
// requests to anything but loopback go to testenv.DeadProxy unless env
// sets HTTP_PROXY and HTTPS_PROXY itself (the real-upstream test does).
func startBinary(t *testing.T, env []string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(modgateBin, append([]string{"serve", "-listen", "127.0.0.1:0", "-log-format", "json"}, args...)...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + testHome(t),
		"HTTP_PROXY=" + testenv.DeadProxy, "HTTPS_PROXY=" + testenv.DeadProxy, "NO_PROXY="}, env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, logs: new(testenv.LogBuffer), done: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.logs.Write([]byte(line + "\n"))
			var rec struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "serving" {
				addr <- rec.Addr
			}
		}
		cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
		}
	})
	select {
	case a := <-addr:
		p.URL = "http://" + a
	case <-p.done:
		t.Fatalf("modgate exited before serving:\n%s", p.logs)
	case <-time.After(30 * time.Second):
		t.Fatalf("modgate did not start within 30s:\n%s", p.logs)
	}
	return p
}

// testHome returns an empty HOME for modgate, which runs `go env` at start,
// with the go command's telemetry off (see testenv.TelemetryOff).
func testHome(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	if err := testenv.TelemetryOff(home); err != nil {
		t.Fatal(err)
	}
	return home
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *process) kill(t *testing.T) {
	t.Helper()
	p.cmd.Process.Kill()
	<-p.done
}

// TestZeroConfigPrintConfig: with no configuration at all, serve resolves
// its upstream and checksum database from go env and says where each came
// from.
func TestZeroConfigPrintConfig(t *testing.T) {
	cmd := exec.Command(modgateBin, "serve", "--print-config")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + testHome(t), "GOPROXY=https://proxy.corp.example,direct", "GOSUMDB=off", "GOPRIVATE=corp.example/*"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("modgate serve --print-config: %v\n%s", err, out)
	}
	// Settings whose default is derived show the value in effect.
	for _, want := range []string{"127.0.0.1:3000", "https://proxy.corp.example,direct", "go env GOPROXY", "corp.example/*", ".local/share/modgate",
		"max_concurrent_git: 4 ", "share/modgate/audit # default", "share/modgate/git # default"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("--print-config output lacks %q:\n%s", want, out)
		}
	}
}

// TestBadConfigExits: an invalid configuration stops the process before it
// listens, with exit status 2, naming each problem by key (and line).
func TestBadConfigExits(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown key", "upstream:\n  goproxy: https://x.example\n  bogus: 1\n", []string{"modgate.yaml:3", "upstream.bogus", "unknown key"}},
		{"every invalid value at once", "listen: nohost\ncache:\n  list_ttl: -1s\nupstream:\n  goproxy: htps://x\n", []string{"listen", "cache.list_ttl", "upstream.goproxy", "htps"}},
		// A value of the wrong type and an invalid value are reported in
		// one round, not the second after the first is fixed.
		{"decode and validation problems at once", "upstream:\n  retries: many\n  goproxy: htps://x\ncache:\n  list_ttl: -1s\n", []string{"modgate.yaml:2: upstream.retries", "upstream.goproxy", "htps", "cache.list_ttl"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "modgate.yaml")
			os.WriteFile(file, []byte(tt.yaml), 0o644)
			cmd := exec.Command(modgateBin, "serve", "-config", file)
			cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + testHome(t)}
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if err == nil || !errorsAs(err, &exit) || exit.ExitCode() != 2 {
				t.Fatalf("modgate serve with a broken config: err = %v, want exit status 2\n%s", err, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("error output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func errorsAs(err error, target **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	if ok {
		*target = e
	}
	return ok
}

// bigModules makes n large module versions, so that storing them takes
// long enough for a kill to land in the middle of writes.
func bigModules(t *testing.T, n, size int) []*testenv.Module {
	t.Helper()
	var mods []*testenv.Module
	for i := range n {
		m, err := testenv.LargeModule(fmt.Sprintf("example.com/big%02d", i), "v1.0.0", size)
		if err != nil {
			t.Fatal(err)
		}
		mods = append(mods, m)
	}
	return mods
}

// TestKillDuringBurst kills modgate with SIGKILL while it is storing a
// burst of downloads, restarts it on the same data directory, and checks
// that every file it serves afterwards is complete and verified: the real
// go command downloads every module through it with checksum verification.
func TestKillDuringBurst(t *testing.T) {
	mods := bigModules(t, 24, 1<<20)
	up := testenv.NewUpstream(t, mods)
	dataDir := filepath.Join(t.TempDir(), "data")
	env := []string{"MODGATE_DATA_DIR=" + dataDir, "MODGATE_GOPROXY=" + up.URL(), "MODGATE_GOSUMDB=" + up.VerifierKey()}

	p := startBinary(t, env)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	for _, m := range mods {
		go func() {
			req, _ := newGet(ctx, p.URL+"/"+m.Path+"/@v/v1.0.0.zip")
			if resp, err := httpClient.Do(req); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	// Kill once some zips are stored and others are still being written.
	deadline := time.Now().Add(20 * time.Second)
	for countStored(dataDir) < 3 && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	p.kill(t)
	cancel()
	stored := countStored(dataDir)
	t.Logf("killed with %d of %d zips stored", stored, len(mods))
	if stored == len(mods) {
		t.Log("every zip was stored before the kill; the test still checks them all")
	}

	p2 := startBinary(t, env)
	var args []string
	for _, m := range mods {
		args = append(args, m.String())
	}
	goenv := testenv.GoEnv(t, p2.URL, up.VerifierKey())
	out, stderr, err := testenv.RunGo(t, t.TempDir(), goenv, append([]string{"mod", "download", "-json"}, args...)...)
	if err != nil {
		t.Fatalf("go mod download after restart: %v\n%s\n%s", err, out, stderr)
	}
	dec := json.NewDecoder(strings.NewReader(out))
	n := 0
	for dec.More() {
		var d struct{ Path, Sum string }
		if err := dec.Decode(&d); err != nil {
			t.Fatal(err)
		}
		if want := up.Module(d.Path, "v1.0.0").ZipHash; d.Sum != want {
			t.Errorf("%s: served zip hashes to %s, want %s", d.Path, d.Sum, want)
		}
		n++
	}
	if n != len(mods) {
		t.Errorf("go mod download reported %d modules, want %d", n, len(mods))
	}
}

func countStored(dataDir string) int {
	n := 0
	filepath.WalkDir(filepath.Join(dataDir, "modules"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".zip") && !strings.HasPrefix(d.Name(), ".") {
			n++
		}
		return nil
	})
	return n
}
