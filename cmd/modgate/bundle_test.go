package main

import (
	"archive/tar"
	"bytes"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modgate/modgate/internal/testenv"
)

// runModgate runs a modgate subcommand to completion.
func runModgate(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(modgateBin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + testHome(t),
		"HTTP_PROXY=" + testenv.DeadProxy, "HTTPS_PROXY=" + testenv.DeadProxy, "NO_PROXY="}, env...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, out.String(), errb.String()
}

func mustRun(t *testing.T, env []string, args ...string) string {
	t.Helper()
	code, out, stderr := runModgate(t, env, args...)
	if code != 0 {
		t.Fatalf("modgate %s: exit %d\n%s\n%s", strings.Join(args, " "), code, out, stderr)
	}
	return out
}

// bundleNames lists a bundle's entries.
func bundleNames(t *testing.T, file string) map[string][]byte {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := make(map[string][]byte)
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		out[hdr.Name] = data
	}
}

// alterBundle copies src to dst with one byte of entry name flipped.
func alterBundle(t *testing.T, src, dst, name string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tr := tar.NewReader(in)
	found := false
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		if hdr.Name == name {
			data[len(data)/2] ^= 0x01
			found = true
		}
		tw.WriteHeader(hdr)
		tw.Write(data)
	}
	tw.Close()
	if !found {
		t.Fatalf("%s is not in the bundle", name)
	}
	if err := os.WriteFile(dst, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// storedFiles counts the module files in a data directory.
func storedFiles(t *testing.T, data string) int {
	t.Helper()
	n := 0
	filepath.WalkDir(filepath.Join(data, "modules"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && !strings.HasPrefix(d.Name(), ".") {
			n++
		}
		return nil
	})
	return n
}

// TestExportImportAirGapped is the whole story: site A warms a project and
// exports it; site B has no upstream at all, imports the bundle, and the go
// command with a fresh module cache, no go.sum and the checksum database
// set downloads, verifies (through B's /sumdb/) and builds the project.
// A bundle with one altered byte, in a zip or in the manifest, is refused
// whole, naming the file, and stores nothing.
func TestExportImportAirGapped(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	siteA := filepath.Join(t.TempDir(), "a")
	envA := []string{"GOPROXY=" + up.URL(), "GOSUMDB=" + up.VerifierKey()}
	a := startBinary(t, envA, "-data-dir", siteA)
	dir := prefetchProject(t, up)
	if code, out, stderr := runPrefetch(t, nil, "--server", a.URL, dir); code != 0 {
		t.Fatalf("prefetch at site A: exit %d\n%s\n%s", code, out, stderr)
	}

	work := t.TempDir()
	key := filepath.Join(work, "bundle.key")
	mustRun(t, nil, "export", "--generate-key", key)
	bundleFile := filepath.Join(work, "site.tar")
	out := mustRun(t, envA, "export", "--data-dir", siteA, "--key", key, "-o", bundleFile, filepath.Join(dir, "go.mod"))
	t.Logf("%s", out)
	names := bundleNames(t, bundleFile)
	for _, want := range []string{"modules/example.com/greet/@v/v1.0.0.zip", "modules/example.com/hello/@v/v1.0.0.mod",
		"modules/sumdb/" + up.SumDBName() + "/lookup/example.com/hello@v1.0.0", "manifest"} {
		if names[want] == nil {
			t.Errorf("bundle lacks %s; it has %d entries", want, len(names))
		}
	}

	// Site B: no upstream at all.
	envB := []string{"GOPROXY=off", "GOSUMDB=" + up.VerifierKey()}
	for _, tc := range []struct{ name, entry string }{
		{"zip", "modules/example.com/hello/@v/v1.0.0.zip"},
		{"go.mod", "modules/example.com/greet/@v/v1.0.0.mod"},
		{"manifest", "manifest"},
	} {
		t.Run("tampered "+tc.name, func(t *testing.T) {
			bad := filepath.Join(t.TempDir(), "bad.tar")
			alterBundle(t, bundleFile, bad, tc.entry)
			data := filepath.Join(t.TempDir(), "b")
			code, _, stderr := runModgate(t, envB, "import", "--data-dir", data, "--public-key", key+".pub", bad)
			if code != 1 || !strings.Contains(stderr, tc.entry) || !strings.Contains(stderr, "nothing was stored") {
				t.Errorf("import of a bundle with %s altered: exit %d, want 1 and the file named\n%s", tc.entry, code, stderr)
			}
			if n := storedFiles(t, data); n != 0 {
				t.Errorf("a refused bundle stored %d files", n)
			}
		})
	}

	siteB := filepath.Join(t.TempDir(), "b")
	out = mustRun(t, envB, "import", "--data-dir", siteB, "--public-key", key+".pub", bundleFile)
	if !strings.Contains(out, "4 .mod/.zip proved against checksum database") {
		t.Errorf("import did not prove the module files against the checksum database:\n%s", out)
	}
	up.SetDown(true)
	b := startBinary(t, envB, "-data-dir", siteB)
	if err := os.Remove(filepath.Join(dir, "go.sum")); err != nil {
		t.Fatal(err)
	}
	env := testenv.GoEnv(t, b.URL, up.VerifierKey(), "GOCACHE="+testenv.HostGoCache(t), "GOFLAGS=-modcacherw -mod=mod")
	if _, stderr, err := testenv.RunGo(t, dir, env, "build", "-o", os.DevNull, "."); err != nil {
		t.Fatalf("offline build through site B: %v\n%s", err, stderr)
	}
	sum, err := os.ReadFile(filepath.Join(dir, "go.sum"))
	if err != nil || !strings.Contains(string(sum), "example.com/hello v1.0.0 h1:") {
		t.Errorf("go.sum after the build (%v):\n%s", err, sum)
	}
}

// TestExportSince: an incremental bundle carries only what changed since
// the previous one, and importing both in order gives the site everything.
func TestExportSince(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	siteA := filepath.Join(t.TempDir(), "a")
	envA := []string{"GOPROXY=" + up.URL(), "GOSUMDB=" + up.VerifierKey()}
	if code, out, stderr := runPrefetch(t, envA, "--data-dir", siteA, "example.com/hello@v1.0.0"); code != 0 {
		t.Fatalf("prefetch: exit %d\n%s\n%s", code, out, stderr)
	}
	work := t.TempDir()
	key := filepath.Join(work, "k")
	mustRun(t, nil, "export", "--generate-key", key)
	first := filepath.Join(work, "1.tar")
	mustRun(t, envA, "export", "--data-dir", siteA, "--key", key, "-o", first, "--all")

	if code, out, stderr := runPrefetch(t, envA, "--data-dir", siteA, "example.com/hello@v1.1.0", "example.com/greet@v1.0.0"); code != 0 {
		t.Fatalf("prefetch: exit %d\n%s\n%s", code, out, stderr)
	}
	second := filepath.Join(work, "2.tar")
	mustRun(t, envA, "export", "--data-dir", siteA, "--key", key, "-o", second, "--since", first+".manifest", "--all")
	names := bundleNames(t, second)
	if names["modules/example.com/hello/@v/v1.0.0.zip"] != nil || names["modules/example.com/hello/@v/v1.0.0.mod"] != nil {
		t.Errorf("the incremental bundle carries hello v1.0.0 again")
	}
	for _, want := range []string{"modules/example.com/hello/@v/v1.1.0.zip", "modules/example.com/greet/@v/v1.0.0.zip"} {
		if names[want] == nil {
			t.Errorf("the incremental bundle lacks %s", want)
		}
	}

	siteB := filepath.Join(t.TempDir(), "b")
	envB := []string{"GOPROXY=off", "GOSUMDB=" + up.VerifierKey()}
	mustRun(t, envB, "import", "--data-dir", siteB, "--public-key", key+".pub", first)
	mustRun(t, envB, "import", "--data-dir", siteB, "--public-key", key+".pub", second)
	for _, f := range []string{"example.com/hello/@v/v1.0.0.zip", "example.com/hello/@v/v1.1.0.zip", "example.com/greet/@v/v1.0.0.zip"} {
		if _, err := os.Stat(filepath.Join(siteB, "modules", f)); err != nil {
			t.Errorf("after both imports: %v", err)
		}
	}
}

// envValue returns the value of key in a go command environment.
func envValue(env []string, key string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	return ""
}

// TestImportGoModCache: a developer's module cache seeds a site; every
// file is checked against the checksum database (online through the
// upstream, or offline through a bundle's tiles), a file the database
// contradicts is reported and not stored, and the seeded site serves an
// offline build that verifies through its /sumdb/.
func TestImportGoModCache(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	dir := prefetchProject(t, up)
	devEnv := testenv.GoEnv(t, up.URL(), up.VerifierKey())
	if _, stderr, err := testenv.RunGo(t, dir, devEnv, "mod", "download"); err != nil {
		t.Fatalf("go mod download: %v\n%s", err, stderr)
	}
	modCache := envValue(devEnv, "GOMODCACHE")
	// A file the checksum database does not vouch for.
	forged := filepath.Join(modCache, "cache", "download", "example.com", "hello", "@v", "v1.1.0.mod")
	if err := os.WriteFile(forged, []byte("module example.com/hello\n\nrequire example.com/evil v1.0.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	siteD := filepath.Join(t.TempDir(), "d")
	envD := []string{"GOPROXY=" + up.URL(), "GOSUMDB=" + up.VerifierKey()}
	code, out, stderr := runModgate(t, envD, "import", "--data-dir", siteD, "--gomodcache", modCache)
	if code != 1 || !strings.Contains(out, "failed example.com/hello@v1.1.0.mod") {
		t.Errorf("seeding with a forged .mod: exit %d, want 1 naming it\n%s\n%s", code, out, stderr)
	}
	if _, err := os.Stat(filepath.Join(siteD, "modules", "example.com", "hello", "@v", "v1.1.0.mod")); err == nil {
		t.Errorf("the forged .mod was stored")
	}
	for _, f := range []string{"example.com/hello/@v/v1.0.0.zip", "example.com/greet/@v/v1.0.0.mod", "sumdb/" + up.SumDBName() + "/lookup/example.com/greet@v1.0.0"} {
		if _, err := os.Stat(filepath.Join(siteD, "modules", f)); err != nil {
			t.Errorf("after seeding: %v", err)
		}
	}

	// Offline: the checksum database files come from a bundle.
	work := t.TempDir()
	key := filepath.Join(work, "k")
	mustRun(t, nil, "export", "--generate-key", key)
	tiles := filepath.Join(work, "tiles.tar")
	mustRun(t, envD, "export", "--data-dir", siteD, "--key", key, "-o", tiles, "--all")
	up.SetDown(true)
	if err := os.Remove(forged); err != nil {
		t.Fatal(err)
	}
	siteE := filepath.Join(t.TempDir(), "e")
	envE := []string{"GOPROXY=off", "GOSUMDB=" + up.VerifierKey()}
	out = mustRun(t, envE, "import", "--data-dir", siteE, "--gomodcache", modCache, "--tiles", tiles)
	if !strings.Contains(out, "seeded 6 files") {
		t.Errorf("offline seeding:\n%s", out)
	}

	e := startBinary(t, envE, "-data-dir", siteE)
	if err := os.Remove(filepath.Join(dir, "go.sum")); err != nil {
		t.Fatal(err)
	}
	env := testenv.GoEnv(t, e.URL, up.VerifierKey(), "GOCACHE="+testenv.HostGoCache(t), "GOFLAGS=-modcacherw -mod=mod")
	if _, stderr, err := testenv.RunGo(t, dir, env, "build", "-o", os.DevNull, "."); err != nil {
		t.Fatalf("offline build through the seeded site: %v\n%s", err, stderr)
	}
}
