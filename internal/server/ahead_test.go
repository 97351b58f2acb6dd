package server_test

import (
	"net/http"
	"testing"

	"github.com/modgate/modgate/internal/testenv"
)

// TestZipAheadFollowsPolicy: once a client downloads the zips of the .info
// files it was given, in their order, the zips ahead of it are filled
// (upstream.zip_ahead_workers), so that the go command's zip requests find
// them stored or join their fetch (one upstream fetch either way), but
// never a zip the policy refuses: a version a rule denies still serves its
// .info (the go command reads it) and its zip is never fetched.
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
	// The .info files first, as go mod download asks for them; then the
	// zips in the same order: the second (refused: 403) shows that the
	// client follows its list.
	for _, c := range []struct {
		path string
		code int
	}{
		{"/example.com/hello/@v/v1.0.0.info", http.StatusOK},
		{"/example.com/hello/@v/v1.1.0.info", http.StatusOK},
		{"/example.com/greet/@v/v1.0.0.info", http.StatusOK},
		{"/example.com/hello/@v/v1.0.0.zip", http.StatusOK},
		{"/example.com/hello/@v/v1.1.0.zip", http.StatusForbidden},
	} {
		if code, body, _ := in.get(t, c.path); code != c.code {
			t.Fatalf("GET %s = %d %s, want %d", c.path, code, body, c.code)
		}
	}
	waitFor(t, "the zip of example.com/greet@v1.0.0, filled after its .info", func() bool {
		return in.stored("example.com/greet/@v/v1.0.0.zip")
	})
	if in.stored("example.com/hello/@v/v1.1.0.zip") || up.Count("/example.com/hello/@v/v1.1.0.zip") != 0 {
		t.Error("the zip of a denied version was fetched ahead")
	}

	// The go command: the upstream sends each zip once.
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
