package vulndb

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// servedSyncer returns a Syncer synced from the fixtures and an httptest
// server mounting its Handler under /vulndb/, as modgate would.
func servedSyncer(t *testing.T) (*Syncer, *httptest.Server) {
	t.Helper()
	s := newTestSyncer(t, SyncConfig{Source: fixtureDir, Dir: t.TempDir()})
	if err := s.Sync(t.Context()); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/vulndb/", http.StripPrefix("/vulndb", s.Handler()))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return s, srv
}

func get(t *testing.T, client *http.Client, method, url string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func gunzip(t *testing.T, data []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	return out
}

// TestHandlerGovulncheckClient makes the requests govulncheck's HTTP client
// makes for `govulncheck -db <URL>`: HEAD index/db.json to detect the
// layout, then GET <endpoint>.json.gz, decompressing the body itself, with
// a default client (whose transport adds Accept-Encoding: gzip).
func TestHandlerGovulncheckClient(t *testing.T) {
	_, srv := servedSyncer(t)
	base := srv.URL + "/vulndb"
	client := srv.Client()

	resp, body := get(t, client, http.MethodHead, base+"/index/db.json", nil)
	if resp.StatusCode != http.StatusOK || len(body) != 0 {
		t.Fatalf("HEAD index/db.json: %s with %d body bytes, want 200 and no body", resp.Status, len(body))
	}

	resp, body = get(t, client, http.MethodGet, base+"/index/db.json.gz", nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != gzipContentType || resp.Header.Get("Content-Encoding") != "" {
		t.Fatalf("GET index/db.json.gz: %s, Content-Type %q, Content-Encoding %q; want 200, %s, none",
			resp.Status, resp.Header.Get("Content-Type"), resp.Header.Get("Content-Encoding"), gzipContentType)
	}
	if got, want := string(gunzip(t, body)), `{"modified":"2099-02-01T00:00:00Z"}`; got != want {
		t.Errorf("index/db.json.gz = %s, want %s", got, want)
	}

	_, body = get(t, client, http.MethodGet, base+"/index/modules.json.gz", nil)
	var modules []moduleMeta
	if err := json.Unmarshal(gunzip(t, body), &modules); err != nil {
		t.Fatalf("index/modules.json.gz: %v", err)
	}
	var libIDs []string
	for _, m := range modules {
		if m.Path == "example.com/lib" {
			for _, v := range m.Vulns {
				libIDs = append(libIDs, v.ID)
			}
		}
	}
	if want := []string{"GO-2099-0001", "GO-2099-0005", "GO-2099-0007"}; !cmp.Equal(libIDs, want) {
		t.Errorf("index/modules.json.gz lists %v for example.com/lib, want %v", libIDs, want)
	}

	resp, body = get(t, client, http.MethodGet, base+"/ID/GO-2099-0001.json.gz", nil)
	want, err := os.ReadFile(filepath.Join(fixtureDir, "GO-2099-0001.json"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !bytes.Equal(gunzip(t, body), want) {
		t.Errorf("GET ID/GO-2099-0001.json.gz: %s; want 200 and the entry byte for byte", resp.Status)
	}
}

func TestHandlerJSON(t *testing.T) {
	_, srv := servedSyncer(t)
	base := srv.URL + "/vulndb"
	want, err := os.ReadFile(filepath.Join(fixtureDir, "GO-2099-0008.json"))
	if err != nil {
		t.Fatal(err)
	}
	plain := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	t.Cleanup(plain.CloseIdleConnections)

	// No Accept-Encoding: the JSON as is.
	resp, body := get(t, plain, http.MethodGet, base+"/ID/GO-2099-0008.json", nil)
	etag := resp.Header.Get("ETag")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != jsonContentType || resp.Header.Get("Content-Encoding") != "" || !bytes.Equal(body, want) {
		t.Fatalf("GET ID/GO-2099-0008.json: %s, Content-Type %q, Content-Encoding %q; want 200, %s, none and the entry",
			resp.Status, resp.Header.Get("Content-Type"), resp.Header.Get("Content-Encoding"), jsonContentType)
	}
	if etag == "" || resp.Header.Get("Cache-Control") != cacheControl {
		t.Errorf("GET ID/GO-2099-0008.json: ETag %q, Cache-Control %q; want a tag and %q", etag, resp.Header.Get("Cache-Control"), cacheControl)
	}

	// Revalidation.
	resp, _ = get(t, plain, http.MethodGet, base+"/ID/GO-2099-0008.json", http.Header{"If-None-Match": {etag}})
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("GET with If-None-Match %s: %s, want 304", etag, resp.Status)
	}

	// Accept-Encoding: gzip gets the compressed bytes, marked as such.
	resp, body = get(t, plain, http.MethodGet, base+"/ID/GO-2099-0008.json", http.Header{"Accept-Encoding": {"br, gzip;q=0.8"}})
	if resp.Header.Get("Content-Encoding") != "gzip" || resp.Header.Get("ETag") == etag || !bytes.Equal(gunzip(t, body), want) {
		t.Errorf("GET with Accept-Encoding gzip: Content-Encoding %q, ETag %q (plain %q); want gzip, another tag, the entry",
			resp.Header.Get("Content-Encoding"), resp.Header.Get("ETag"), etag)
	}

	// A default Go client decompresses transparently.
	_, body = get(t, srv.Client(), http.MethodGet, base+"/ID/GO-2099-0008.json", nil)
	if !bytes.Equal(body, want) {
		t.Errorf("GET with a default client: body differs from the entry")
	}
}

func TestHandlerErrors(t *testing.T) {
	_, srv := servedSyncer(t)
	base := srv.URL + "/vulndb"
	tests := []struct {
		name, method, path string
		want               int
	}{
		{"unknown entry", http.MethodGet, "/ID/GO-2099-0404.json", http.StatusNotFound},
		{"entry without extension", http.MethodGet, "/ID/GO-2099-0001", http.StatusNotFound},
		{"unknown index", http.MethodGet, "/index/secrets.json", http.StatusNotFound},
		{"root", http.MethodGet, "/", http.StatusNotFound},
		{"dot-dot", http.MethodGet, "/ID/..%2Findex%2Fdb.json", http.StatusNotFound},
		{"post", http.MethodPost, "/index/db.json", http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, _ := get(t, srv.Client(), tt.method, base+tt.path, nil)
			if resp.StatusCode != tt.want {
				t.Errorf("%s %s: %s, want %d", tt.method, tt.path, resp.Status, tt.want)
			}
		})
	}
}

func TestHandlerBeforeSync(t *testing.T) {
	s := newTestSyncer(t, SyncConfig{URL: "https://vulndb.corp.example", Dir: t.TempDir()})
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/index/db.json", nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "not synced yet") {
		t.Errorf("before any sync: %d %q, want 503 and a reason", rec.Code, rec.Body.String())
	}
}

// TestSyncFromHandler syncs one Syncer from another's Handler: modgate can
// use another modgate (or its own re-served copy) as its source.
func TestSyncFromHandler(t *testing.T) {
	upstream, srv := servedSyncer(t)
	s := newTestSyncer(t, SyncConfig{URL: srv.URL + "/vulndb/", Dir: t.TempDir(), Client: srv.Client()})
	if err := s.Sync(t.Context()); err != nil {
		t.Fatalf("Sync from Handler: %v", err)
	}
	for _, q := range [][2]string{{"example.com/lib", "v1.0.0"}, {"example.com/pseudo", "v0.0.0-20190308221718-c2843e01d9a2"}, {"stdlib", "v1.21.1"}} {
		if got, want := s.Affecting(q[0], q[1]), upstream.Affecting(q[0], q[1]); !cmp.Equal(got, want) || len(got) == 0 {
			t.Errorf("Affecting(%q, %q) = %v, want the upstream's %v", q[0], q[1], ids(got), ids(want))
		}
	}
	if got, want := s.Status(), upstream.Status(); got.Entries != want.Entries || !got.Modified.Equal(want.Modified) {
		t.Errorf("Status = %+v, want the upstream's entries and modified time (%+v)", got, want)
	}
}

func TestAcceptsGzip(t *testing.T) {
	tests := []struct {
		header string
		want   bool
	}{
		{"", false},
		{"gzip", true},
		{"GZIP", true},
		{"deflate, gzip;q=1.0, *;q=0.5", true},
		{"gzip;q=0", false},
		{"gzip; q=0.000", false},
		{"gzip;q=0.1", true},
		{"br", false},
		{"x-gzip", false},
	}
	for _, tt := range tests {
		if got := acceptsGzip(tt.header); got != tt.want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", tt.header, got, tt.want)
		}
	}
}
