package server_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/modgate/modgate/internal/config"
	"github.com/modgate/modgate/internal/testenv"
)

// TestNoLookupsForPathsThatAreNotModules: the go command probes every
// prefix of a path it resolves (example.com@v1.0.0 for example.com/hello);
// modgate must not look such paths up in the checksum database, and a
// "not found" from the upstream that proxies the database must not send it
// to the database host itself through "direct".
func TestNoLookupsForPathsThatAreNotModules(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	var mu sync.Mutex
	var dbHost []string // what reached the database host directly
	host := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		dbHost = append(dbHost, r.URL.Path)
		mu.Unlock()
		http.Error(w, "not found", http.StatusNotFound)
	}))
	t.Cleanup(host.Close)
	in := startModgate(t, up, func(c *config.Config) {
		c.Upstream.GOPROXY = up.URL() + ",direct"
		c.SumDB.GOSUMDB = up.VerifierKey() + " " + host.URL
	})
	env := goEnv(t, in, up)
	dir := t.TempDir()
	testenv.WriteModule(t, dir, "module example.com/app\n\ngo 1.21\n", nil)
	mustGo(t, dir, env, "get", "example.com/hello@v1.0.0")
	// A path that is no module at all, asked for directly.
	if code, _, _ := in.get(t, "/example.com/hello/sub/@v/v1.0.0.info"); code != http.StatusNotFound {
		t.Errorf("info of a path that is not a module = %d, want 404", code)
	}
	// A lookup the upstream's database says "not found" to, through
	// modgate's /sumdb/.
	if code, _, _ := in.get(t, "/sumdb/"+up.SumDBName()+"/lookup/example.com/nosuch@v1.0.0"); code != http.StatusNotFound {
		t.Errorf("lookup of an unknown module = %d, want 404", code)
	}

	prefix := "/sumdb/" + up.SumDBName() + "/lookup/"
	for _, p := range up.Requests() {
		mv, ok := strings.CutPrefix(p, prefix)
		if !ok || mv == "example.com/nosuch@v1.0.0" {
			continue
		}
		path, version, _ := strings.Cut(mv, "@")
		if up.Module(path, version) == nil {
			t.Errorf("modgate looked up %s, which is not a module version the upstream has", mv)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(dbHost) != 0 {
		t.Errorf("modgate went around the upstream that proxies the checksum database to the database host itself: %q", dbHost)
	}
}
