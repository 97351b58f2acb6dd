package server_test

import (
	"net/http"
	"path/filepath"
	"testing"

	"github.com/modgate/modgate/internal/testenv"
)

// TestDataDirIsAFileGOPROXY: {data_dir}/modules is a complete file://
// GOPROXY, checksum database included, as the README promises for
// backups: after modgate warmed it (in several rounds, so that its lookups
// carry different tree sizes of the growing database) and stopped, the
// real go command downloads every module from it with a fresh module
// cache and verifies each against the checksum database, all from the
// directory (GONOSUMDB empty, no network).
func TestDataDirIsAFileGOPROXY(t *testing.T) {
	t.Parallel()
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	in := startModgate(t, up, nil)
	// A client asks modgate's /sumdb/ for a lookup before modgate fetches
	// the module: the stored lookup then carries a smaller tree than the
	// one modgate's own verification has reached when it uses it.
	early := "/sumdb/" + up.SumDBName() + "/lookup/example.com/greet@v1.0.0"
	if code, body, _ := in.get(t, early); code != http.StatusOK {
		t.Fatalf("GET %s = %d %s", early, code, body)
	}
	var all []string
	for i, m := range testenv.Fixtures(t) {
		all = append(all, m.String())
		// one go command per module: every lookup sees a bigger tree
		if got := goDownload(t, goEnv(t, in, up), m.String()); len(got) != 1 || got[0].Error != "" {
			t.Fatalf("warming %s (round %d): %+v", m, i, got)
		}
	}
	in.shutdown(t)
	up.SetDown(true)

	proxy := "file://" + filepath.ToSlash(filepath.Join(in.DataDir, "modules"))
	env := testenv.GoEnv(t, proxy, up.VerifierKey(), "GOFLAGS=-mod=mod -modcacherw")
	// Each module alone first: the go command then checks every lookup
	// against its own tree, not the largest one.
	for _, m := range all {
		alone := testenv.GoEnv(t, proxy, up.VerifierKey(), "GOFLAGS=-mod=mod -modcacherw")
		if _, stderr, err := testenv.RunGo(t, t.TempDir(), alone, "mod", "download", m); err != nil {
			t.Errorf("go mod download %s from %s alone: %v\n%s", m, proxy, err, stderr)
		}
	}
	stdout, stderr, err := testenv.RunGo(t, t.TempDir(), env, append([]string{"mod", "download", "-json"}, all...)...)
	if err != nil {
		t.Fatalf("go mod download from %s: %v\n%s%s", proxy, err, stdout, stderr)
	}
	got := decodeDownloads(t, stdout)
	if len(got) != len(all) {
		t.Fatalf("go mod download from %s reported %d modules, want %d", proxy, len(got), len(all))
	}
	for _, d := range got {
		m := up.Module(d.Path, d.Version)
		if d.Error != "" || m == nil {
			t.Errorf("%s@%s from the data directory: %s", d.Path, d.Version, d.Error)
			continue
		}
		if d.Sum != m.ZipHash || d.GoModSum != m.ModHash {
			t.Errorf("%s@%s: hashes %s %s, want %s %s", d.Path, d.Version, d.Sum, d.GoModSum, m.ZipHash, m.ModHash)
		}
	}
}
