package server_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modgate/modgate/internal/testenv"
)

// TestExactIncompatibleTag: `go get <module>@<exact tag>` of a module whose
// releases are +incompatible works as it does directly. The go command asks
// for v2.0.0.info; modgate must resolve it as a query, as the upstream does,
// and the go command records v2.0.0+incompatible.
func TestExactIncompatibleTag(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	in := startModgate(t, up, nil)
	env := goEnv(t, in, up)
	dir := t.TempDir()
	testenv.WriteModule(t, dir, "module example.com/app\n\ngo 1.21\n", nil)
	mustGo(t, dir, env, "get", "example.com/legacy@v2.0.0")
	gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(gomod), "example.com/legacy v2.0.0+incompatible") {
		t.Errorf("go get example.com/legacy@v2.0.0 wrote:\n%s\nwant example.com/legacy v2.0.0+incompatible", gomod)
	}
	// The query answer is the upstream's, not stored as if it were a file.
	if in.stored("example.com/legacy/@v/v2.0.0.info") {
		t.Error("the answer to the query v2.0.0 was stored in the module tree as a version file")
	}
	// A version the upstream does not have is the upstream's "not found".
	stderr := failGo(t, dir, env, "get", "example.com/legacy@v3.0.0")
	if strings.Contains(stderr, "400 Bad Request") || !strings.Contains(stderr, "404 Not Found") {
		t.Errorf("go get of a missing +incompatible version: %s\nwant a 404 naming the version", stderr)
	}
}

// TestInvalidVersionsAreNotFound: a version that cannot exist for a module
// path answers 404 with the reason, so a client with
// GOPROXY=modgate,<next> goes on to its next proxy as it does after the
// public proxy; requests that are not module requests keep 400.
func TestInvalidVersionsAreNotFound(t *testing.T) {
	// modgate's upstream has no example.com/legacy; the next proxy does.
	var mods []*testenv.Module
	for _, m := range testenv.Fixtures(t) {
		if m.Path != "example.com/legacy" {
			mods = append(mods, m)
		}
	}
	up := testenv.NewUpstream(t, mods)
	next := testenv.NewUpstream(t, testenv.Fixtures(t))
	in := startModgate(t, up, nil)

	for _, tc := range []struct {
		path   string
		status int
		reason string
	}{
		{"/example.com/hello/@v/v9.9.9.mod", 404, "invalid version: should be v0 or v1, not v9"},
		{"/example.com/hello/@v/v9.9.9.zip", 404, "invalid version: should be v0 or v1, not v9"},
		{"/example.com/hello/v2/@v/v1.0.0.mod", 404, "invalid version"},
		{"/example.com/hello/@v/master.zip", 404, "not a canonical version"},
		{"/example.com/hello/@v/v9.9.9.info", 404, "unknown version"}, // the upstream's answer to the query
		{"/example.com/hello/@v/latest.info", 404, "invalid version query"},
		{"/localhost/hello/@v/v1.0.0.info", 400, "invalid module path"},
		{"/example.com/hello/@v/v1.0.0.tar", 400, "unknown file"},
	} {
		code, body, _ := in.get(t, tc.path)
		if code != tc.status || !strings.Contains(string(body), tc.reason) {
			t.Errorf("GET %s = %d %q, want %d with %q", tc.path, code, body, tc.status, tc.reason)
		}
	}

	// Through the real client: modgate says "not found", the next proxy
	// answers. (The next proxy's modules are in another checksum database,
	// so this module is not checked against one.)
	env := testenv.GoEnv(t, in.URL+","+next.URL(), up.VerifierKey(), "GONOSUMDB=example.com/legacy")
	dir := t.TempDir()
	testenv.WriteModule(t, dir, "module example.com/app\n\ngo 1.21\n", nil)
	mustGo(t, dir, env, "get", "example.com/legacy@v2.0.0")
	if n := next.Count("/example.com/legacy/@v/v2.0.0+incompatible.zip"); n != 1 {
		t.Errorf("the next proxy served the zip %d times, want 1 (modgate's 404 must let the client fall through)", n)
	}
	if code, _, _ := in.get(t, "/example.com/legacy/@v/v2.0.0.info"); code != http.StatusNotFound {
		t.Errorf("query for a module the upstream lacks = %d, want 404", code)
	}
}
