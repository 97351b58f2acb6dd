package server_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/audit"
	"github.com/modgate/modgate/internal/config"
	"github.com/modgate/modgate/internal/testenv"
)

// TestPurge: a version purged from the command line while the server runs
// is gone from list and latest at the next request, refused with a clear
// reason (in any case of the module path), and not fetched again; with
// --allow-refetch it comes back.
func TestPurge(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	data := filepath.Join(t.TempDir(), "data")
	in := startModgate(t, up, func(c *config.Config) { c.DataDir = data })
	cfgFile := maintenanceConfig(t, up, data)
	env := func() []string { return goEnv(t, in, up) } // a fresh module cache each time

	versions := func() string {
		t.Helper()
		return strings.TrimSpace(mustGo(t, t.TempDir(), env(), "list", "-m", "-versions", "example.com/hello"))
	}
	latest := func() string {
		t.Helper()
		return strings.TrimSpace(mustGo(t, t.TempDir(), env(), "list", "-m", "example.com/hello@latest"))
	}
	if got, want := versions(), "example.com/hello v1.0.0 v1.1.0 v1.2.0-rc.1"; got != want {
		t.Fatalf("before the purge: %q, want %q", got, want)
	}
	if got := latest(); got != "example.com/hello v1.1.0" {
		t.Fatalf("latest before the purge = %q", got)
	}
	mustGo(t, t.TempDir(), env(), "mod", "download", "example.com/hello@v1.1.0")
	const key = "example.com/hello/@v/v1.1.0.zip"
	if !in.stored(key) {
		t.Fatalf("%s not stored", key)
	}
	// Fill the server's memory with the version's small files.
	in.get(t, "/example.com/hello/@v/v1.1.0.info")
	in.get(t, "/example.com/hello/@v/v1.1.0.mod")

	// Bad input changes nothing.
	for _, arg := range []string{"example.com/hello@latest", "example.com/hello@master", "example.com/hello@", "not a path@v1.0.0"} {
		if code, _, stderr := runCLI(t, "purge", "--config", cfgFile, arg); code != 2 || !strings.Contains(stderr, "invalid purge request") {
			t.Errorf("purge %s: exit %d, %q; want 2 and a clear error", arg, code, stderr)
		}
	}
	if !in.stored(key) {
		t.Fatal("a refused purge removed files")
	}

	code, stdout, stderr := runCLI(t, "purge", "--config", cfgFile, "--reason", "legal takedown T-1", "example.com/hello@v1.1.0")
	if code != 0 {
		t.Fatalf("purge: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, ext := range []string{"info", "mod", "zip"} {
		if in.stored("example.com/hello/@v/v1.1.0." + ext) {
			t.Errorf("purge left the .%s", ext)
		}
	}
	// The server audits the purge it did not make itself.
	pollUntil(t, 10*time.Second, func() string {
		for _, rec := range readAuditLog(t, auditDir(in)) {
			if rec.Result == audit.ResultAdmin && rec.Action == "module.purge" &&
				strings.Contains(rec.Detail, "example.com/hello@v1.1.0: purged, tombstoned by ") && strings.Contains(rec.Detail, "reason: legal takedown T-1") {
				return ""
			}
		}
		return "no audit record of the command-line purge"
	})
	up.ResetLog()
	if got, want := versions(), "example.com/hello v1.0.0 v1.2.0-rc.1"; got != want {
		t.Errorf("list after the purge = %q, want %q", got, want)
	}
	if got := latest(); got != "example.com/hello v1.0.0" {
		t.Errorf("latest after the purge = %q, want v1.0.0", got)
	}
	stderr = failGo(t, t.TempDir(), env(), "mod", "download", "example.com/hello@v1.1.0")
	if !strings.Contains(stderr, "410 Gone") || !strings.Contains(stderr, "modgate: example.com/hello@v1.1.0: purged by operator: legal takedown T-1") {
		t.Errorf("go mod download of the purged version:\n%s\nwant 410 purged by operator with the reason", stderr)
	}
	// Other spellings: a case variant of the path, each file, @latest as a query.
	for _, p := range []string{
		"/example.com/!hello/@v/v1.1.0.info", "/example.com/hello/@v/v1.1.0.mod",
		"/example.com/hello/@v/v1.1.0.zip", "/example.com/!h!e!l!l!o/@v/v1.1.0.zip",
	} {
		if status, body, _ := in.get(t, p); status != http.StatusGone || !strings.Contains(string(body), "purged by operator") {
			t.Errorf("GET %s = %d %q, want 410 purged by operator", p, status, body)
		}
	}
	for _, p := range up.Requests() {
		if strings.Contains(p, "v1.1.0.") {
			t.Errorf("the purged version was fetched again: %s", p)
		}
	}

	// --allow-refetch lifts the tombstone: the version comes back.
	if code, stdout, stderr := runCLI(t, "purge", "--config", cfgFile, "--allow-refetch", "example.com/hello@v1.1.0"); code != 0 || !strings.Contains(stdout, "tombstone lifted") {
		t.Fatalf("purge --allow-refetch: exit %d\n%s%s", code, stdout, stderr)
	}
	mustGo(t, t.TempDir(), env(), "mod", "download", "example.com/hello@v1.1.0")
	if got, want := versions(), "example.com/hello v1.0.0 v1.1.0 v1.2.0-rc.1"; got != want {
		t.Errorf("list after --allow-refetch = %q, want %q", got, want)
	}
}

// TestPurgeModuleAndAdminAPI: the admin API needs the admin scope and
// answers a whole-module purge, which refuses every version, a
// pseudo-version and later ones included.
func TestPurgeModuleAndAdminAPI(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	data := filepath.Join(t.TempDir(), "data")
	in := startModgate(t, up, func(c *config.Config) {
		c.DataDir = data
		c.Auth.Tokens.Enabled = true
	})
	mustGo(t, t.TempDir(), goEnv(t, in, up), "mod", "download", "example.com/hello@v1.0.0")
	cfgFile := maintenanceConfig(t, up, data)
	if err := os.WriteFile(cfgFile, append(mustRead(t, cfgFile), "auth:\n  tokens:\n    enabled: true\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	token := func(name, scope string) string {
		t.Helper()
		code, stdout, stderr := runCLI(t, "token", "create", "--config", cfgFile, "--name", name, "--scope", scope)
		if code != 0 {
			t.Fatalf("token create: %s", stderr)
		}
		for f := range strings.FieldsSeq(stdout) {
			if strings.HasPrefix(f, "mgt_") {
				return f
			}
		}
		t.Fatalf("no token in %q", stdout)
		return ""
	}
	tok, reader := token("ops", "admin"), token("ci", "read")

	purge := func(token, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodDelete, in.URL+path, nil)
		if token != "" {
			req.SetBasicAuth("x", strings.TrimSpace(token))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		return resp.StatusCode, b.String()
	}
	if status, _ := purge("", "/admin/modules/example.com/hello"); status != http.StatusUnauthorized {
		t.Errorf("anonymous purge = %d, want 401", status)
	}
	if status, _ := purge(reader, "/admin/modules/example.com/hello"); status != http.StatusForbidden {
		t.Errorf("purge with a read token = %d, want 403", status)
	}
	if status, body := purge(tok, "/admin/modules/example.com/hello@latest"); status != http.StatusBadRequest {
		t.Errorf("purge of a query = %d %q, want 400", status, body)
	}
	if !in.stored("example.com/hello/@v/v1.0.0.zip") {
		t.Fatal("refused purges removed files")
	}
	if status, body := purge(tok, "/admin/modules/example.com/Hello?reason=malicious"); status != http.StatusOK || !strings.Contains(body, `"tombstoned":true`) {
		t.Fatalf("purge of the module = %d %q", status, body)
	}
	if in.stored("example.com/hello/@v/v1.0.0.zip") {
		t.Error("a module purge under another case left the files")
	}
	up.ResetLog()
	for _, p := range []string{
		"/example.com/hello/@v/v1.0.0.info", "/example.com/hello/@v/v0.0.0-20240101000000-abcdefabcdef.info",
		"/example.com/hello/@v/v1.9.0.mod", "/example.com/hello/@latest", "/example.com/hello/@v/master.info",
	} {
		if status, _, _ := in.get(t, p); status != http.StatusGone {
			t.Errorf("GET %s after a module purge = %d, want 410", p, status)
		}
	}
	if status, body, _ := in.get(t, "/example.com/hello/@v/list"); status != http.StatusOK || strings.TrimSpace(string(body)) != "" {
		t.Errorf("list after a module purge = %d %q, want empty", status, body)
	}
	for _, p := range up.Requests() {
		if strings.Contains(p, "/@v/") && !strings.HasSuffix(p, "/list") || strings.HasSuffix(p, "@latest") {
			t.Errorf("asked the upstream for %s after the module was purged", p)
		}
	}
	if _, body, _ := in.get(t, "/metrics"); !strings.Contains(string(body), "modgate_purges_total 1") {
		t.Errorf("purges not counted:\n%s", grepLines(string(body), "purges"))
	}
	in.shutdown(t)
	var purges []string
	for _, rec := range readAuditLog(t, auditDir(in)) {
		if rec.Action == "module.purge" {
			purges = append(purges, rec.Identity+": "+rec.Detail)
		}
	}
	if len(purges) != 1 || !strings.HasPrefix(purges[0], "ops: example.com/Hello: removed ") || !strings.Contains(purges[0], "reason: malicious") {
		t.Errorf("audit records of purges = %q, want one by ops with the reason", purges)
	}
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
