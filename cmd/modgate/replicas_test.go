package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/testenv"
)

// replicasScript is the one-command cluster of the README's "Running
// replicas" section.
const replicasScript = "../../examples/replicas/run.sh"

// TestReplicasScript runs examples/replicas/run.sh as a user would, in
// front of a fake upstream: the go command downloads through its balancer
// and gets what a direct download gets, and SIGTERM stops every process
// the script started.
func TestReplicasScript(t *testing.T) {
	testenv.HAProxyBinary(t)
	for _, p := range []string{"/usr/lib/postgresql/15/bin/initdb", "/usr/lib/postgresql/15/bin/postgres"} {
		if _, err := os.Stat(p); err != nil {
			testenv.Unavailable(t, "no PostgreSQL 15 (install Debian's postgresql-15): %v", err)
		}
	}
	home, _ := os.UserHomeDir()
	if _, err := exec.LookPath("versitygw"); err != nil {
		if _, err := os.Stat(filepath.Join(home, ".cache", "modgate-ci", "bin", "versitygw")); err != nil {
			testenv.Unavailable(t, "no versitygw on PATH or in ~/.cache/modgate-ci/bin (.ci/run builds it)")
		}
	}
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	port := freePortRange(t, 7)
	// PostgreSQL runs as the postgres user, who must reach DATA_DIR.
	dataDir := filepath.Join(t.TempDir(), "cluster")
	for d := dataDir; d != "/" && d != "."; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o001 == 0 {
			os.Chmod(d, fi.Mode().Perm()|0o011)
		}
	}
	cmd := exec.Command("bash", replicasScript)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + testHome(t),
		"PORT=" + strconv.Itoa(port), "DATA_DIR=" + dataDir, "MODGATE_BIN=" + modgateBin,
		"MODGATE_GOPROXY=" + up.URL(), "MODGATE_GOSUMDB=" + up.VerifierKey(),
		"MODGATE_LOG_FORMAT=json",
		// versitygw is found in the real HOME's cache, like .ci/run leaves it.
		"MODGATE_CI_BIN=" + filepath.Join(home, ".cache", "modgate-ci", "bin"),
		"HTTP_PROXY=" + testenv.DeadProxy, "HTTPS_PROXY=" + testenv.DeadProxy, "NO_PROXY=127.0.0.1,localhost"}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	out := new(testenv.LogBuffer)
	ready := make(chan struct{})
	exited := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			out.Write([]byte(sc.Text() + "\n"))
			if strings.Contains(sc.Text(), "modgate cluster ready") {
				close(ready)
			}
		}
		exited <- cmd.Wait()
	}()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(60 * time.Second):
				cmd.Process.Kill()
			}
		}
	})
	select {
	case <-ready:
	case err := <-exited:
		t.Fatalf("run.sh exited before the cluster was ready: %v\n%s%s", err, out, logs(dataDir))
	case <-time.After(3 * time.Minute):
		t.Fatalf("the cluster was not ready within 3 minutes:\n%s%s", out, logs(dataDir))
	}

	// The go command through the balancer: every replica serves some of
	// it, and every file hashes as the upstream's own.
	balancer := fmt.Sprintf("http://127.0.0.1:%d", port)
	mods := []string{"example.com/hello@v1.0.0", "example.com/hello@v1.1.0", "example.com/greet@v1.0.0",
		"example.com/hello/v2@v2.0.0", "example.com/legacy@v2.0.0+incompatible", "example.com/Upper@v1.0.0"}
	env := testenv.GoEnv(t, balancer, up.VerifierKey())
	stdout, errOut, err := testenv.RunGo(t, t.TempDir(), env, append([]string{"mod", "download", "-json"}, mods...)...)
	if err != nil {
		t.Fatalf("go mod download through the balancer: %v\n%s\n%s%s", err, stdout, errOut, logs(dataDir))
	}
	dec := json.NewDecoder(strings.NewReader(stdout))
	n := 0
	for dec.More() {
		var d struct{ Path, Version, Sum, GoModSum string }
		if err := dec.Decode(&d); err != nil {
			t.Fatal(err)
		}
		m := up.Module(d.Path, d.Version)
		if d.Sum != m.ZipHash || d.GoModSum != m.ModHash {
			t.Errorf("%s@%s: %s %s, want %s %s", d.Path, d.Version, d.Sum, d.GoModSum, m.ZipHash, m.ModHash)
		}
		n++
	}
	if n != len(mods) {
		t.Errorf("go mod download reported %d modules, want %d", n, len(mods))
	}

	// SIGTERM: everything the script started is gone when it exits.
	procs := descendants(cmd.Process.Pid)
	if len(procs) < 6 { // versitygw, postgres, 3 replicas, haproxy
		t.Errorf("run.sh runs %d processes, want at least 6: %v", len(procs), procs)
	}
	stopped = true
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if !errorsAs(err, &ee) || ee.ExitCode() != 143 {
			t.Errorf("run.sh after SIGTERM: %v, want exit status 143", err)
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("run.sh did not exit within 60s of SIGTERM:\n%s", out)
	}
	for pid, name := range procs {
		if alive(pid) {
			t.Errorf("%s (pid %d) still runs after run.sh exited", name, pid)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	for i := range 7 {
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port+i), time.Second); err == nil {
			c.Close()
			t.Errorf("port %d still accepts connections after run.sh exited", port+i)
		}
	}
	if _, err := http.Get(balancer + "/readyz"); err == nil {
		t.Error("the balancer still answers")
	}
}

// freePortRange returns the first of n consecutive ports on 127.0.0.1
// that were all free a moment ago.
func freePortRange(t *testing.T, n int) int {
	t.Helper()
	for range 50 {
		base := 20000 + rand.IntN(30000)
		ok := true
		for i := range n {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+i))
			if err != nil {
				ok = false
				break
			}
			ln.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatalf("no %d consecutive free ports", n)
	return 0
}

// descendants returns every process below pid (children, their
// children...), by PID, with its command name.
func descendants(pid int) map[int]string {
	parent := map[int]int{}
	name := map[int]string{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		s := string(stat)
		i := strings.LastIndexByte(s, ')')
		f := strings.Fields(s[i+1:])
		if i < 0 || len(f) < 2 {
			continue
		}
		pp, _ := strconv.Atoi(f[1])
		parent[p] = pp
		name[p] = s[strings.IndexByte(s, '(')+1 : i]
	}
	out := map[int]string{}
	for p := range parent {
		for q := parent[p]; q > 1; q = parent[q] {
			if q == pid {
				if name[p] != "sleep" { // run.sh's own one-second waits
					out[p] = name[p]
				}
				break
			}
		}
	}
	return out
}

// alive reports whether pid runs (a zombie waiting for a parent that
// never reaps it does not).
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(stat)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && f[0] != "Z"
}

// logs returns the tail of every log the script wrote, for failures.
func logs(dataDir string) string {
	var b strings.Builder
	files, _ := filepath.Glob(filepath.Join(dataDir, "logs", "*.log"))
	for _, f := range files {
		data, _ := os.ReadFile(f)
		if len(data) > 3000 {
			data = data[len(data)-3000:]
		}
		fmt.Fprintf(&b, "--- %s\n%s\n", filepath.Base(f), data)
	}
	return b.String()
}
