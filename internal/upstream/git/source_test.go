package git_test

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/modgate/modgate/internal/upstream/git"
)

// TestSource builds the Git server once and runs every case against it.
func TestSource(t *testing.T) {
	w := buildWorld(t)
	src := newSource(t, w.srv, nil)

	t.Run("SameAsGoCommand", func(t *testing.T) { testSameAsGoCommand(t, w, src) })
	t.Run("Lists", func(t *testing.T) { testLists(t, src) })
	t.Run("ZipContents", func(t *testing.T) { testZipContents(t, src) })
	t.Run("NotFound", func(t *testing.T) { testNotFound(t, src) })
	t.Run("Credentials", func(t *testing.T) { testCredentials(t, w) })
	t.Run("Unreachable", func(t *testing.T) { testUnreachable(t, w) })
	t.Run("MirrorReused", func(t *testing.T) { testMirrorReused(t, w) })
	t.Run("Forget", func(t *testing.T) { testForget(t, w) })
	t.Run("ForgetAfterRestart", func(t *testing.T) { testForgetAfterRestart(t, w) })
	t.Run("HungServer", func(t *testing.T) { testHungServer(t, w) })
	t.Run("Discovery", func(t *testing.T) { testDiscovery(t, w, src) })
	t.Run("Sources", func(t *testing.T) { testSources(t, w, src) })
	t.Run("Test", func(t *testing.T) { testReport(t, w) })
	t.Run("SSH", func(t *testing.T) { testSSH(t, w, src) })
}

// testSameAsGoCommand compares every answer with what the go command
// computes fetching the repositories itself (GOPROXY=direct).
func testSameAsGoCommand(t *testing.T, w *world, src *git.Source) {
	auth := host + "/platform/auth"
	queries := []string{
		auth + "@v1.0.0", auth + "@v1.1.0", auth + "@v1.2.0", auth + "@v1.3.0-rc.1",
		auth + "@latest", auth + "@main", auth + "@feature",
		auth + "@" + w.featureHead[:7], auth + "@" + w.mainHead, auth + "@v1.1",
		auth + "/sub@v0.1.0", auth + "/sub@latest",
		auth + "/v2@v2.0.0", auth + "/v2@latest",
		host + "/platform/legacy@v1.0.0", host + "/platform/legacy@v2.0.0+incompatible", host + "/platform/legacy@latest",
		host + "/platform/major@v1.0.0", host + "/platform/major/v2@v2.0.0", host + "/platform/major/v2@latest",
		host + "/platform/notags@latest", host + "/platform/notags@main", host + "/platform/notags@" + w.notagsHead[:12],
		host + "/platform/pre@latest",
	}
	want := w.srv.GoDirect(t, queries...)
	for _, q := range queries {
		t.Run(strings.ReplaceAll(strings.TrimPrefix(q, host+"/"), "/", "_"), func(t *testing.T) {
			d, ok := want[q]
			if !ok || d.Error != "" {
				t.Fatalf("the go command could not download %s: %+v", q, d)
			}
			modPath, query, _ := strings.Cut(q, "@")
			var got info
			if query == "latest" {
				got = parseInfo(t, mustFetch(t, src, escaped(t, modPath, "latest")))
			} else {
				got = parseInfo(t, mustFetch(t, src, escaped(t, modPath, query+".info")))
			}
			wantInfo := parseInfo(t, readFile(t, d.Info))
			if got.Version != d.Version || !got.Time.Equal(wantInfo.Time) {
				t.Errorf("%s: version %s time %v; the go command says %s %v", q, got.Version, got.Time, d.Version, wantInfo.Time)
			}
			if d.Origin != nil && (got.Origin.Hash != d.Origin.Hash || got.Origin.URL != d.Origin.URL || got.Origin.Subdir != d.Origin.Subdir) {
				t.Errorf("%s: origin %+v; the go command says %+v", q, got.Origin, *d.Origin)
			}
			// The canonical version answers the same .info.
			again := parseInfo(t, mustFetch(t, src, escaped(t, modPath, d.Version+".info")))
			if again.Version != d.Version || !again.Time.Equal(wantInfo.Time) {
				t.Errorf("%s.info = %s %v, want %s %v", d.Version, again.Version, again.Time, d.Version, wantInfo.Time)
			}
			if h := modHash(t, mustFetch(t, src, escaped(t, modPath, d.Version+".mod"))); h != d.GoModSum {
				t.Errorf("%s@%s.mod hash %s, the go command's %s", modPath, d.Version, h, d.GoModSum)
			}
			if h := zipHash(t, mustFetch(t, src, escaped(t, modPath, d.Version+".zip"))); h != d.Sum {
				t.Errorf("%s@%s.zip hash %s, the go command's %s", modPath, d.Version, h, d.Sum)
			}
		})
	}
}

// testLists checks the version lists: every tag for the module's directory
// and major version, retracted ones included, +incompatible where allowed.
func testLists(t *testing.T, src *git.Source) {
	tests := []struct {
		name, module string
		want         []string
	}{
		{"root module keeps retracted v1.0.0", "platform/auth", []string{"v1.0.0", "v1.1.0", "v1.2.0", "v1.3.0-rc.1"}},
		{"subdirectory", "platform/auth/sub", []string{"v0.1.0"}},
		{"major subdirectory", "platform/auth/v2", []string{"v2.0.0"}},
		{"incompatible", "platform/legacy", []string{"v1.0.0", "v2.0.0+incompatible"}},
		{"major branch", "platform/major/v2", []string{"v2.0.0", "v2.1.0"}},
		{"major branch v1", "platform/major", []string{"v1.0.0"}},
		{"no tags", "platform/notags", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := mustFetch(t, src, escaped(t, host+"/"+tt.module, "list"))
			got := strings.Fields(string(data))
			if !slices.Equal(got, tt.want) {
				t.Errorf("list of %s = %q, want %q", tt.module, got, tt.want)
			}
		})
	}
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(fmt.Errorf("reading the go command's file: %w", err))
	}
	return data
}
