package testenv

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// A Balancer is a real HAProxy (Debian's haproxy package) on 127.0.0.1 in
// front of modgate replicas, configured the way the README's "Running
// replicas" section recommends: round robin, a health check on GET /readyz
// every 500ms (down after 2 failures, up after 2 successes), 2 retries
// with redispatch to another replica when a connection fails or a replica
// closes it without an answer, and a statistics page. Clients use URL as
// their GOPROXY.
//
// Each test gets its own HAProxy: it starts in about 60ms, and a process
// per test keeps one test's dead replicas out of the next one's balancer.
// Backends are added while it runs (AddBackend), through HAProxy's runtime
// API, so a test can start replicas one by one.
type Balancer struct {
	URL      string // http://127.0.0.1:port, the balancer's frontend
	StatsURL string // the statistics page; StatsURL+";csv" is machine-readable

	sock string // the runtime API's unix socket
	log  LogBuffer
	mu   sync.Mutex
	n    int // backends added so far
}

// HAProxyBinary returns the path of haproxy, or ends the test with
// Unavailable when it is not installed (.ci/run installs Debian's haproxy).
func HAProxyBinary(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"haproxy", "/usr/sbin/haproxy"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	Unavailable(t, "testenv: no haproxy (install Debian's haproxy package)")
	return ""
}

// NewBalancer starts HAProxy in front of backends (host:port each, named
// b1, b2, ... in order) and stops it when the test ends. Start the
// backends first: HAProxy checks them at once, and a backend that fails
// its first checks stays out until two checks pass.
func NewBalancer(t testing.TB, backends ...string) *Balancer {
	t.Helper()
	bin := HAProxyBinary(t)
	dir := t.TempDir()
	port, statsPort := freePort(t), freePort(t)
	b := &Balancer{
		URL:      fmt.Sprintf("http://127.0.0.1:%d", port),
		StatsURL: fmt.Sprintf("http://127.0.0.1:%d/stats", statsPort),
		sock:     filepath.Join(dir, "admin.sock"),
	}
	var servers strings.Builder
	for _, addr := range backends {
		b.n++
		fmt.Fprintf(&servers, "\tserver b%d %s check\n", b.n, addr)
	}
	cfg := fmt.Sprintf(haproxyConfig, b.sock, port, statsPort, servers.String())
	cfgPath := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	if out, err := exec.Command(bin, "-c", "-q", "-f", cfgPath).CombinedOutput(); err != nil {
		t.Fatalf("testenv: haproxy -c: %v\n%s\n%s", err, out, cfg)
	}
	cmd := exec.Command(bin, "-f", cfgPath, "-db")
	cmd.Stdout, cmd.Stderr = &b.log, &b.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("testenv: starting haproxy: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(b.StatsURL + ";csv")
		if err == nil {
			resp.Body.Close()
			if _, err := os.Stat(b.sock); err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: haproxy did not start within 10s: %v\n%s", err, b.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return b
}

// haproxyConfig: the socket, the frontend's port, the statistics port and
// the server lines. retry-on covers a replica killed between two requests
// on a kept-alive connection and one that dies before answering; a
// response already under way cannot be retried by anyone.
const haproxyConfig = `global
	stats socket %s level admin
	maxconn 4096

defaults
	mode http
	timeout connect 1s
	timeout client 2m
	timeout server 2m
	timeout check 2s
	retries 2
	option redispatch 1
	retry-on conn-failure empty-response response-timeout

frontend modgate
	bind 127.0.0.1:%d
	default_backend replicas

listen stats
	bind 127.0.0.1:%d
	stats enable
	stats uri /stats
	stats refresh 0

backend replicas
	balance roundrobin
	option httpchk GET /readyz
	http-check expect status 200
	default-server inter 500ms fall 2 rise 2
%s`

// AddBackend adds a replica at addr (host:port) while the balancer runs and
// returns its name (b1, b2, ...). It starts in HAProxy's "down" state and
// takes traffic once two checks pass; WaitState waits for that.
func (b *Balancer) AddBackend(t testing.TB, addr string) string {
	t.Helper()
	b.mu.Lock()
	b.n++
	name := fmt.Sprintf("b%d", b.n)
	b.mu.Unlock()
	for _, cmd := range []string{
		fmt.Sprintf("add server replicas/%s %s check inter 500ms fall 2 rise 2", name, addr),
		"enable health replicas/" + name,
		"enable server replicas/" + name,
	} {
		out, err := b.admin(cmd)
		if err != nil {
			t.Fatalf("testenv: haproxy %q: %v", cmd, err)
		}
		if out != "" && !strings.HasPrefix(out, "New server registered") {
			t.Fatalf("testenv: haproxy %q: %s", cmd, out)
		}
	}
	return name
}

// admin sends one command to the runtime API and returns its answer.
func (b *Balancer) admin(cmd string) (string, error) {
	c, err := net.DialTimeout("unix", b.sock, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, cmd+"\n"); err != nil {
		return "", err
	}
	out, err := io.ReadAll(bufio.NewReader(c))
	return strings.TrimSpace(string(out)), err
}

// States returns each backend's state as HAProxy sees it ("UP", "DOWN",
// "MAINT", "UP 1/2", ...), by name.
func (b *Balancer) States(t testing.TB) map[string]string {
	t.Helper()
	resp, err := http.Get(b.StatsURL + ";csv")
	if err != nil {
		t.Fatalf("testenv: haproxy stats: %v", err)
	}
	defer resp.Body.Close()
	r := csv.NewReader(resp.Body)
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil {
		t.Fatalf("testenv: haproxy stats: %v", err)
	}
	states := map[string]string{}
	for _, row := range rows {
		// # pxname,svname,...; status is column 18 (index 17).
		if len(row) > 17 && row[0] == "replicas" && row[1] != "BACKEND" && row[1] != "FRONTEND" {
			states[row[1]] = row[17]
		}
	}
	return states
}

// WaitState waits up to d for backend name to reach state (exactly, e.g.
// "UP" or "DOWN") and fails the test otherwise.
func (b *Balancer) WaitState(t testing.TB, name, state string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		got := b.States(t)[name]
		if got == state {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: haproxy backend %s is %q after %v, want %q (all: %v)", name, got, d, state, b.States(t))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Log returns what HAProxy printed (alerts and warnings), for failure
// messages.
func (b *Balancer) Log() string { return b.log.String() }
