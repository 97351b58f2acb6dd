package server_test

import (
	"context"
	"io"
	"io/fs"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/testenv"
)

// malformedPaths returns more than 200 request paths that are not valid
// protocol requests: traversal attempts, bad escapes, bad versions, junk.
func malformedPaths() []string {
	paths := []string{
		"/../../etc/passwd", "/..%2f..%2fetc%2fpasswd", "/%2e%2e/%2e%2e/etc/passwd",
		"/example.com/../../../tmp/x/@v/v1.0.0.zip", "/example.com/a/@v/..%2f..%2f..%2fx.zip",
		"/example.com/a/@v/%2e%2e.zip", "/example.com/a/@v/v1.0.0.zip%00", "/example.com/a%00/@v/list",
		"/sumdb/../example.com/a/@v/list", "/sumdb/sum.test/../../../etc/passwd", "/sumdb/sum.test/lookup/..%2f..%2fx",
		"/sumdb/sum.test/tile/8/0/../../x", "/sumdb/sum.test/tile/99/0/000", "/sumdb/sum.test/tile/8/-1/000",
		"/sumdb/sum.test/tile/8/0/x1234", "/sumdb/sum.test/lookup/example.com/a", "/sumdb/sum.test/lookup/EXAMPLE.com/a@v1.0.0",
		"/sumdb/other.db/latest", "/sumdb/", "/sumdb/sum.test/", "/sumdb/sum.test/nope",
		"/example.com/a/@v/", "/example.com/a/@v", "/example.com/a/@latest/x", "/@v/list", "/@latest",
		"/example.com/A/@v/list", "/example.com/!/@v/list", "/example.com/!!a/@v/list", "/example.com/a!/@v/list",
		"/example.com/a/@v/V1.0.0.zip", "/example.com/a/@v/v1.0.zip", "/example.com/a/@v/v1.0.0.tar.gz",
		"/example.com/a/@v/v2.0.0.zip", "/example.com/a/v2/@v/v1.0.0.mod", "/example.com/a/@v/v1.0.0-!.info",
		"/example.com/a/@v/latest.info", "/example.com/a/@v/a%20b.info", "/example.com/a/@v/-x.info",
		"/example.com/a/@v/" + strings.Repeat("a", 300) + ".info", "/" + strings.Repeat("x.", 2000) + "/@v/list",
		"/localhost/a/@v/list", "/-example.com/a/@v/list", "/example.com//a/@v/list", "/example.com/a//@v/list",
		"/.example.com/@v/list", "/example.com/.a/@v/list", "/example.com/a./@v/list", "/example.com/a/@v/list/x",
		"/example.com/a/@v/v1.0.0.zip/x", "/example.com/a/@v/v1.0.0.info.zip", "/example.com/a/@v/.info",
		"/example.com/a/@v/v1.0.0+meta.zip", "/example.com/a/@v/v1.0.0+incompatible.zip", "/favicon.ico", "/robots.txt",
		"/example.com/a/@v/v1.0.0.ZIP", "/example.com/a/@V/list", "/example.com/a/@LATEST", "/%ff%fe/@v/list",
		"/example.com/\u00e9/@v/list", "/example.com/a b/@v/list", "/example.com/a\tb/@v/list", "/example.com/a;b/@v/list",
		"/example.com/a/@v/v1.0.0.zip?x=../../y", "/example.com/a/@v/v1.0.0;x.zip", "/example.com/a/@v/v1.0.0%2fx.zip",
	}
	// Mutate valid requests character by character for the rest.
	valid := []string{"/example.com/hello/@v/v1.0.0.zip", "/example.com/!upper/@v/list", "/sumdb/sum.test/lookup/example.com/hello@v1.0.0"}
	for _, v := range valid {
		for i := 1; i < len(v); i += 2 {
			for _, c := range []string{"..", "%2e", "!", "@", "/", "\\", "%00", "~"} {
				paths = append(paths, v[:i]+c+v[i:])
			}
		}
	}
	return paths
}

// TestMalformedRequests: hostile and broken requests never cause a 5xx and
// never write anything outside the data directory (or anything at all
// besides remembered misses and checksum-database answers).
func TestMalformedRequests(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	in := startModgate(t, up, nil)
	root := filepath.Dir(in.DataDir) // the test's temp dir; data dir is root/data
	before := listFiles(t, root)
	paths := malformedPaths()
	if len(paths) < 200 {
		t.Fatalf("only %d malformed paths; the test promises 200+", len(paths))
	}
	for _, p := range paths {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			status, err := rawRequest(in, method, p)
			if err != nil {
				t.Fatalf("%s %q: %v", method, p, err)
			}
			if status >= 500 {
				t.Errorf("%s %q answered %d; bad input must never cause a 5xx", method, p, status)
			}
		}
	}
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		if status, _ := rawRequest(in, method, "/example.com/hello/@v/v1.0.0.zip"); status != http.StatusMethodNotAllowed {
			t.Errorf("%s answered %d, want 405", method, status)
		}
	}
	after := listFiles(t, root)
	for _, f := range after {
		// The audit log records the refusals, and the remembered "not
		// found" answers (data/modules/answers/) are kept; nothing else may appear.
		if !slices.Contains(before, f) && !strings.HasPrefix(f, "data/modules/sumdb/") && !strings.HasPrefix(f, "data/modules/example.com/") &&
			!strings.HasPrefix(f, "data/modules/answers/") && !strings.HasPrefix(f, "data/audit/") {
			t.Errorf("malformed requests created %s", f)
		}
	}
}

// rawRequest sends path exactly as given (no client-side cleaning).
func rawRequest(in *instance, method, path string) (int, error) {
	conn, err := net.Dial("tcp", strings.TrimPrefix(in.URL, "http://"))
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	path = strings.NewReplacer(" ", "%20", "\t", "%09").Replace(path)
	if _, err := io.WriteString(conn, method+" "+path+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(bufioReader(conn), nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func listFiles(t *testing.T, root string) []string {
	t.Helper()
	var files []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(root, p)
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	return files
}

// TestProtocolHeaders checks what HTTP clients and caches see.
func TestProtocolHeaders(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	in := startModgate(t, up, nil)
	hello := up.Module("example.com/hello", "v1.0.0")

	tests := []struct {
		path, contentType, cacheControl string
	}{
		{"/example.com/hello/@v/v1.0.0.info", "application/json", "immutable"},
		{"/example.com/hello/@v/v1.0.0.mod", "text/plain; charset=utf-8", "immutable"},
		{"/example.com/hello/@v/v1.0.0.zip", "application/zip", "immutable"},
		{"/example.com/hello/@v/list", "text/plain; charset=utf-8", "max-age=60"},
		{"/example.com/hello/@latest", "application/json", "max-age=60"},
	}
	for _, tt := range tests {
		code, _, hdr := in.get(t, tt.path)
		if code != http.StatusOK || hdr.Get("Content-Type") != tt.contentType || !strings.Contains(hdr.Get("Cache-Control"), tt.cacheControl) {
			t.Errorf("GET %s: %d, Content-Type %q, Cache-Control %q; want 200, %q, ...%s...", tt.path, code, hdr.Get("Content-Type"), hdr.Get("Cache-Control"), tt.contentType, tt.cacheControl)
		}
	}

	zipPath := "/example.com/hello/@v/v1.0.0.zip"
	// HEAD: headers, no body.
	resp, err := http.Head(in.URL + zipPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength != int64(len(hello.Zip)) {
		t.Errorf("HEAD zip: %d, Content-Length %d; want 200, %d", resp.StatusCode, resp.ContentLength, len(hello.Zip))
	}
	etag := resp.Header.Get("ETag")
	if etag == "" {
		t.Error("zip has no ETag")
	}
	// Range.
	code, body, _ := in.get(t, zipPath, "Range", "bytes=0-9")
	if code != http.StatusPartialContent || string(body) != string(hello.Zip[:10]) {
		t.Errorf("Range bytes=0-9: %d, %d bytes; want 206 with the first 10 bytes", code, len(body))
	}
	// Conditional.
	if code, _, _ := in.get(t, zipPath, "If-None-Match", etag); code != http.StatusNotModified {
		t.Errorf("If-None-Match with the ETag: %d, want 304", code)
	}
	// Not found: 404 with a one-line text reason.
	code, body, hdr := in.get(t, "/example.com/nosuch/@v/v1.0.0.info")
	if code != http.StatusNotFound || hdr.Get("Content-Type") != "text/plain; charset=utf-8" || strings.Count(string(body), "\n") != 1 || !strings.Contains(string(body), "example.com/nosuch") {
		t.Errorf("unknown module: %d %q %q; want 404 with one text line naming the module", code, hdr.Get("Content-Type"), body)
	}
	// A version that names no file: 404 with the reason. Malformed: 400.
	if code, body, _ := in.get(t, "/example.com/hello/@v/main.zip"); code != http.StatusNotFound || !strings.Contains(string(body), "not a canonical version") {
		t.Errorf("non-canonical zip: %d %q, want 404 with the reason", code, body)
	}
	if code, body, _ := in.get(t, "/example.com/hello/@v/v1.0.0.tar"); code != http.StatusBadRequest {
		t.Errorf("unknown file: %d %q, want 400", code, body)
	}
	// Disable-Module-Fetch answers from the cache only.
	up.ResetLog()
	if code, _, _ := in.get(t, "/example.com/hello/@v/v1.1.0.zip", "Disable-Module-Fetch", "true"); code != http.StatusNotFound {
		t.Errorf("Disable-Module-Fetch on an uncached file: %d, want 404", code)
	}
	if n := len(up.Requests()); n != 0 {
		t.Errorf("Disable-Module-Fetch reached the upstream: %v", up.Requests())
	}
	if code, _, _ := in.get(t, zipPath, "Disable-Module-Fetch", "true"); code != http.StatusOK {
		t.Errorf("Disable-Module-Fetch on a cached file: %d, want 200", code)
	}
	// Operations endpoints.
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		if code, _, _ := in.get(t, p); code != http.StatusOK {
			t.Errorf("GET %s: %d", p, code)
		}
	}
	_, metrics, _ := in.get(t, "/metrics")
	for _, want := range []string{`modgate_requests_total{artifact="zip",cache="hit",status="200"}`, "modgate_fills_total", "modgate_upstream_request_duration_seconds", "modgate_bytes_served_total"} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestGracefulShutdown: an in-flight download finishes after shutdown
// begins, and readiness turns false at once.
func TestGracefulShutdown(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	in := startModgate(t, up, nil)
	up.SetDelay(500 * time.Millisecond)
	result := make(chan int, 1)
	go func() {
		resp, err := http.Get(in.URL + "/example.com/hello/@v/v1.0.0.zip")
		if err != nil {
			result <- 0
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		result <- resp.StatusCode
	}()
	// Shut down once the download is in flight: the upstream has the request.
	deadline := time.Now().Add(10 * time.Second)
	for up.Count("/example.com/hello/@v/v1.0.0.zip") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the download never reached the upstream")
		}
		time.Sleep(time.Millisecond)
	}
	in.stop()
	in.stop = nil
	if code := <-result; code != http.StatusOK {
		t.Errorf("in-flight download during shutdown: status %d, want 200", code)
	}
	select {
	case err := <-in.done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no shutdown")
	}
	in.srv.Close()
	if _, err := (&net.Dialer{}).DialContext(context.Background(), "tcp", strings.TrimPrefix(in.URL, "http://")); err == nil {
		t.Error("server still accepts connections after shutdown")
	}
}
