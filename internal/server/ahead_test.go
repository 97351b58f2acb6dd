package server_test

import (
	"net/http"
	"testing"

	"github.com/modgate/modgate/internal/testenv"
)

// TestZipAheadFollowsPolicy: a client's .info request starts the fill of the
// version's zip (upstream.zip_ahead_workers), so that the go command's zip
// request that follows finds it stored or joins its fetch (one upstream
// fetch either way), but never for a zip the policy refuses: a version a
// rule denies still serves its .info (the go command reads it) and its zip
// is never fetched.
func TestZipAheadFollowsPolicy(t *testing.T) {
	t.Parallel()
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	in, _ := startPolicy(t, up, `
policy:
  rules:
    - name: hello-1.1-broken
      deny:
        modules: [example.com/hello]
        versions: [v1.1.0]
`, nil)
	for _, p := range []string{"/example.com/hello/@v/v1.1.0.info", "/example.com/greet/@v/v1.0.0.info"} {
		if code, body, _ := in.get(t, p); code != http.StatusOK {
			t.Fatalf("GET %s = %d %s", p, code, body)
		}
	}
	waitFor(t, "the zip of example.com/greet@v1.0.0, filled after its .info", func() bool {
		return in.stored("example.com/greet/@v/v1.0.0.zip")
	})
	if in.stored("example.com/hello/@v/v1.1.0.zip") || up.Count("/example.com/hello/@v/v1.1.0.zip") != 0 {
		t.Error("the zip of a denied version was fetched ahead")
	}

	// The go command: its zip request finds the file filled ahead; the
	// upstream sends each zip once.
	env := goEnv(t, in, up)
	got := goDownload(t, env, "example.com/hello@v1.0.0", "example.com/greet@v1.0.0")
	for _, d := range got {
		if d.Error != "" {
			t.Errorf("go mod download %s@%s: %s", d.Path, d.Version, d.Error)
		}
	}
	for _, p := range []string{"/example.com/hello/@v/v1.0.0.zip", "/example.com/greet/@v/v1.0.0.zip"} {
		if n := up.Count(p); n != 1 {
			t.Errorf("upstream sent %s %d times, want 1", p, n)
		}
	}
}
