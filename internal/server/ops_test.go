package server_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/audit"
	"github.com/modgate/modgate/internal/config"
	"github.com/modgate/modgate/internal/server"
	"github.com/modgate/modgate/internal/testenv"
)

// startLogged is startModgate with the process log (at info) in a buffer.
func startLogged(t *testing.T, up *testenv.Upstream, edit func(*config.Config)) (*instance, *testenv.LogBuffer) {
	t.Helper()
	logs := new(testenv.LogBuffer)
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	cfg.Upstream.GOPROXY = up.URL()
	cfg.SumDB.GOSUMDB = up.VerifierKey()
	cfg.Upstream.Retries = 0
	cfg.Server.DrainPeriod = config.Duration{}
	if edit != nil {
		edit(&cfg)
	}
	if err := cfg.Resolve(config.GoEnv{}); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("invalid test configuration: %v", err)
	}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(logs, t.Output()), &slog.HandlerOptions{Level: slog.LevelInfo}))
	srv, err := server.New(cfg, log)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	in := &instance{URL: "http://" + ln.Addr().String(), DataDir: cfg.DataDir, srv: srv, stop: stop, done: make(chan error, 1)}
	go func() { in.done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() { in.shutdown(t) })
	return in, logs
}

// TestMetricsFamiliesAtStart: on a fresh server every metric family the
// README lists for alerting is in the first scrape, at zero, so that
// increase() sees the first event; policy rules are known by name.
func TestMetricsFamiliesAtStart(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	in, _ := startPolicy(t, up, `
policy:
  rules:
    - name: no-evil
      deny:
        modules: [example.com/evil]
`, nil)
	_, body, _ := in.get(t, "/metrics")
	text := string(body)
	for _, want := range []string{
		`modgate_verification_failures_total{artifact="zip"} 0`,
		`modgate_verification_failures_total{artifact="mod"} 0`,
		`modgate_moved_versions_total{file="zip"} 0`,
		`modgate_moved_versions_total{file="go.mod"} 0`,
		`modgate_policy_decisions_total{rule="no-evil",verdict="block"} 0`,
		`modgate_auth_refusals_total{status="401"} 0`,
		`modgate_auth_refusals_total{status="403"} 0`,
		`modgate_audit_errors_total{kind="dropped"} 0`,
		`modgate_audit_errors_total{kind="unwritable"} 0`,
		`modgate_audit_errors_total{kind="anchor"} 0`,
		`modgate_prefetched_total{artifact="mod"} 0`,
		`modgate_fills_total{artifact="zip",result="error"} 0`,
		`modgate_sumdb_security_events_total 0`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("a fresh server's /metrics lacks %s", want)
		}
	}
}

// TestSumDBCacheLabel: checksum-database requests are counted as hit or
// miss like module files, not with an empty cache label.
func TestSumDBCacheLabel(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	in := startModgate(t, up, nil)
	lookup := "/sumdb/" + up.SumDBName() + "/lookup/example.com/hello@v1.0.0"
	for range 2 {
		if code, body, _ := in.get(t, lookup); code != http.StatusOK {
			t.Fatalf("GET %s = %d %s", lookup, code, body)
		}
	}
	in.get(t, "/sumdb/"+up.SumDBName()+"/supported")
	_, body, _ := in.get(t, "/metrics")
	text := string(body)
	for _, want := range []string{
		`modgate_requests_total{artifact="sumdb",cache="miss",status="200"} 1`,
		`modgate_requests_total{artifact="sumdb",cache="hit",status="200"} 2`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(text, `modgate_requests_total{artifact="sumdb",cache=""`) {
		t.Errorf("checksum-database requests counted with an empty cache label:\n%s", grepLines(text, `artifact="sumdb"`))
	}
}

func grepLines(text, sub string) string {
	var out []string
	for line := range strings.SplitSeq(text, "\n") {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// TestRetryLogComponentOnce: a retry's log line names its component once.
func TestRetryLogComponentOnce(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	up.SetStatus("/example.com/hello/@v/list", http.StatusServiceUnavailable)
	in, logs := startLogged(t, up, func(c *config.Config) { c.Upstream.Retries = 1 })
	in.get(t, "/example.com/hello/@v/list")
	line := grepLines(logs.String(), "retrying upstream request")
	if line == "" {
		t.Fatalf("no retry logged:\n%s", logs)
	}
	for l := range strings.SplitSeq(line, "\n") {
		if n := strings.Count(l, "component=upstream"); n != 1 {
			t.Errorf("retry line has component=upstream %d times, want 1: %s", n, l)
		}
	}
}

// TestUpstreamRecorded: the access-log line and the audit record of a miss
// name the upstream that served it (a hit names none).
func TestUpstreamRecorded(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	// Without zip-ahead, so that the go command's zip request is the miss.
	in, logs := startLogged(t, up, func(c *config.Config) { c.Upstream.ZipAheadWorkers = 0 })
	mustGo(t, t.TempDir(), goEnv(t, in, up), "mod", "download", "example.com/hello@v1.0.0")
	want := up.URL()
	rec := waitAuditRecord(t, in, "the zip's miss", func(r audit.Record) bool {
		return r.File == "zip" && r.Module == "example.com/hello" && r.Result == audit.ResultMiss
	})
	if rec.Upstream != want {
		t.Errorf("audit record of the zip's miss: upstream = %q, want %q", rec.Upstream, want)
	}
	// A list fetched for this request names its upstream too.
	if code, _, _ := in.get(t, "/example.com/hello/@v/list"); code != http.StatusOK {
		t.Fatalf("list = %d", code)
	}
	list := waitAuditRecord(t, in, "the list's miss", func(r audit.Record) bool {
		return r.File == "list" && r.Module == "example.com/hello" && r.Result == audit.ResultMiss
	})
	if list.Upstream != want {
		t.Errorf("audit record of the list's miss: upstream = %q, want %q", list.Upstream, want)
	}
	pollUntil(t, 5*time.Second, func() string {
		for l := range strings.SplitSeq(grepLines(logs.String(), "msg=request"), "\n") {
			if strings.Contains(l, "v1.0.0.zip") && strings.Contains(l, "cache=miss") {
				if strings.Contains(l, "upstream="+want) {
					return ""
				}
				return "access line without the upstream: " + l
			}
		}
		return "no access line for the zip"
	})
}

// TestMetricsAccess: with anonymous access off, /metrics needs the metrics
// (or admin) scope; metrics.access: open opens it; metrics.listen moves it
// to a listener of its own.
func TestMetricsAccess(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	closed := func(c *config.Config) { c.Auth.Anonymous.Enabled = false }
	in := startModgate(t, up, closed)
	c := http.DefaultClient
	metricsTok := createToken(t, in, "prometheus", time.Time{}, "metrics")
	readTok := createToken(t, in, "ci", time.Time{}, "read:*")
	adminTok := createToken(t, in, "ops", time.Time{}, "admin")
	if r := call(t, c, "GET", in.URL+"/metrics", ""); r.status != http.StatusUnauthorized || strings.Contains(r.body, "modgate_") {
		t.Errorf("/metrics without credentials = %d %.80q, want 401 without metrics", r.status, r.body)
	}
	if r := call(t, c, "GET", in.URL+"/metrics", "", bearer(readTok)...); r.status != http.StatusForbidden {
		t.Errorf("/metrics with a read token = %d, want 403", r.status)
	}
	for name, tok := range map[string]string{"metrics": metricsTok, "admin": adminTok} {
		if r := call(t, c, "GET", in.URL+"/metrics", "", bearer(tok)...); r.status != http.StatusOK || !strings.Contains(r.body, "modgate_requests_total") {
			t.Errorf("/metrics with a %s token = %d, want 200 with metrics", name, r.status)
		}
	}
	// The metrics scope reads nothing else.
	if r := call(t, c, "GET", in.URL+"/example.com/hello/@v/list", "", bearer(metricsTok)...); r.status < 400 {
		t.Errorf("a module list with a metrics token = %d, want a refusal", r.status)
	}
	if r := call(t, c, "GET", in.URL+"/sumdb/"+up.SumDBName()+"/supported", "", bearer(metricsTok)...); r.status < 400 {
		t.Errorf("/sumdb/ with a metrics token = %d, want a refusal", r.status)
	}

	open := startModgate(t, up, func(c *config.Config) { closed(c); c.Metrics.Access = config.MetricsAccessOpen })
	if r := call(t, c, "GET", open.URL+"/metrics", ""); r.status != http.StatusOK {
		t.Errorf("/metrics with metrics.access open = %d, want 200", r.status)
	}
	scoped := startModgate(t, up, func(c *config.Config) { c.Metrics.Access = config.MetricsAccessScope })
	if r := call(t, c, "GET", scoped.URL+"/metrics", ""); r.status != http.StatusUnauthorized {
		t.Errorf("/metrics with metrics.access scope and anonymous access on = %d, want 401", r.status)
	}

	sep := startModgate(t, up, func(c *config.Config) { closed(c); c.Metrics.Listen = "127.0.0.1:0" })
	var addr string
	pollUntil(t, 10*time.Second, func() string {
		if addr = sep.srv.MetricsAddr(); addr == "" {
			return "metrics.listen not bound"
		}
		return ""
	})
	if r := call(t, c, "GET", "http://"+addr+"/metrics", ""); r.status != http.StatusOK || !strings.Contains(r.body, "modgate_sumdb_security_events_total") {
		t.Errorf("/metrics on metrics.listen = %d, want 200 with metrics", r.status)
	}
	if r := call(t, c, "GET", "http://"+addr+"/example.com/hello/@v/list", ""); r.status != http.StatusNotFound {
		t.Errorf("a module on metrics.listen = %d, want 404: it serves /metrics only", r.status)
	}
	if r := call(t, c, "GET", sep.URL+"/metrics", "", bearer(adminTokOf(t, sep))...); r.status == http.StatusOK {
		t.Errorf("/metrics on the main listener with metrics.listen set = %d, want it not served", r.status)
	}
}

func adminTokOf(t *testing.T, in *instance) string {
	return createToken(t, in, "ops", time.Time{}, "admin")
}

// TestDrainOnShutdown: after the shutdown signal a poller sees /readyz
// turn 503 while module requests (the real go command's) still succeed
// for the drain period; then connections are refused.
func TestDrainOnShutdown(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	const drain = 4 * time.Second
	in := startModgate(t, up, func(c *config.Config) { c.Server.DrainPeriod = config.Duration{Duration: drain} })
	poll := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	status := func(path string) (int, error) {
		resp, err := poll.Get(in.URL + path)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if code, err := status("/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz before shutdown = %d, %v", code, err)
	}

	stop := in.stop
	in.stop = nil
	start := time.Now()
	stop()
	pollUntil(t, time.Second, func() string {
		if code, err := status("/readyz"); code != http.StatusServiceUnavailable {
			return fmt.Sprintf("/readyz = %d, %v; want 503 at once", code, err)
		}
		return ""
	})
	// Still serving: a module request and the go command.
	if code, err := status("/example.com/hello/@v/list"); code != http.StatusOK {
		t.Errorf("module list during the drain = %d, %v; want 200", code, err)
	}
	mustGo(t, t.TempDir(), goEnv(t, in, up), "mod", "download", "example.com/hello@v1.0.0")
	if time.Since(start) >= drain {
		t.Fatalf("the checks during the drain took %v, longer than the drain period %v", time.Since(start), drain)
	}
	if code, _ := status("/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz later in the drain = %d, want 503", code)
	}
	// Then the listener closes.
	pollUntil(t, drain+10*time.Second, func() string {
		_, err := status("/readyz")
		if errors.Is(err, syscall.ECONNREFUSED) {
			return ""
		}
		return fmt.Sprintf("/readyz after the drain: err %v, want connection refused", err)
	})
	if d := time.Since(start); d < drain {
		t.Errorf("connections refused after %v, before the drain period %v ended", d, drain)
	}
	if err := <-in.done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	in.srv.Close()
}

// TestReadyWaitsForVulnDB: with a vulnerability database configured,
// /readyz answers 503 until it is loaded, so no traffic arrives while its
// rules cannot block anything and /vulndb/ answers 503.
func TestReadyWaitsForVulnDB(t *testing.T) {
	_, files := serveVulnDB(t, osvVuln{id: "GO-2099-0201", module: "example.com/vuln", fixed: "v1.0.1"})
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	t.Cleanup(free)
	db := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		data, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(data)
	}))
	t.Cleanup(db.Close)
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	in := startModgate(t, up, func(c *config.Config) { c.Policy.VulnDB.URL = db.URL })
	pollUntil(t, 5*time.Second, func() string {
		if code, _, _ := in.get(t, "/healthz"); code != http.StatusOK {
			return "not serving yet"
		}
		return ""
	})
	code, body, _ := in.get(t, "/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(string(body), "vulnerability database") {
		t.Errorf("/readyz before the vulnerability database is loaded = %d %q, want 503 naming it", code, body)
	}
	if code, _, _ := in.get(t, "/vulndb/index/db.json"); code != http.StatusServiceUnavailable {
		t.Errorf("/vulndb/ before it is loaded = %d, want 503", code)
	}
	free()
	pollUntil(t, 20*time.Second, func() string {
		if code, body, _ := in.get(t, "/readyz"); code != http.StatusOK {
			return fmt.Sprintf("/readyz = %d %s", code, body)
		}
		return ""
	})
	if code, _, _ := in.get(t, "/vulndb/index/db.json"); code != http.StatusOK {
		t.Errorf("/vulndb/ once ready = %d, want 200", code)
	}
}

// signedHook posts payload to /webhook/github signed with secret under
// delivery id (none when ""), and returns status and body.
func signedHook(t *testing.T, in *instance, payload, secret, delivery string) (int, string) {
	t.Helper()
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(payload))
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, in.URL+"/webhook/github", bytes.NewReader([]byte(payload)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	if delivery != "" {
		req.Header.Set("X-GitHub-Delivery", delivery)
	}
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestWebhookReplayThroughServer: a captured signed delivery, sent again
// (with the same delivery ID, another one, or none), is answered 200
// "duplicate delivery, ignored" and makes no request to the Git server;
// the record is a small file under the data directory.
func TestWebhookReplayThroughServer(t *testing.T) {
	e := startPrivate(t, gitPassword)
	mod := testenv.GitHost + "/platform/auth"
	env := e.clientEnv(t)
	mustGo(t, t.TempDir(), env, "list", "-m", "-versions", mod)
	e.auth.Commit("third", map[string]string{"auth.go": "package auth\n\nfunc Version() string { return \"v1.2.0\" }\n"})
	e.auth.Tag("v1.2.0", "HEAD")

	repoURL := "https://" + e.git.Addr() + "/platform/auth.git"
	payload := fmt.Sprintf(`{"ref":"refs/tags/v1.2.0","after":"%s","repository":{"clone_url":%q}}`, strings.Repeat("c", 40), repoURL)
	if code, body := signedHook(t, e.mg, payload, hookSecret, "d-1"); code != http.StatusAccepted {
		t.Fatalf("first delivery = %d %s, want 202", code, body)
	}
	if got := strings.TrimSpace(mustGo(t, t.TempDir(), env, "list", "-m", "-versions", mod)); !strings.Contains(got, "v1.2.0") {
		t.Fatalf("versions after the webhook = %q, want v1.2.0", got)
	}
	for _, id := range []string{"d-1", "d-1", "d-2", ""} {
		code, body := signedHook(t, e.mg, payload, hookSecret, id)
		if code != http.StatusOK || !strings.Contains(body, "duplicate delivery, ignored") {
			t.Errorf("replayed delivery (id %q) = %d %q, want 200 \"duplicate delivery, ignored\"", id, code, body)
		}
	}
	// Background work of the first delivery (prefetching v1.2.0) may still
	// be talking to Git: wait until the Git server has been quiet for a
	// moment, then replay and compare.
	settled := len(e.git.Requests())
	for quiet := 0; quiet < 5; {
		time.Sleep(100 * time.Millisecond)
		if n := len(e.git.Requests()); n != settled {
			settled, quiet = n, 0
			continue
		}
		quiet++
	}
	for range 3 {
		signedHook(t, e.mg, payload, hookSecret, "d-3")
	}
	if after := len(e.git.Requests()); after != settled {
		t.Errorf("replays made %d requests to the Git server: %v", after-settled, e.git.Requests()[settled:])
	}
	data, err := os.ReadFile(filepath.Join(e.mg.DataDir, "webhook", "deliveries"))
	if err != nil || !strings.Contains(string(data), "id:github:") {
		t.Errorf("deliveries record = %q, %v; want the delivery recorded under the data directory", data, err)
	}
}

// TestPrivateErrorBodyHidesInternals: a failing private fetch gives the
// go command the one-line reason, with no Git URL and no git command
// line; the server log has both.
func TestPrivateErrorBodyHidesInternals(t *testing.T) {
	e := startPrivate(t, gitPassword)
	// A commit the repository does not have: git runs and fails.
	q := testenv.GitHost + "/platform/auth@" + strings.Repeat("d", 12)
	stderr := failGo(t, t.TempDir(), e.clientEnv(t), "mod", "download", q)
	for _, leak := range []string{e.git.Addr(), "https://", ".git", "git fetch", "git archive", "git ls-remote", "git rev-parse", "git cat-file"} {
		if strings.Contains(stderr, leak) {
			t.Errorf("the go command's output names %q:\n%s", leak, stderr)
		}
	}
	if !strings.Contains(stderr, "not found") {
		t.Errorf("the go command's output does not give the reason (not found):\n%s", stderr)
	}
	// Credentials the Git server refuses: the reason, not the URL.
	bad := startPrivate(t, "not-the-password")
	stderr2 := failGo(t, t.TempDir(), bad.clientEnv(t), "mod", "download", testenv.GitHost+"/platform/auth@v1.0.0")
	if strings.Contains(stderr2, bad.git.Addr()) || strings.Contains(stderr2, ".git") || !strings.Contains(stderr2, "authentication rejected") {
		t.Errorf("with refused credentials the go command said:\n%s\nwant \"authentication rejected\" and no Git URL", stderr2)
	}
	// The details are the request's error, in its access-log line and its
	// audit record.
	rec := waitAuditRecord(t, e.mg, "the failed query", func(r audit.Record) bool {
		return r.Module == testenv.GitHost+"/platform/auth" && r.Result == audit.ResultNotFound
	})
	if !strings.Contains(rec.Detail, e.git.Addr()) {
		t.Errorf("the failure's details (%q) do not name the Git server", rec.Detail)
	}
}

// TestErrorBodiesEveryRoute: a failing request on every route (module
// protocol, checksum database, vulnerability database, webhook,
// authentication, policy explanation, readiness) gets the one error
// format: a status from the one table and one text/plain line starting
// "modgate: ", not cached.
func TestErrorBodiesEveryRoute(t *testing.T) {
	dbURL, _ := serveVulnDB(t, osvVuln{id: "GO-2099-0301", module: "example.com/vuln", fixed: "v1.0.1"})
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	hookFile := filepath.Join(t.TempDir(), "hook-secret")
	if err := os.WriteFile(hookFile, []byte(hookSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	in := startModgate(t, up, func(c *config.Config) {
		c.Policy.VulnDB.URL = dbURL
		c.Private.Webhook.SecretFile = hookFile
	})
	closed := startModgate(t, up, func(c *config.Config) { c.Auth.Anonymous.Enabled = false })
	pollUntil(t, 20*time.Second, func() string {
		if code, body, _ := in.get(t, "/readyz"); code != http.StatusOK {
			return fmt.Sprintf("/readyz = %d %s", code, body)
		}
		return ""
	})
	c := http.DefaultClient
	tests := []struct {
		name, method, url string
		want              int
	}{
		{"module path", "GET", in.URL + "/example.com/hello/@v/v1.0.0.bogus", 400},
		{"module method", "POST", in.URL + "/example.com/hello/@v/list", 405},
		{"module missing", "GET", in.URL + "/example.com/nothere/@v/list", 404},
		{"sumdb unknown database", "GET", in.URL + "/sumdb/other.example/latest", 404},
		{"sumdb bad lookup", "GET", in.URL + "/sumdb/" + up.SumDBName() + "/lookup/example.com/hello", 400},
		{"sumdb method", "PUT", in.URL + "/sumdb/" + up.SumDBName() + "/latest", 405},
		{"vulndb missing", "GET", in.URL + "/vulndb/ID/GO-0000-0000.json", 404},
		{"vulndb method", "DELETE", in.URL + "/vulndb/index/db.json", 405},
		{"webhook provider", "POST", in.URL + "/webhook/svn", 404},
		{"webhook signature", "POST", in.URL + "/webhook/github", 401},
		{"explain", "GET", in.URL + "/policy/explain?module=..&version=v1.0.0", 400},
		{"authentication", "GET", closed.URL + "/example.com/hello/@v/list", 401},
		{"metrics scope", "GET", closed.URL + "/metrics", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := call(t, c, tt.method, tt.url, "{}")
			if r.status != tt.want {
				t.Errorf("%s %s = %d %q, want %d", tt.method, tt.url, r.status, r.body, tt.want)
			}
			if !strings.HasPrefix(r.body, "modgate: ") || !strings.HasSuffix(r.body, "\n") || strings.Count(r.body, "\n") != 1 {
				t.Errorf("body %q is not one line starting \"modgate: \"", r.body)
			}
			for k, v := range map[string]string{
				"Content-Type":           "text/plain; charset=utf-8",
				"Cache-Control":          "no-store",
				"X-Content-Type-Options": "nosniff",
			} {
				if got := r.header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
}
