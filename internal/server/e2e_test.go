package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/config"
	"github.com/modgate/modgate/internal/testenv"
)

// downloaded is the part of `go mod download -json` output the tests read.
type downloaded struct {
	Path, Version, Sum, GoModSum, Error string
}

func goDownload(t *testing.T, env []string, args ...string) []downloaded {
	t.Helper()
	return decodeDownloads(t, mustGo(t, t.TempDir(), env, append([]string{"mod", "download", "-json"}, args...)...))
}

// decodeDownloads decodes the output of `go mod download -json`.
func decodeDownloads(t *testing.T, out string) []downloaded {
	t.Helper()
	var res []downloaded
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var d downloaded
		if err := dec.Decode(&d); err != nil {
			t.Fatalf("decoding go mod download output: %v\n%s", err, out)
		}
		res = append(res, d)
	}
	return res
}

// TestDownloadHashesMatch runs the real go command through modgate for
// every fixture — plain, escaped upper case, /v2 major, +incompatible
// without go.mod — and checks the hashes it computed against the ones the
// checksum database holds (it verified them itself through /sumdb/).
func TestDownloadHashesMatch(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	in := startModgate(t, up, nil)
	var args []string
	for _, m := range testenv.Fixtures(t) {
		args = append(args, m.String())
	}
	got := goDownload(t, goEnv(t, in, up), args...)
	if len(got) != len(args) {
		t.Fatalf("go mod download reported %d modules, want %d", len(got), len(args))
	}
	for _, d := range got {
		m := up.Module(d.Path, d.Version)
		if d.Error != "" || m == nil {
			t.Errorf("%s@%s: %s", d.Path, d.Version, d.Error)
			continue
		}
		if d.Sum != m.ZipHash || d.GoModSum != m.ModHash {
			t.Errorf("%s: go computed %s %s, checksum database has %s %s", m, d.Sum, d.GoModSum, m.ZipHash, m.ModHash)
		}
	}
	if n := up.Count("/sumdb/sum.test/supported"); n != 0 {
		t.Errorf("modgate asked the upstream whether it supports the checksum database %d times; it must answer that itself", n)
	}
	if !in.stored("example.com/!upper/@v/v1.0.0.zip") || !in.stored("example.com/legacy/@v/v2.0.0+incompatible.mod") {
		t.Error("escaped files are not stored under their escaped protocol paths")
	}
}

// TestBuildAndWarmCache builds a consumer project through modgate, then
// again with an empty module cache: the second time nothing reaches the
// upstream.
func TestBuildAndWarmCache(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	in := startModgate(t, up, nil)
	gomod := "module example.com/app\n\ngo 1.21\n\nrequire example.com/greet v1.0.0\n"
	main := "package main\n\nimport (\n\t\"fmt\"\n\n\t\"example.com/greet\"\n)\n\nfunc main() { fmt.Println(greet.Greet()) }\n"
	cache := "GOCACHE=" + testenv.HostGoCache(t)
	for round := range 2 {
		dir := t.TempDir()
		testenv.WriteModule(t, dir, gomod, map[string]string{"main.go": main})
		env := goEnv(t, in, up, cache)
		mustGo(t, dir, env, "mod", "tidy")
		mustGo(t, dir, env, "build", "-o", filepath.Join(dir, "app"), ".")
		sum, err := os.ReadFile(filepath.Join(dir, "go.sum"))
		if err != nil {
			t.Fatal(err)
		}
		want := up.Module("example.com/greet", "v1.0.0").GoSum() + up.Module("example.com/hello", "v1.0.0").GoSum()
		if string(sum) != want {
			t.Errorf("round %d: go.sum =\n%s\nwant\n%s", round, sum, want)
		}
		if round == 0 {
			up.ResetLog()
		}
	}
	for _, p := range up.Requests() {
		if strings.HasSuffix(p, ".zip") || strings.HasSuffix(p, ".mod") || strings.HasSuffix(p, ".info") {
			t.Errorf("warm build asked the upstream for %s", p)
		}
	}
}

// TestLatestAndVersions checks list and latest through the real client:
// `go get @latest` picks the highest release, not the pre-release.
func TestLatestAndVersions(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	in := startModgate(t, up, nil)
	env := goEnv(t, in, up)
	out := mustGo(t, t.TempDir(), env, "list", "-m", "-versions", "example.com/hello")
	if got, want := strings.TrimSpace(out), "example.com/hello v1.0.0 v1.1.0 v1.2.0-rc.1"; got != want {
		t.Errorf("go list -m -versions = %q, want %q", got, want)
	}
	dir := t.TempDir()
	testenv.WriteModule(t, dir, "module example.com/app\n\ngo 1.21\n", nil)
	mustGo(t, dir, env, "get", "example.com/hello@latest")
	gomod, _ := os.ReadFile(filepath.Join(dir, "go.mod"))
	if !strings.Contains(string(gomod), "example.com/hello v1.1.0") {
		t.Errorf("go get @latest wrote:\n%s\nwant example.com/hello v1.1.0", gomod)
	}
}

// TestTamperedZipRefused: a tampered zip from the upstream is refused with a
// clear message, never stored, and served correctly once the upstream is
// repaired.
func TestTamperedZipRefused(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	in := startModgate(t, up, nil)
	up.SetTamper("example.com/hello", "v1.1.0", true)
	stderr := failGo(t, t.TempDir(), goEnv(t, in, up), "mod", "download", "example.com/hello@v1.1.0")
	for _, want := range []string{"502 Bad Gateway", "checksum database", "example.com/hello@v1.1.0"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("go command output lacks %q:\n%s", want, stderr)
		}
	}
	if in.stored("example.com/hello/@v/v1.1.0.zip") {
		t.Fatal("the tampered zip was stored")
	}
	up.SetTamper("example.com/hello", "v1.1.0", false)
	got := goDownload(t, goEnv(t, in, up), "example.com/hello@v1.1.0")
	if want := up.Module("example.com/hello", "v1.1.0").ZipHash; got[0].Sum != want {
		t.Errorf("after repair go computed %s, want %s", got[0].Sum, want)
	}
}

// TestTamperedModRefused is the same for a go.mod file.
func TestTamperedModRefused(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	in := startModgate(t, up, nil)
	up.SetTamperMod("example.com/hello", "v1.0.0", true)
	code, body, _ := in.get(t, "/example.com/hello/@v/v1.0.0.mod")
	if code != http.StatusBadGateway || !strings.Contains(string(body), "checksum database") {
		t.Errorf("tampered .mod: %d %q, want 502 naming the checksum database", code, body)
	}
	if in.stored("example.com/hello/@v/v1.0.0.mod") {
		t.Fatal("the tampered go.mod was stored")
	}
}

// TestOfflineAfterWarm: once warmed, modgate keeps serving builds, lists and
// the checksum database when the upstream is down.
func TestOfflineAfterWarm(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	in := startModgate(t, up, func(c *config.Config) {
		c.Cache.ListTTL = config.Duration{Duration: time.Millisecond} // lists expire at once
		c.Cache.SumDBLatestTTL = config.Duration{Duration: time.Millisecond}
	})
	dir := t.TempDir()
	testenv.WriteModule(t, dir, "module example.com/app\n\ngo 1.21\n", map[string]string{
		"main.go": "package main\n\nimport \"example.com/greet\"\n\nfunc main() { println(greet.Greet()) }\n",
	})
	mustGo(t, dir, goEnv(t, in, up), "get", "example.com/greet@v1.0.0")
	mustGo(t, t.TempDir(), goEnv(t, in, up), "list", "-m", "-versions", "example.com/hello")

	up.SetDown(true)
	env := goEnv(t, in, up, "GOCACHE="+testenv.HostGoCache(t)) // fresh module cache
	mustGo(t, dir, env, "build", "./...")
	out := mustGo(t, t.TempDir(), env, "list", "-m", "-versions", "example.com/hello")
	if !strings.Contains(out, "v1.1.0") {
		t.Errorf("offline version list = %q, want the cached versions", out)
	}
	code, _, hdr := in.get(t, "/example.com/hello/@v/list")
	if code != http.StatusOK || hdr.Get("Warning") == "" || hdr.Get("X-Modgate-Cache") != "stale" {
		t.Errorf("offline list: status %d, Warning %q, X-Modgate-Cache %q; want 200 with a stale warning", code, hdr.Get("Warning"), hdr.Get("X-Modgate-Cache"))
	}
	// A module never fetched fails with an upstream error, not "not found".
	code, body, _ := in.get(t, "/example.com/hello/v2/@v/v2.0.0.zip")
	if code != http.StatusBadGateway {
		t.Errorf("uncached file with upstream down: %d %q, want 502", code, body)
	}
}

// TestStampede: 50 concurrent cold requests for one zip cause one upstream
// fetch, and every client gets the same verified bytes.
func TestStampede(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	in := startModgate(t, up, nil)
	up.SetDelay(200 * time.Millisecond) // keep the fill in flight while requests pile up
	const clients = 50
	path := "/example.com/hello/@v/v1.0.0.zip"
	want := sha(up.Module("example.com/hello", "v1.0.0").Zip)
	var wg sync.WaitGroup
	errs := make(chan string, clients)
	for range clients {
		wg.Go(func() {
			resp, err := http.Get(in.URL + path)
			if err != nil {
				errs <- err.Error()
				return
			}
			defer resp.Body.Close()
			body := new(strings.Builder)
			if _, err := fmt.Fprint(body, ""); err != nil {
				errs <- err.Error()
			}
			data := make([]byte, 0, 1024)
			buf := make([]byte, 4096)
			for {
				n, err := resp.Body.Read(buf)
				data = append(data, buf[:n]...)
				if err != nil {
					break
				}
			}
			if resp.StatusCode != http.StatusOK || sha(data) != want {
				errs <- fmt.Sprintf("status %d, sha %s", resp.StatusCode, sha(data))
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if n := up.Count(path); n != 1 {
		t.Errorf("%d concurrent requests caused %d upstream fetches, want 1", clients, n)
	}
}

// TestUpstream403 treats an upstream's 403 for a version as "not available
// from this upstream": the client sees 404 with the reason, and the answer
// is not remembered beyond the negative TTL.
func TestUpstream403(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	in := startModgate(t, up, func(c *config.Config) {
		c.Cache.NegativeTTL = config.Duration{Duration: 50 * time.Millisecond}
	})
	up.SetStatus("/example.com/hello/@v/v1.1.0.", http.StatusForbidden)
	stderr := failGo(t, t.TempDir(), goEnv(t, in, up), "mod", "download", "example.com/hello@v1.1.0")
	if !strings.Contains(stderr, "404 Not Found") || !strings.Contains(stderr, "403") {
		t.Errorf("go command output should show a 404 naming the upstream's 403:\n%s", stderr)
	}
	up.SetStatus("/example.com/hello/@v/v1.1.0.", 0)
	time.Sleep(100 * time.Millisecond)
	goDownload(t, goEnv(t, in, up), "example.com/hello@v1.1.0")
}

// TestSlowUpstreamTimesOut answers 504 when the upstream does not answer
// within upstream.response_timeout.
func TestSlowUpstreamTimesOut(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	in := startModgate(t, up, func(c *config.Config) {
		c.Upstream.ResponseTimeout = config.Duration{Duration: 100 * time.Millisecond}
	})
	up.SetDelay(2 * time.Second)
	code, body, _ := in.get(t, "/example.com/hello/@v/v1.0.0.info")
	if code != http.StatusGatewayTimeout {
		t.Errorf("slow upstream: %d %q, want 504", code, body)
	}
}

// TestModDoesNotFetchZip: the go command reads many go.mod files it never
// builds; a .mod request must not download the zip.
func TestModDoesNotFetchZip(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	in := startModgate(t, up, nil)
	if code, body, _ := in.get(t, "/example.com/hello/@v/v1.0.0.mod"); code != http.StatusOK {
		t.Fatalf("GET .mod: %d %s", code, body)
	}
	for _, p := range up.Requests() {
		if strings.HasSuffix(p, ".zip") {
			t.Errorf("a .mod request fetched %s", p)
		}
	}
}

// TestSumDBTilesCached: a second client with an empty cache verifies through
// modgate without any full tile or lookup reaching the upstream again.
func TestSumDBTilesCached(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	in := startModgate(t, up, nil)
	goDownload(t, goEnv(t, in, up), "example.com/hello@v1.0.0")
	up.ResetLog()
	goDownload(t, goEnv(t, in, up), "example.com/hello@v1.0.0")
	for _, p := range up.Requests() {
		if strings.Contains(p, "/lookup/") || (strings.Contains(p, "/tile/") && !strings.Contains(p, ".p/")) {
			t.Errorf("second client caused upstream request %s; lookups and full tiles are immutable and cached", p)
		}
	}
}

// TestToolchainModule: the toolchain the go command downloads for
// GOTOOLCHAIN is a module like any other — fetched, verified against the
// checksum database, stored, and run. The fake toolchain's bin/go is a
// shell script that says which toolchain it is.
func TestToolchainModule(t *testing.T) {
	version := "v0.0.1-go1.99.0." + runtime.GOOS + "-" + runtime.GOARCH
	archive := "module golang.org/toolchain\nversion " + version + "\n" +
		"-- bin/go --\n#!/bin/sh\necho fake toolchain go1.99.0 \"$@\"\n" +
		"-- bin/gofmt --\n#!/bin/sh\n" +
		"-- pkg/tool/README --\ntools\n" +
		"-- lib/README --\nlib\n"
	tc, err := testenv.ParseModule([]byte(archive))
	if err != nil {
		t.Fatal(err)
	}
	up := testenv.NewUpstream(t, append(testenv.Fixtures(t), tc))
	in := startModgate(t, up, nil)
	env := goEnv(t, in, up, "GOTOOLCHAIN=go1.99.0")
	out := mustGo(t, t.TempDir(), env, "version")
	t.Logf("go version: %s", out)
	if !strings.Contains(out, "fake toolchain go1.99.0 version") {
		t.Errorf("go version with GOTOOLCHAIN=go1.99.0 printed %q, want the downloaded toolchain's answer", out)
	}
	if !in.stored("golang.org/toolchain/@v/" + version + ".zip") {
		t.Error("the toolchain zip was not stored")
	}
	// A tampered toolchain is refused like any other module.
	up.SetTamper("golang.org/toolchain", version, true)
	in2 := startModgate(t, up, nil)
	stderr := failGo(t, t.TempDir(), goEnv(t, in2, up, "GOTOOLCHAIN=go1.99.0"), "version")
	if !strings.Contains(stderr, "checksum database") {
		t.Errorf("tampered toolchain: go command output lacks the reason:\n%s", stderr)
	}
}
