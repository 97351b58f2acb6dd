package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/testenv"
)

// The cluster tests run modgate as the README's "Running replicas" section
// describes: replicas of the built binary sharing one versitygw bucket and
// one PostgreSQL database, behind a real HAProxy that checks /readyz,
// driven by the real go command with fresh module caches.

// A cluster is n replicas, their object store and database, and the
// balancer in front.
type cluster struct {
	up       *testenv.Upstream
	s3       *testenv.S3Server
	bucket   string
	dsn      string
	config   string   // the configuration file every replica reads
	env      []string // every replica's environment
	replicas []*process
	lb       *testenv.Balancer
}

// clusterOptions change newCluster's defaults.
type clusterOptions struct {
	dsn      string   // the database; empty: a fresh one from testenv.PostgresDSN
	yaml     string   // more configuration, appended to the file
	together bool     // start every replica at once (no audit: the first creates its key)
	disk     bool     // each replica keeps module files in its data_dir, sharing only the state
	env      []string // more environment for every replica
	// before runs once the configuration is written, before any replica
	// starts.
	before func(*cluster)
}

// newCluster starts n replicas in front of up, then HAProxy, and waits until the
// balancer has every replica up.
func newCluster(t *testing.T, up *testenv.Upstream, n int, opts ...clusterOptions) *cluster {
	t.Helper()
	var o clusterOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	c := &cluster{up: up, s3: testenv.NewS3(t), dsn: o.dsn}
	if c.dsn == "" {
		c.dsn = testenv.PostgresDSN(t)
	}
	bucket := c.s3.NewBucket(t)
	c.bucket = bucket
	dir := t.TempDir()
	creds := filepath.Join(dir, "s3-credentials")
	if err := os.WriteFile(creds, []byte(c.s3.AccessKey+"\n"+c.s3.SecretKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.config = filepath.Join(dir, "modgate.yaml")
	// One signing key for the one chain.
	auditYAML := "key_file: " + filepath.Join(dir, "audit.key") + "\n  checkpoint_interval: 1s"
	if o.together {
		auditYAML = "enabled: false"
	}
	storageYAML := fmt.Sprintf(`storage:
  type: s3
  s3:
    endpoint: %s
    bucket: %s
    credentials_file: %s
`, c.s3.Endpoint, bucket, creds)
	if o.disk {
		storageYAML = ""
	}
	cfg := storageYAML + fmt.Sprintf(`state:
  postgres:
    dsn_env: MODGATE_POSTGRES_DSN
audit:
  %s
server:
  drain_period: 0s
`, auditYAML) + o.yaml
	if err := os.WriteFile(c.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	c.env = append([]string{"MODGATE_GOPROXY=" + up.URL(), "MODGATE_GOSUMDB=" + up.VerifierKey(), "MODGATE_POSTGRES_DSN=" + c.dsn}, o.env...)
	if o.before != nil {
		o.before(c)
	}
	c.replicas = make([]*process, n)
	// The first alone (it creates the audit signing key they share), then
	// the others at once.
	first := 0
	if !o.together {
		c.replicas[0] = c.startReplica(t, 0)
		first = 1
	}
	var wg sync.WaitGroup
	for i := first; i < n; i++ {
		wg.Go(func() { c.replicas[i] = c.startReplica(t, i) })
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	var addrs []string
	for _, p := range c.replicas {
		addrs = append(addrs, strings.TrimPrefix(p.URL, "http://"))
	}
	c.lb = testenv.NewBalancer(t, addrs...)
	for i := range n {
		c.lb.WaitState(t, fmt.Sprintf("b%d", i+1), "UP", 10*time.Second)
	}
	return c
}

// startReplica starts replica i with its own data directory (its local
// cache), and waits until /readyz answers 200.
func (c *cluster) startReplica(t *testing.T, i int) *process {
	dataDir := filepath.Join(t.TempDir(), fmt.Sprintf("replica-%d", i+1))
	p := startBinary(t, c.env, "-config", c.config, "-data-dir", dataDir)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(p.URL + "/readyz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
			err = fmt.Errorf("%d %s", resp.StatusCode, body)
		}
		if time.Now().After(deadline) {
			t.Errorf("replica %d not ready after 20s: %v\n%s", i+1, err, p.logs)
			return p
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// clusterDownload runs `go mod download -json` of mods through proxy with a fresh
// module cache and returns each module's hashes ("zip go.mod") by path@version.
func clusterDownload(t *testing.T, proxy string, up *testenv.Upstream, mods ...string) map[string]string {
	t.Helper()
	env := testenv.GoEnv(t, proxy, up.VerifierKey())
	out, stderr, err := testenv.RunGo(t, t.TempDir(), env, append([]string{"mod", "download", "-json"}, mods...)...)
	if err != nil {
		t.Fatalf("go mod download through %s: %v\n%s\n%s", proxy, err, out, stderr)
	}
	return sums(t, out)
}

func sums(t *testing.T, out string) map[string]string {
	t.Helper()
	got := map[string]string{}
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var d struct{ Path, Version, Sum, GoModSum, Error string }
		if err := dec.Decode(&d); err != nil {
			t.Fatal(err)
		}
		if d.Error != "" {
			t.Errorf("%s@%s: %s", d.Path, d.Version, d.Error)
		}
		got[d.Path+"@"+d.Version] = d.Sum + " " + d.GoModSum
	}
	return got
}

// TestClusterColdDownload: a cold `go mod download` through the balancer in
// front of three replicas gets exactly the hashes of a download straight
// from the upstream, and each file was fetched from the upstream once.
func TestClusterColdDownload(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	c := newCluster(t, up, 3)
	mods := []string{"example.com/hello@v1.0.0", "example.com/hello@v1.1.0", "example.com/hello@v1.2.0-rc.1",
		"example.com/greet@v1.0.0", "example.com/hello/v2@v2.0.0", "example.com/legacy@v2.0.0+incompatible",
		"example.com/Upper@v1.0.0"}
	through := clusterDownload(t, c.lb.URL, up, mods...)
	direct := clusterDownload(t, up.URL(), up, mods...)
	if len(through) != len(mods) {
		t.Errorf("through the balancer: %d modules, want %d", len(through), len(mods))
	}
	for m, want := range direct {
		if through[m] != want {
			t.Errorf("%s: through the balancer %q, direct %q", m, through[m], want)
		}
	}
	for _, p := range []string{"/example.com/hello/@v/v1.0.0.zip", "/example.com/!upper/@v/v1.0.0.zip", "/example.com/legacy/@v/v2.0.0+incompatible.zip"} {
		// One fetch by the cluster, one by the direct download.
		if n := up.Count(p); n != 2 {
			t.Errorf("upstream served %s %d times, want 2 (one for the cluster, one direct)", p, n)
		}
	}
	// Every replica took part: round robin over three. (Access lines are
	// written every 100ms.)
	time.Sleep(300 * time.Millisecond)
	for i, p := range c.replicas {
		if !strings.Contains(p.logs.String(), `"path":"/example.com/`) {
			t.Errorf("replica %d served no module file:\n%s", i+1, p.logs)
		}
	}
}

// TestClusterS3Down: with the object store stopped, the balancer answers a
// clear 503 (every replica's /readyz fails), nothing is stored; once it is
// back, the same replicas serve again, without a restart.
func TestClusterS3Down(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	c := newCluster(t, up, 3)
	clusterDownload(t, c.lb.URL, up, "example.com/hello@v1.0.0")

	c.s3.Stop()
	for i := range c.replicas {
		c.lb.WaitState(t, fmt.Sprintf("b%d", i+1), "DOWN", 5*time.Second)
	}
	resp, err := http.Get(c.lb.URL + "/example.com/greet/@v/v1.0.0.zip")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable && resp.StatusCode != http.StatusBadGateway {
		t.Errorf("S3 down: an uncached zip through the balancer = %d, want 503 or 502", resp.StatusCode)
	}
	env := testenv.GoEnv(t, c.lb.URL, up.VerifierKey())
	if _, _, err := testenv.RunGo(t, t.TempDir(), env, "mod", "download", "example.com/greet@v1.0.0"); err == nil {
		t.Error("S3 down: go mod download of an uncached module succeeded")
	}

	c.s3.Start(t)
	for i := range c.replicas {
		c.lb.WaitState(t, fmt.Sprintf("b%d", i+1), "UP", 10*time.Second)
	}
	got := clusterDownload(t, c.lb.URL, up, "example.com/greet@v1.0.0", "example.com/hello@v1.0.0")
	for m, s := range got {
		path, version, _ := strings.Cut(m, "@")
		if want := up.Module(path, version); s != want.ZipHash+" "+want.ModHash {
			t.Errorf("S3 back: %s = %s, want %s %s", m, s, want.ZipHash, want.ModHash)
		}
	}
}

// TestClusterKillReplica: kill -9 of one replica in the middle of a burst
// of downloads through the balancer: the go command still succeeds (what
// the dead replica had not answered is retried on another), and every file
// served afterwards, by any replica, is complete and verified.
func TestClusterKillReplica(t *testing.T) {
	mods := bigModules(t, 24, 1<<20)
	up := testenv.NewUpstream(t, mods)
	c := newCluster(t, up, 3)
	// Slow fills, so that the kill lands with fills in flight on every replica.
	up.SetDelay(100 * time.Millisecond)
	var args []string
	for _, m := range mods {
		args = append(args, m.String())
	}

	// A burst of plain clients, and the go command, together.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var burst sync.WaitGroup
	for _, m := range mods {
		burst.Go(func() {
			req, _ := newGet(ctx, c.lb.URL+"/"+m.Path+"/@v/v1.0.0.zip")
			if resp, err := httpClient.Do(req); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	type result struct {
		out, stderr string
		err         error
	}
	goDone := make(chan result, 1)
	env := testenv.GoEnv(t, c.lb.URL, up.VerifierKey())
	go func() {
		out, stderr, err := testenv.RunGo(t, t.TempDir(), env, append([]string{"mod", "download", "-json"}, args...)...)
		goDone <- result{out, stderr, err}
	}()
	// Kill once the cluster has started fetching, with most still to come.
	deadline := time.Now().Add(20 * time.Second)
	for zips(up.Requests()) < 3 && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	c.replicas[1].kill(t)
	t.Logf("killed replica 2 after %d upstream zip fetches", zips(up.Requests()))
	r := <-goDone
	burst.Wait()
	if r.err != nil {
		t.Fatalf("go mod download across the kill: %v\n%s\n%s", r.err, r.out, r.stderr)
	}
	check := func(label string, got map[string]string) {
		t.Helper()
		if len(got) != len(mods) {
			t.Errorf("%s: %d modules, want %d", label, len(got), len(mods))
		}
		for _, m := range mods {
			if want := m.ZipHash + " " + m.ModHash; got[m.String()] != want {
				t.Errorf("%s: %s = %q, want %q", label, m, got[m.String()], want)
			}
		}
	}
	check("across the kill", sums(t, r.out))
	// Afterwards, from each surviving replica directly and through the
	// balancer: complete, verified files only.
	c.lb.WaitState(t, "b2", "DOWN", 5*time.Second)
	for _, i := range []int{0, 2} {
		check(fmt.Sprintf("replica %d after the kill", i+1), clusterDownload(t, c.replicas[i].URL, up, args...))
	}
}

// zips counts the .zip requests in an upstream's request log.
func zips(reqs []string) int {
	n := 0
	for _, r := range reqs {
		if strings.HasSuffix(r, ".zip") {
			n++
		}
	}
	return n
}
