package testenv_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/testenv"
)

// get fetches up.URL()+path and returns the status and body.
func get(t *testing.T, up *testenv.Upstream, method, path string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, up.URL()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return resp.StatusCode, string(body), resp.Header
}

func TestUpstreamProtocol(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	hello100 := up.Module("example.com/hello", "v1.0.0")
	hello110 := up.Module("example.com/hello", "v1.1.0")
	upper := up.Module("example.com/Upper", "v1.0.0")
	legacy := up.Module("example.com/legacy", "v2.0.0+incompatible")
	if hello100 == nil || hello110 == nil || upper == nil || legacy == nil {
		t.Fatal("Module does not find a fixture")
	}

	tests := []struct {
		name     string
		method   string // GET unless set
		path     string
		wantCode int
		wantBody string // exact, unless wantPart
		wantPart bool   // wantBody need only be contained in the body
		wantType string
	}{
		{name: "list", path: "/example.com/hello/@v/list", wantCode: 200, wantBody: "v1.0.0\nv1.1.0\nv1.2.0-rc.1\n", wantType: "text/plain; charset=utf-8"},
		{name: "latest is the highest release", path: "/example.com/hello/@latest", wantCode: 200, wantBody: string(hello110.Info), wantType: "application/json"},
		{name: "info", path: "/example.com/hello/@v/v1.0.0.info", wantCode: 200, wantBody: string(hello100.Info), wantType: "application/json"},
		{name: "mod", path: "/example.com/hello/@v/v1.0.0.mod", wantCode: 200, wantBody: string(hello100.Mod), wantType: "text/plain; charset=utf-8"},
		{name: "zip", path: "/example.com/hello/@v/v1.0.0.zip", wantCode: 200, wantBody: string(hello100.Zip), wantType: "application/zip"},
		{name: "head", method: "HEAD", path: "/example.com/hello/@v/v1.0.0.zip", wantCode: 200, wantBody: "", wantType: "application/zip"},
		{name: "escaped path", path: "/example.com/!upper/@v/v1.0.0.zip", wantCode: 200, wantBody: string(upper.Zip)},
		{name: "escaped path list", path: "/example.com/!upper/@v/list", wantCode: 200, wantBody: "v1.0.0\n"},
		{name: "unescaped upper case", path: "/example.com/Upper/@v/list", wantCode: 404, wantBody: "invalid module path", wantPart: true},
		{name: "major version suffix", path: "/example.com/hello/v2/@v/list", wantCode: 200, wantBody: "v2.0.0\n"},
		{name: "incompatible list", path: "/example.com/legacy/@v/list", wantCode: 200, wantBody: "v2.0.0+incompatible\n"},
		{name: "incompatible synthesized mod", path: "/example.com/legacy/@v/v2.0.0+incompatible.mod", wantCode: 200, wantBody: "module example.com/legacy\n"},
		{name: "unknown module", path: "/example.com/nope/@v/list", wantCode: 404, wantBody: "example.com/nope: unknown module\n", wantType: "text/plain; charset=utf-8"},
		{name: "unknown version", path: "/example.com/hello/@v/v9.9.9.info", wantCode: 404, wantBody: "example.com/hello@v9.9.9: unknown version\n"},
		{name: "branch query", path: "/example.com/hello/@v/main.info", wantCode: 404, wantBody: "example.com/hello@main: unknown version\n"},
		{name: "bad extension", path: "/example.com/hello/@v/v1.0.0.tar", wantCode: 404, wantBody: "invalid file", wantPart: true},
		{name: "not a module path", path: "/healthz", wantCode: 404, wantBody: "not a module proxy path", wantPart: true},
		{name: "post", method: "POST", path: "/example.com/hello/@v/list", wantCode: 405, wantBody: "method not allowed\n"},
		{name: "sumdb supported", path: "/sumdb/sum.test/supported", wantCode: 200, wantBody: ""},
		{name: "other sumdb", path: "/sumdb/sum.other/supported", wantCode: 404, wantBody: `checksum database "sum.other" not proxied here` + "\n"},
		{name: "sumdb latest", path: "/sumdb/sum.test/latest", wantCode: 200, wantBody: "— sum.test ", wantPart: true},
		{name: "sumdb lookup", path: "/sumdb/sum.test/lookup/example.com/hello@v1.0.0", wantCode: 200, wantBody: hello100.GoSum(), wantPart: true},
		{name: "sumdb lookup escaped", path: "/sumdb/sum.test/lookup/example.com/!upper@v1.0.0", wantCode: 200, wantBody: upper.GoSum(), wantPart: true},
		{name: "sumdb lookup unknown", path: "/sumdb/sum.test/lookup/example.com/nope@v1.0.0", wantCode: 404, wantBody: "example.com/nope@v1.0.0: file does not exist", wantPart: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = "GET"
			}
			code, body, h := get(t, up, method, tt.path)
			bodyOK := body == tt.wantBody || tt.wantPart && strings.Contains(body, tt.wantBody)
			if code != tt.wantCode || !bodyOK {
				t.Errorf("%s %s = %d %q, want %d %q (contained: %v)", method, tt.path, code, body, tt.wantCode, tt.wantBody, tt.wantPart)
			}
			if tt.wantType != "" && h.Get("Content-Type") != tt.wantType {
				t.Errorf("%s %s: Content-Type %q, want %q", method, tt.path, h.Get("Content-Type"), tt.wantType)
			}
		})
	}
}

func TestUpstreamLatest(t *testing.T) {
	parse := func(archive string) *testenv.Module {
		m, err := testenv.ParseModule([]byte(archive))
		if err != nil {
			t.Fatalf("ParseModule(%q): %v", archive, err)
		}
		return m
	}
	rc := parse("module example.com/a\nversion v1.1.0-rc.1\n-- a.go --\npackage a\n")
	pseudo := parse("module example.com/a\nversion v0.0.0-20240101000000-abcdefabcdef\n-- a.go --\npackage a\n")
	release := parse("module example.com/a\nversion v1.0.0\n-- a.go --\npackage a\n")

	up := testenv.NewUpstream(t, nil)
	steps := []struct {
		name       string
		add        *testenv.Module
		wantList   string
		wantLatest string
	}{
		{"pseudo-version only", pseudo, "", pseudo.Version},
		{"pre-release beats pseudo-version", rc, "v1.1.0-rc.1\n", rc.Version},
		{"release beats higher pre-release", release, "v1.0.0\nv1.1.0-rc.1\n", release.Version},
	}
	for _, step := range steps {
		up.AddModule(step.add)
		if got := up.Module(step.add.Path, step.add.Version); got != step.add {
			t.Errorf("%s: Module(%q, %q) = %v, want the added module", step.name, step.add.Path, step.add.Version, got)
		}
		if code, body, _ := get(t, up, "GET", "/example.com/a/@v/list"); code != 200 || body != step.wantList {
			t.Errorf("%s: list = %d %q, want 200 %q", step.name, code, body, step.wantList)
		}
		code, body, _ := get(t, up, "GET", "/example.com/a/@latest")
		if want := `{"Version":"` + step.wantLatest + `"`; code != 200 || !strings.HasPrefix(body, want) {
			t.Errorf("%s: @latest = %d %q, want 200 %s...", step.name, code, body, want)
		}
	}
}

func TestUpstreamFaults(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	hello := up.Module("example.com/hello", "v1.1.0")
	const (
		zip110 = "/example.com/hello/@v/v1.1.0.zip"
		mod110 = "/example.com/hello/@v/v1.1.0.mod"
		zip100 = "/example.com/hello/@v/v1.0.0.zip"
	)

	tests := []struct {
		name     string
		set      func()
		path     string
		wantCode int
		wantBody string
	}{
		{"down", func() { up.SetDown(true) }, zip100, 503, "upstream down for test\n"},
		{"down covers the checksum database", func() {}, "/sumdb/sum.test/supported", 503, "upstream down for test\n"},
		{"up again", func() { up.SetDown(false) }, zip100, 200, string(up.Module("example.com/hello", "v1.0.0").Zip)},
		{"forced status", func() { up.SetStatus("/example.com/hello/@v/v1.1.0", 403) }, zip110, 403, "/example.com/hello/@v/v1.1.0.zip: status 403 forced for test\n"},
		{"forced status spares other versions", func() {}, zip100, 200, string(up.Module("example.com/hello", "v1.0.0").Zip)},
		{"longest prefix wins", func() { up.SetStatus("example.com/", 500) }, zip110, 403, "/example.com/hello/@v/v1.1.0.zip: status 403 forced for test\n"},
		{"shorter prefix applies elsewhere", func() {}, "/example.com/greet/@v/list", 500, "/example.com/greet/@v/list: status 500 forced for test\n"},
		{"status removed", func() { up.SetStatus("/example.com/hello/@v/v1.1.0", 0); up.SetStatus("/example.com/", 0) }, zip110, 200, string(hello.Zip)},
		{"tampered zip", func() { up.SetTamper(hello.Path, hello.Version, true) }, zip110, 200, string(hello.TamperedZip())},
		{"tamper leaves mod alone", func() {}, mod110, 200, string(hello.Mod)},
		{"tampered mod", func() { up.SetTamperMod(hello.Path, hello.Version, true) }, mod110, 200, string(hello.TamperedMod())},
		{"tamper off", func() { up.SetTamper(hello.Path, hello.Version, false) }, zip110, 200, string(hello.Zip)},
		{"tamper mod off", func() { up.SetTamperMod(hello.Path, hello.Version, false) }, mod110, 200, string(hello.Mod)},
	}
	for _, tt := range tests {
		tt.set()
		if code, body, _ := get(t, up, "GET", tt.path); code != tt.wantCode || body != tt.wantBody {
			t.Errorf("%s: GET %s = %d %.80q, want %d %.80q", tt.name, tt.path, code, body, tt.wantCode, tt.wantBody)
		}
	}
}

func TestUpstreamDelay(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))

	up.SetDelay(100 * time.Millisecond)
	start := time.Now()
	if code, _, _ := get(t, up, "GET", "/example.com/hello/@v/list"); code != 200 {
		t.Errorf("delayed GET = %d, want 200", code)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("GET with SetDelay(100ms) answered after %v", d)
	}

	// A client that gives up is let go at once, and so is the server's Close.
	up.SetDelay(time.Hour)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", up.URL()+"/example.com/hello/@v/list", nil)
	start = time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		resp.Body.Close()
	}
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 10*time.Second {
		t.Errorf("GET with SetDelay(1h) and a 50ms deadline = %v after %v, want deadline exceeded", err, time.Since(start))
	}
}

func TestUpstreamLog(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	paths := []string{"/example.com/hello/@v/list", "/example.com/!upper/@latest", "/example.com/hello/@v/list", "/nope"}
	for _, p := range paths {
		get(t, up, "GET", p)
	}
	if got := up.Requests(); !slices.Equal(got, paths) {
		t.Errorf("Requests() = %q, want %q", got, paths)
	}
	counts := []struct {
		path string
		want int
	}{
		{"/example.com/hello/@v/list", 2},
		{"/example.com/!upper/@latest", 1},
		{"/example.com/hello/@v/v1.0.0.zip", 0},
	}
	for _, c := range counts {
		if got := up.Count(c.path); got != c.want {
			t.Errorf("Count(%q) = %d, want %d", c.path, got, c.want)
		}
	}
	up.ResetLog()
	if got := up.Requests(); len(got) != 0 {
		t.Errorf("Requests() after ResetLog = %q, want none", got)
	}
	up.SetDown(true) // failed requests are logged too
	get(t, up, "GET", "/example.com/hello/@v/list")
	if got := up.Count("/example.com/hello/@v/list"); got != 1 {
		t.Errorf("Count after a 503 = %d, want 1", got)
	}
}

func TestUpstreamWithoutSumDB(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t), testenv.WithoutSumDB())
	if up.SumDBName() != "" || up.VerifierKey() != "" {
		t.Errorf("SumDBName, VerifierKey = %q, %q; want empty", up.SumDBName(), up.VerifierKey())
	}
	if code, _, _ := get(t, up, "GET", "/sumdb/sum.test/supported"); code != 404 {
		t.Errorf("GET /sumdb/sum.test/supported = %d, want 404", code)
	}
}

func TestUpstreamSumDBName(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t), testenv.WithSumDBName("sum.corp.test"))
	if up.SumDBName() != "sum.corp.test" || !strings.HasPrefix(up.VerifierKey(), "sum.corp.test+") {
		t.Errorf("SumDBName, VerifierKey = %q, %q; want sum.corp.test", up.SumDBName(), up.VerifierKey())
	}
	if code, _, _ := get(t, up, "GET", "/sumdb/sum.corp.test/supported"); code != 200 {
		t.Errorf("GET /sumdb/sum.corp.test/supported = %d, want 200", code)
	}
}

// TestUpstreamConcurrent switches faults while requests are served; -race
// checks the locking.
func TestUpstreamConcurrent(t *testing.T) {
	mods := testenv.Fixtures(t)
	up := testenv.NewUpstream(t, mods[:len(mods)-1])
	extra := mods[len(mods)-1]
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 20 {
				switch (i + j) % 6 {
				case 0:
					up.SetDown(j%2 == 0)
				case 1:
					up.SetTamper("example.com/hello", "v1.0.0", j%2 == 0)
				case 2:
					up.SetStatus("/example.com/greet/", 403*(j%2))
				case 3:
					up.AddModule(extra)
				case 4:
					up.SetDelay(time.Duration(j%2) * time.Millisecond)
				}
				for _, p := range []string{"/example.com/hello/@v/list", "/sumdb/sum.test/lookup/example.com/greet@v1.0.0"} {
					resp, err := http.Get(up.URL() + p)
					if err != nil {
						t.Errorf("GET %s: %v", p, err) // not Fatal: this is not the test's goroutine
						continue
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				up.Count("/example.com/hello/@v/list")
				up.Requests()
			}
		})
	}
	wg.Wait()
	if got := up.Count("/example.com/hello/@v/list"); got != 8*20 {
		t.Errorf("Count = %d, want %d", got, 8*20)
	}
}

func TestUpstreamCommitQuery(t *testing.T) {
	mod := func(version, hash string) *testenv.Module {
		m, err := testenv.ParseModule([]byte("module example.com/c\nversion " + version + "\ntime 2024-01-01T00:00:00Z\n" +
			"-- .info --\n{\"Version\":\"" + version + "\",\"Time\":\"2024-01-01T00:00:00Z\",\"Origin\":{\"VCS\":\"git\",\"Hash\":\"" + hash + "\"}}\n" +
			"-- go.mod --\nmodule example.com/c\n"))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	const tagged, untagged = "aaaaaaaaaaaa0000000000000000000000000000", "bbbbbbbbbbbb0000000000000000000000000000"
	up := testenv.NewUpstream(t, []*testenv.Module{
		mod("v0.0.0-20240101000000-aaaaaaaaaaaa", tagged),
		mod("v1.0.0", tagged),
		mod("v0.0.0-20240101000000-bbbbbbbbbbbb", untagged),
	})
	for _, tt := range []struct{ query, want string }{
		{"aaaaaaa", `"Version":"v1.0.0"`}, // a tag before a pseudo-version
		{"bbbbbbbbbbbb", `"Version":"v0.0.0-20240101000000-bbbbbbbbbbbb"`},
	} {
		code, body, _ := get(t, up, http.MethodGet, "/example.com/c/@v/"+tt.query+".info")
		if code != http.StatusOK || !strings.Contains(body, tt.want) {
			t.Errorf("GET %s.info: %d %s, want 200 with %s", tt.query, code, body, tt.want)
		}
	}
	for _, q := range []string{"aaaaaa", "cccccccc", "main", "aaaaaaa.zip"} {
		if code, body, _ := get(t, up, http.MethodGet, "/example.com/c/@v/"+q+".info"); code != http.StatusNotFound {
			t.Errorf("GET %s.info: %d %s, want 404", q, code, body)
		}
	}
	if code, _, _ := get(t, up, http.MethodGet, "/example.com/c/@v/aaaaaaa.zip"); code != http.StatusNotFound {
		t.Errorf("GET aaaaaaa.zip: %d, want 404 (only .info answers a query)", code)
	}
}
