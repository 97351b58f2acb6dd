package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/testenv"
)

// Cluster tests of what the replicas share through PostgreSQL.

// TestClusterOneFetch: 64 concurrent clients through the balancer for one
// uncached zip, spread over three replicas: one upstream fetch in total,
// and every client gets the same, complete file.
func TestClusterOneFetch(t *testing.T) {
	mods := bigModules(t, 1, 4<<20)
	up := testenv.NewUpstream(t, mods)
	c := newCluster(t, up, 3)
	up.SetDelay(300 * time.Millisecond) // every client arrives while the fill runs
	m := mods[0]
	path := "/" + m.Path + "/@v/" + m.Version + ".zip"
	want := sha256.Sum256(m.Zip)
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for range 64 {
		wg.Go(func() {
			resp, err := httpClient.Get(c.lb.URL + path)
			if err != nil {
				errs <- err.Error()
				return
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || err != nil || sha256.Sum256(body) != want {
				errs <- fmt.Sprintf("%d, %d bytes, %v", resp.StatusCode, len(body), err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("a client: %s", e)
	}
	if n := up.Count(path); n != 1 {
		t.Errorf("upstream fetched %s %d times for 64 clients over 3 replicas, want 1", path, n)
	}
}

// TestClusterTokenRevoked: a token revoked through replica A is refused by
// replica B at its next request.
func TestClusterTokenRevoked(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	c := newCluster(t, up, 2, clusterOptions{yaml: "auth:\n  anonymous:\n    enabled: false\n"})
	a, b := c.replicas[0], c.replicas[1]
	// An admin token, created with the command line in the shared database.
	cmd := exec.Command(modgateBin, "token", "create", "--config", c.config, "--name", "root", "--scope", "admin")
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + testHome(t)}, c.env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("modgate token create: %v\n%s", err, out)
	}
	admin := tokenFrom(t, string(out))
	do := func(p *process, method, path, token, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, p.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(data)
	}
	code, body := do(a, "POST", "/admin/tokens", admin, `{"name":"ci","scopes":["read"]}`)
	if code != http.StatusCreated {
		t.Fatalf("creating a token through A: %d %s", code, body)
	}
	reader := regexp.MustCompile(`"token":\s*"([^"]+)"`).FindStringSubmatch(body)
	if reader == nil {
		t.Fatalf("no token in %s", body)
	}
	info := "/example.com/hello/@v/v1.0.0.info"
	if code, body := do(b, "GET", info, reader[1], ""); code != http.StatusOK {
		t.Fatalf("the new token on B: %d %s, want 200", code, body)
	}
	if code, body := do(a, "DELETE", "/admin/tokens/ci", admin, ""); code != http.StatusOK {
		t.Fatalf("revoking through A: %d %s", code, body)
	}
	if code, body := do(b, "GET", info, reader[1], ""); code != http.StatusUnauthorized {
		t.Errorf("the revoked token on B, next request: %d %s, want 401", code, body)
	}
}

// tokenFrom returns the token `modgate token create` printed.
func tokenFrom(t *testing.T, out string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^(\S{20,})$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no token in:\n%s", out)
	}
	return m[1]
}

// auditVerify runs `modgate audit verify` on the cluster's configuration and
// returns its exit status and output.
func (c *cluster) auditVerify(t *testing.T) (int, string) {
	t.Helper()
	cmd := exec.Command(modgateBin, "audit", "verify", "--config", c.config)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + testHome(t)}, c.env...)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

// psql runs SQL on the cluster's database.
func (c *cluster) psql(t *testing.T, sql string) string {
	t.Helper()
	out, err := exec.Command("/usr/lib/postgresql/15/bin/psql", c.dsn, "-tAc", sql).CombinedOutput()
	if err != nil {
		t.Fatalf("psql %q: %v\n%s", sql, err, out)
	}
	return strings.TrimSpace(string(out))
}

// records is the number of records audit verify reports ("ok: N records").
func records(t *testing.T, out string) int {
	t.Helper()
	m := regexp.MustCompile(`ok: (\d+) records`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("audit verify said:\n%s", out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestClusterAuditVerify: the records of three replicas form one chain that
// audit verify checks, naming all three; an edited row is named.
func TestClusterAuditVerify(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	c := newCluster(t, up, 3)
	clusterDownload(t, c.lb.URL, up, "example.com/hello@v1.0.0", "example.com/greet@v1.0.0", "example.com/Upper@v1.0.0")
	// Records reach the database in batches; wait for every replica's.
	var out string
	pollFor(t, 10*time.Second, func() bool {
		var code int
		code, out = c.auditVerify(t)
		return code == 0 && c.psql(t, "select count(distinct replica) from audit_records") == "3"
	}, func() string { return out })
	for i, p := range c.replicas {
		name := fmt.Sprintf(":%d", p.cmd.Process.Pid) // replica_name defaults to hostname:pid
		if !strings.Contains(out, name) {
			t.Errorf("audit verify does not name replica %d (%s):\n%s", i+1, name, out)
		}
	}
	seq := c.psql(t, "select seq from audit_records where line like '%example.com/greet%' order by seq limit 1")
	replica := c.psql(t, "select replica from audit_records where seq = "+seq)
	c.psql(t, "update audit_records set line = replace(line, 'example.com/greet', 'example.com/gree7') where seq = "+seq)
	code, out := c.auditVerify(t)
	if code != 1 || !strings.Contains(out, "seq "+seq) || !strings.Contains(out, replica) {
		t.Errorf("audit verify after editing seq %s (written by %s): exit %d\n%s\nwant exit 1 naming both", seq, replica, code, out)
	}
}

// TestClusterPostgresRestart: with PostgreSQL stopped, files the cluster
// has are still served through the balancer, no replica leaves it, and the
// audit records of those requests are appended once it is back: nothing
// lost, and the chain verifies.
func TestClusterPostgresRestart(t *testing.T) {
	pg := testenv.NewPostgres(t)
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	c := newCluster(t, up, 3, clusterOptions{dsn: pg.DSN(t)})
	mods := []string{"example.com/hello@v1.0.0", "example.com/greet@v1.0.0"}
	clusterDownload(t, c.lb.URL, up, mods...)
	var out string
	var before int
	pollFor(t, 10*time.Second, func() bool {
		var code int
		code, out = c.auditVerify(t)
		if code != 0 {
			return false
		}
		n := records(t, out)
		stable := n == before
		before = n
		return stable
	}, func() string { return out })

	pg.Stop(t)
	const gets = 30
	for i := range gets {
		resp, err := httpClient.Get(c.lb.URL + "/example.com/hello/@v/v1.0.0.mod")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, up.Module("example.com/hello", "v1.0.0").Mod) {
			t.Fatalf("PostgreSQL down: GET %d of a cached .mod = %d %q", i, resp.StatusCode, body)
		}
	}
	clusterDownload(t, c.lb.URL, up, mods...) // the go command too, fresh cache
	for i, p := range c.replicas {
		resp, err := http.Get(p.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "postgres: degraded") {
			t.Errorf("PostgreSQL down: replica %d /readyz = %d %q, want 200 with postgres degraded", i+1, resp.StatusCode, body)
		}
	}
	if s := c.lb.States(t); s["b1"] != "UP" || s["b2"] != "UP" || s["b3"] != "UP" {
		t.Errorf("PostgreSQL down: the balancer sees %v, want every replica up", s)
	}

	pg.Start(t)
	pollFor(t, 20*time.Second, func() bool {
		code, o := c.auditVerify(t)
		out = o
		return code == 0 && records(t, o) >= before+gets
	}, func() string { return fmt.Sprintf("want at least %d records:\n%s", before+gets, out) })
}

// TestClusterMigratesOnce: three replicas starting at once on an empty
// database apply each migration once between them.
func TestClusterMigratesOnce(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	c := newCluster(t, up, 3, clusterOptions{together: true})
	files, err := filepath.Glob("../../internal/state/postgres/migrations/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("no migrations: %v", err)
	}
	applied := map[string]int{}
	for _, p := range c.replicas {
		for _, line := range strings.Split(p.logs.String(), "\n") {
			if m := regexp.MustCompile(`"msg":"applied schema migration".*"migration":"([^"]+)"`).FindStringSubmatch(line); m != nil {
				applied[m[1]]++
			}
		}
	}
	if len(applied) != len(files) {
		t.Errorf("applied %d migrations between three replicas, want %d: %v", len(applied), len(files), applied)
	}
	for name, n := range applied {
		if n != 1 {
			t.Errorf("migration %s applied %d times", name, n)
		}
	}
	if got := c.psql(t, "select count(*) from schema_migrations"); got != strconv.Itoa(len(files)) {
		t.Errorf("schema_migrations has %s rows, want %d", got, len(files))
	}
	clusterDownload(t, c.lb.URL, up, "example.com/hello@v1.0.0")
}

// pollFor calls cond until it is true, for up to d; then fails with msg().
func pollFor(t *testing.T, d time.Duration, cond func() bool, msg func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, msg())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestClusterMovedTag: a private module's tag moved in Git after replica A
// stored the version is refused by replica B, which has no copy of its own
// (each keeps module files on its own disk here; only the ledger is
// shared), while A keeps serving what it recorded.
func TestClusterMovedTag(t *testing.T) {
	const user, password = "modgate", "git-secret"
	gs := testenv.NewGitServer(t, user, password)
	repo := gs.Repo(t, "platform/auth")
	repo.Commit("first", map[string]string{
		"go.mod":  "module " + testenv.GitHost + "/platform/auth\n\ngo 1.21\n",
		"auth.go": "package auth\n\nfunc Version() string { return \"v1.0.0\" }\n",
	})
	repo.Tag("v1.0.0", "HEAD")
	pwFile := filepath.Join(t.TempDir(), "git-password")
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	// git runs with the replica's environment, whose proxy is dead; the
	// Git server is on loopback.
	c := newCluster(t, up, 2, clusterOptions{disk: true, env: []string{"NO_PROXY=127.0.0.1", "no_proxy=127.0.0.1"}, yaml: fmt.Sprintf(`private:
  sources:
    - name: corp
      patterns: ["%s/*/*"]
      url: https://%s/{path}.git
      username: %s
      password_file: %s
      ca_file: %s
`, testenv.GitHost, gs.Addr(), user, pwFile, gs.CAFile)})
	a, b := c.replicas[0], c.replicas[1]
	zip := "/" + testenv.GitHost + "/platform/auth/@v/v1.0.0.zip"
	get := func(p *process) (int, []byte) {
		t.Helper()
		resp, err := httpClient.Get(p.URL + zip)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, body
	}
	code, first := get(a)
	if code != http.StatusOK {
		t.Fatalf("v1.0.0 through replica A: %d %s\n%s", code, first, a.logs)
	}

	repo.Commit("rewritten history", map[string]string{"auth.go": "package auth\n\nfunc Version() string { return \"evil\" }\n"})
	repo.Tag("v1.0.0", "HEAD")
	code, body := get(b)
	if code == http.StatusOK {
		t.Fatalf("replica B served the moved tag's code (%d bytes; A's copy was %d)", len(body), len(first))
	}
	if !strings.Contains(string(body), "the tag was moved on the Git server") {
		t.Errorf("replica B: %d %q, want a refusal saying the tag moved", code, body)
	}
	if code, again := get(a); code != http.StatusOK || !bytes.Equal(again, first) {
		t.Errorf("replica A after the move: %d, same bytes %v; want its recorded copy", code, bytes.Equal(again, first))
	}
}
