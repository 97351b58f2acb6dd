package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/modgate/modgate/internal/testenv"
)

// TestImportData moves a single modgate's data directory into a cluster
// with `modgate import-data`, as the README says: afterwards the replicas
// serve its modules with the upstream down (files, checksum database
// lookups and tree head included), its token works, its ledger records
// are shared; a second run copies nothing, and an object changed in the
// bucket is reported as a conflict and left alone.
func TestImportData(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	mods := []string{"example.com/hello@v1.0.0", "example.com/greet@v1.0.0", "example.com/Upper@v1.0.0"}

	// The single node: downloads, a token, a private module's ledger record.
	single := filepath.Join(t.TempDir(), "single")
	p := startBinary(t, []string{"MODGATE_DATA_DIR=" + single, "MODGATE_GOPROXY=" + up.URL(), "MODGATE_GOSUMDB=" + up.VerifierKey()})
	clusterDownload(t, p.URL, up, mods...)
	p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.done
	out := runModgateWant(t, nil, 0, "token", "create", "--data-dir", single, "--name", "ci", "--scope", "admin")
	token := tokenFrom(t, out)
	ledgerLine := "corp.example.com/lib v1.0.0 h1:2mGJdSSDwRoAG3IWEUvvIzz4n0m8fNaSTE1TANTokyM= 2026-01-02T03:04:05Z\n"
	if err := os.MkdirAll(filepath.Join(single, "ledger"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(single, "ledger", "ledger.sum"), []byte(ledgerLine), 0o644); err != nil {
		t.Fatal(err)
	}

	files := countFiles(t, single)
	var imported string
	c := newCluster(t, up, 2, clusterOptions{before: func(c *cluster) {
		imported = runModgateWant(t, c.env, 0, "import-data", "--config", c.config, "--from", single)
		again := runModgateWant(t, c.env, 0, "import-data", "--config", c.config, "--from", single)
		if !strings.HasPrefix(again, "0 module files copied") || strings.Contains(again, " 0 already there") ||
			!strings.Contains(again, "state copied: 0 tokens, 0 ledger records, 0 tree heads") {
			t.Errorf("import-data again:\n%s\nwant nothing copied, everything already there", again)
		}
	}})
	if strings.HasPrefix(imported, "0 module files") || !strings.Contains(imported, "state copied: 1 tokens, 1 ledger records, 1 tree heads") {
		t.Errorf("import-data:\n%s", imported)
	}

	if n := countFiles(t, single); n != files {
		t.Errorf("the data directory had %d files before the import, %d after; the source must be only read", files, n)
	}

	// The cluster serves the single node's modules without the upstream.
	up.SetDown(true)
	got := clusterDownload(t, c.lb.URL, up, mods...)
	for m, s := range got {
		path, version, _ := strings.Cut(m, "@")
		if want := up.Module(path, version); s != want.ZipHash+" "+want.ModHash {
			t.Errorf("%s from the cluster = %s, want %s %s", m, s, want.ZipHash, want.ModHash)
		}
	}
	req, _ := http.NewRequest("GET", c.replicas[1].URL+"/admin/tokens", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("the single node's admin token on a replica: %d, want 200", resp.StatusCode)
	}
	if got := c.psql(t, "select count(*) from ledger"); got != "1" {
		t.Errorf("ledger rows in the cluster: %s, want 1", got)
	}

	// Other bytes under an imported name: a conflict, named, left alone.
	key := "example.com/hello/@v/v1.0.0.mod"
	if _, err := c.s3.Client().PutObject(context.Background(), &awss3.PutObjectInput{
		Bucket: aws.String(c.bucket), Key: aws.String(key), Body: strings.NewReader("module evil\n"),
	}); err != nil {
		t.Fatal(err)
	}
	out = runModgateWant(t, c.env, 1, "import-data", "--config", c.config, "--from", single)
	if !strings.Contains(out, "conflict, left alone: module file "+key) {
		t.Errorf("import-data over a changed object:\n%s\nwant it named as a conflict", out)
	}
	if got := runModgateWant(t, nil, 2, "import-data", "--config", c.config); !strings.Contains(got, "--from DIR is required") {
		t.Errorf("import-data without --from: %s", got)
	}
}

// runModgateWant runs the modgate binary and fails unless it exits with want;
// it returns stdout and stderr together.
func runModgateWant(t *testing.T, env []string, want int, args ...string) string {
	t.Helper()
	code, out, stderr := runModgate(t, env, args...)
	if code != want {
		t.Fatalf("modgate %v: exit %d, want %d\n%s%s", args, code, want, out, stderr)
	}
	return out + stderr
}

// countFiles counts the regular files under dir.
func countFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
