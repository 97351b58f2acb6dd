package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/cli"
	"github.com/modgate/modgate/internal/config"
	"github.com/modgate/modgate/internal/integrity"
	"github.com/modgate/modgate/internal/testenv"
)

// maintenanceConfig writes the configuration file the maintenance
// commands read for a data directory in front of up; private modules are
// those matching nosumdb.
func maintenanceConfig(t *testing.T, up *testenv.Upstream, data string, nosumdb ...string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "data_dir: %q\nupstream:\n  goproxy: %q\n  retries: 0\nsumdb:\n  gosumdb: %q\n", data, up.URL(), up.VerifierKey())
	if len(nosumdb) > 0 {
		fmt.Fprintf(&b, "  nosumdb: [%s]\n", strings.Join(nosumdb, ", "))
	}
	name := filepath.Join(t.TempDir(), "modgate.yaml")
	if err := os.WriteFile(name, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return name
}

// runCLI runs a modgate subcommand in-process.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = cli.Main(args, &out, &errb)
	return code, out.String(), errb.String()
}

// flipByte flips one bit of a stored file, keeping its size: in the middle
// of a go.mod, in the first file's data of a zip.
func flipByte(t *testing.T, data, key string) {
	t.Helper()
	name := filepath.Join(data, "modules", filepath.FromSlash(key))
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	i := len(b) / 2
	if strings.HasSuffix(key, ".zip") && len(b) > 30 {
		// Inside the first file's data: the module hash covers contents,
		// and a flip in a header field it ignores (a time) changes nothing.
		nameLen := int(b[26]) | int(b[27])<<8
		extraLen := int(b[28]) | int(b[29])<<8
		i = 30 + nameLen + extraLen + 1
	}
	b[i] ^= 0x01
	if err := os.WriteFile(name, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

type verifyReport struct {
	Summary  integrity.Summary   `json:"summary"`
	Findings []integrity.Finding `json:"findings"`
}

func runVerify(t *testing.T, cfgFile string, args ...string) (int, verifyReport) {
	t.Helper()
	code, stdout, stderr := runCLI(t, append([]string{"verify", "--config", cfgFile, "--json"}, args...)...)
	var rep verifyReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("modgate verify %v: exit %d, output is not JSON (%v):\n%s\n%s", args, code, err, stdout, stderr)
	}
	return code, rep
}

// TestCorruptStoredFiles: a bit flipped in a stored zip of a private
// module (the client has GONOSUMDB, so it would not notice) and in a
// stored go.mod of a public one is caught on the serve path (the go
// command is refused, not served the bad bytes), by modgate verify, and
// repaired by modgate verify --repair; then the build works.
func TestCorruptStoredFiles(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	data := filepath.Join(t.TempDir(), "data")
	const private = "example.com/greet"
	edit := func(c *config.Config) {
		c.DataDir = data
		c.SumDB.NoSumDB = []string{private}
	}
	cfgFile := maintenanceConfig(t, up, data, private)
	gomod := "module example.com/app\n\ngo 1.21\n\nrequire example.com/greet v1.0.0\n"
	main := "package main\n\nimport (\n\t\"fmt\"\n\n\t\"example.com/greet\"\n)\n\nfunc main() { fmt.Println(greet.Greet()) }\n"
	cache := "GOCACHE=" + testenv.HostGoCache(t)
	build := func(in *instance) {
		t.Helper()
		dir := t.TempDir()
		testenv.WriteModule(t, dir, gomod, map[string]string{"main.go": main})
		env := goEnv(t, in, up, cache, "GONOSUMDB="+private)
		mustGo(t, dir, env, "mod", "tidy")
		mustGo(t, dir, env, "build", "-o", filepath.Join(dir, "app"), ".")
	}

	in := startModgate(t, up, edit)
	build(in)
	in.shutdown(t)

	const zipKey = "example.com/greet/@v/v1.0.0.zip" // private: only modgate can catch it
	const modKey = "example.com/hello/@v/v1.0.0.mod" // public
	flipByte(t, data, zipKey)
	flipByte(t, data, modKey)

	// verify reports both and changes nothing.
	code, rep := runVerify(t, cfgFile)
	if code != 1 {
		t.Errorf("verify on a corrupt store: exit %d, want 1", code)
	}
	bad := map[string]integrity.Status{}
	for _, f := range rep.Findings {
		bad[f.Key] = f.Status
	}
	if bad[zipKey] != integrity.Corrupt || bad[modKey] != integrity.Corrupt || len(bad) != 2 {
		t.Errorf("verify findings = %+v, want %s and %s corrupt", rep.Findings, zipKey, modKey)
	}
	if rep.Summary.Files < 4 || rep.Summary.OK != rep.Summary.Files-2 {
		t.Errorf("verify summary = %+v, want every other file ok", rep.Summary)
	}

	// The serve path refuses both after a restart, with the reason.
	in = startModgate(t, up, edit)
	env := goEnv(t, in, up, "GONOSUMDB="+private)
	for _, m := range []string{"example.com/greet@v1.0.0", "example.com/hello@v1.0.0"} {
		stderr := failGo(t, t.TempDir(), env, "mod", "download", m)
		if !strings.Contains(stderr, "502 Bad Gateway") || !strings.Contains(stderr, "is corrupt") {
			t.Errorf("go mod download %s with a corrupt stored file:\n%s\nwant a 502 naming the corruption", m, stderr)
		}
	}
	for _, k := range []string{zipKey, modKey} {
		if in.stored(k) || !in.stored("quarantine/"+k) {
			t.Errorf("%s: not moved to quarantine/ by the serve path", k)
		}
	}
	if _, body, _ := in.get(t, "/metrics"); !bytes.Contains(body, []byte(`modgate_store_corrupt_total{file="zip",found_by="serve"} 1`)) {
		t.Errorf("metrics do not count the corrupt zip:\n%s", grepLines(string(body), "modgate_store_corrupt"))
	}
	// The next request fetches them again, verified: the build works.
	build(in)
	in.shutdown(t)

	// verify --repair restores corrupt files from the upstream, and a
	// private go.mod the ledger says was served but the store lost.
	flipByte(t, data, zipKey)
	flipByte(t, data, modKey)
	const lostKey = "example.com/greet/@v/v1.0.0.mod"
	if err := os.Remove(filepath.Join(data, "modules", lostKey)); err != nil {
		t.Fatal(err)
	}
	code, rep = runVerify(t, cfgFile)
	if code != 1 || rep.Summary.Missing != 1 || rep.Summary.Corrupt != 2 {
		t.Errorf("verify with a lost private go.mod: exit %d, summary %+v, findings %+v; want 1 missing, 2 corrupt", code, rep.Summary, rep.Findings)
	}
	up.ResetLog()
	code, rep = runVerify(t, cfgFile, "--repair")
	if code != 0 || rep.Summary.Repaired != 3 || rep.Summary.Quarantined != 2 {
		t.Errorf("verify --repair: exit %d, summary %+v, findings %+v; want 3 repaired (2 quarantined) and exit 0", code, rep.Summary, rep.Findings)
	}
	for _, k := range []string{zipKey, modKey, lostKey} {
		if up.Count("/"+k) != 1 {
			t.Errorf("verify --repair fetched %v from the upstream, want each bad file once", up.Requests())
		}
	}
	if code, rep = runVerify(t, cfgFile); code != 0 || rep.Summary.Corrupt != 0 {
		t.Errorf("verify after repair: exit %d, %+v", code, rep)
	}
	in = startModgate(t, up, edit)
	build(in)
}

// TestScrub: with storage.scrub_interval set, the background scrub finds
// a corrupt stored zip, quarantines it, fetches it again, and counts it;
// the metrics exist at zero before.
func TestScrub(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	data := filepath.Join(t.TempDir(), "data")
	in := startModgate(t, up, func(c *config.Config) { c.DataDir = data })
	mustGo(t, t.TempDir(), goEnv(t, in, up), "mod", "download", "example.com/hello@v1.1.0")
	_, body, _ := in.get(t, "/metrics")
	for _, series := range []string{
		`modgate_scrub_files_total{file="zip",status="corrupt"} 0`,
		`modgate_store_corrupt_total{file="mod",found_by="scrub"} 0`,
		`modgate_purges_total 0`,
	} {
		if !bytes.Contains(body, []byte(series)) {
			t.Errorf("metrics lack %s", series)
		}
	}
	in.shutdown(t)

	const key = "example.com/hello/@v/v1.1.0.zip"
	good := mustRead(t, filepath.Join(data, "modules", key))
	flipByte(t, data, key)
	in = startModgate(t, up, func(c *config.Config) {
		c.DataDir = data
		c.Storage.ScrubInterval = config.Duration{Duration: time.Hour}
	})
	pollUntil(t, 20*time.Second, func() string {
		_, body, _ := in.get(t, "/metrics")
		if !bytes.Contains(body, []byte(`modgate_scrub_files_total{file="zip",status="corrupt"} 1`)) {
			return "scrub has not counted the corrupt zip:\n" + grepLines(string(body), "scrub")
		}
		return ""
	})
	pollUntil(t, 10*time.Second, func() string {
		got, err := os.ReadFile(filepath.Join(data, "modules", key))
		if err != nil || !bytes.Equal(got, good) {
			return fmt.Sprintf("zip not repaired: %v", err)
		}
		return ""
	})
	if !in.stored("quarantine/" + key) {
		t.Error("the corrupt copy was not kept in quarantine/")
	}
}
