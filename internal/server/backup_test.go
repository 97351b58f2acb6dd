package server_test

import (
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
