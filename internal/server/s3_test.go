package server_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/modgate/modgate/internal/config"
	"github.com/modgate/modgate/internal/testenv"
)

// s3Config returns an edit that puts module files in bucket on srv, with
// the credentials in a file.
func s3Config(t testing.TB, srv *testenv.S3Server, bucket string) func(*config.Config) {
	creds := filepath.Join(t.TempDir(), "s3-credentials")
	if err := os.WriteFile(creds, []byte(srv.AccessKey+"\n"+srv.SecretKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return func(c *config.Config) {
		c.Storage.Type = config.StorageTypeS3
		c.Storage.S3.Endpoint = srv.Endpoint
		c.Storage.S3.Bucket = bucket
		c.Storage.S3.Prefix = "modgate/"
		c.Storage.S3.CredentialsFile = creds
	}
}

// TestS3Storage runs the go command through two replicas sharing a bucket
// of a real versitygw: what one stored the other serves without the
// upstream; with S3 stopped, cached files are still served, uncached ones
// fail with a clear 503 and /readyz is 503; once S3 is back everything
// works again without a restart.
func TestS3Storage(t *testing.T) {
	srv := testenv.NewS3(t)
	bucket := srv.NewBucket(t)
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	a := startModgate(t, up, s3Config(t, srv, bucket))

	got := goDownload(t, goEnv(t, a, up), "example.com/hello@v1.0.0", "example.com/Upper@v1.0.0")
	for _, d := range got {
		m := up.Module(d.Path, d.Version)
		if d.Error != "" || m == nil || d.Sum != m.ZipHash || d.GoModSum != m.ModHash {
			t.Errorf("through replica a: %+v", d)
		}
	}
	for _, key := range []string{"example.com/hello/@v/v1.0.0.zip", "example.com/!upper/@v/v1.0.0.mod"} {
		if _, err := srv.Client().HeadObject(t.Context(), &awss3.HeadObjectInput{Bucket: &bucket, Key: aws.String("modgate/" + key)}); err != nil {
			t.Errorf("object %s is not in the bucket: %v", key, err)
		}
		if a.stored(key) {
			t.Errorf("%s was written to the data directory's disk store too", key)
		}
	}

	// Replica b shares the bucket: it serves what a stored, with the
	// upstream down.
	b := startModgate(t, up, s3Config(t, srv, bucket))
	up.SetDown(true)
	got = goDownload(t, goEnv(t, b, up), "example.com/hello@v1.0.0")
	if len(got) != 1 || got[0].Error != "" || got[0].Sum != up.Module("example.com/hello", "v1.0.0").ZipHash {
		t.Errorf("through replica b with the upstream down: %+v", got)
	}
	up.SetDown(false)

	srv.Stop()
	if status, body, _ := a.get(t, "/readyz"); status != http.StatusServiceUnavailable || !strings.Contains(string(body), "storage") {
		t.Errorf("S3 down: /readyz = %d %q, want 503 naming the storage", status, body)
	}
	// Files replica a has in its local cache are still served.
	got = goDownload(t, goEnv(t, a, up), "example.com/hello@v1.0.0")
	if len(got) != 1 || got[0].Error != "" {
		t.Errorf("S3 down: a cached module through replica a: %+v", got)
	}
	// An uncached one fails with a clear 503, and nothing is stored.
	status, body, _ := a.get(t, "/example.com/greet/@v/v1.0.0.zip")
	if status != http.StatusServiceUnavailable || !strings.Contains(string(body), "storage is unavailable") || strings.Contains(string(body), srv.Endpoint) {
		t.Errorf("S3 down: uncached zip = %d %q, want 503 saying storage is unavailable (without the endpoint)", status, body)
	}
	stderr := failGo(t, t.TempDir(), goEnv(t, a, up), "mod", "download", "example.com/greet@v1.0.0")
	if !strings.Contains(stderr, "storage is unavailable") {
		t.Errorf("S3 down: go mod download of an uncached module said %q, want the storage named", stderr)
	}

	srv.Start(t)
	if status, body, _ := a.get(t, "/readyz"); status != http.StatusOK {
		t.Errorf("S3 back: /readyz = %d %q", status, body)
	}
	got = goDownload(t, goEnv(t, a, up), "example.com/greet@v1.0.0")
	if len(got) != 1 || got[0].Error != "" || got[0].Sum != up.Module("example.com/greet", "v1.0.0").ZipHash {
		t.Errorf("S3 back: %+v", got)
	}
}
