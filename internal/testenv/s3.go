package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// versitygwVersion is the S3 server the tests run; .ci/run builds it into
// $HOME/.cache/modgate-ci/bin.
const versitygwVersion = "v1.8.0"

// An S3Server is a real versitygw (an S3-compatible server with a POSIX
// back end) on 127.0.0.1, serving the buckets below a temporary directory.
// Tests that stop and start it (to see what modgate does while S3 is down)
// get a private one from NewS3; the others share one through S3.
type S3Server struct {
	Endpoint  string // http://127.0.0.1:port
	AccessKey string
	SecretKey string

	bin, root, addr string
	log             *LogBuffer

	mu  sync.Mutex
	cmd *exec.Cmd
}

var sharedS3 struct {
	once    sync.Once
	srv     *S3Server
	err     error
	missing bool // err says the binary is missing
}

// versitygwPath finds the versitygw binary: on PATH, or where .ci/run
// builds it.
func versitygwPath() (string, error) {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	p := filepath.Join(home, ".cache", "modgate-ci", "bin", "versitygw")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("not on PATH and not at %s", p)
	}
	return p, nil
}

// S3 returns the endpoint and credentials of the versitygw shared by the
// test process (started on first use; StopS3, called from TestMain, stops
// it) and the name of a new, empty bucket for this test. Without a
// versitygw binary it skips the test, or fails it under
// MODGATE_REQUIRE_SERVERS=1 (see Unavailable).
func S3(t testing.TB) (endpoint, bucket, accessKey, secretKey string) {
	t.Helper()
	sharedS3.once.Do(func() {
		bin, err := versitygwPath()
		if err != nil {
			sharedS3.missing = true
			sharedS3.err = fmt.Errorf("testenv: no versitygw (GOBIN=$HOME/.cache/modgate-ci/bin go install github.com/versity/versitygw/cmd/versitygw@%s, as .ci/run does): %w", versitygwVersion, err)
			return
		}
		root, err := os.MkdirTemp("", "modgate-s3-")
		if err != nil {
			sharedS3.err = err
			return
		}
		srv := &S3Server{bin: bin, root: root, AccessKey: "modgate-test", SecretKey: randomHex(), log: new(LogBuffer)}
		if err := srv.start(); err != nil {
			os.RemoveAll(root)
			sharedS3.err = err
			return
		}
		sharedS3.srv = srv
	})
	if sharedS3.err != nil {
		if sharedS3.missing {
			Unavailable(t, "%v", sharedS3.err)
		}
		t.Fatal(sharedS3.err)
	}
	srv := sharedS3.srv
	return srv.Endpoint, srv.NewBucket(t), srv.AccessKey, srv.SecretKey
}

// StopS3 stops the versitygw that S3 started, if any, and removes its
// files. TestMain calls it after m.Run.
func StopS3() {
	if srv := sharedS3.srv; srv != nil {
		srv.Stop()
		os.RemoveAll(srv.root)
	}
}

// NewS3 starts a private versitygw for a test that stops and starts it,
// and stops it when the test ends.
func NewS3(t testing.TB) *S3Server {
	t.Helper()
	bin, err := versitygwPath()
	if err != nil {
		Unavailable(t, "testenv: no versitygw (GOBIN=$HOME/.cache/modgate-ci/bin go install github.com/versity/versitygw/cmd/versitygw@%s, as .ci/run does): %v", versitygwVersion, err)
	}
	srv := &S3Server{bin: bin, root: t.TempDir(), AccessKey: "modgate-test", SecretKey: randomHex(), log: new(LogBuffer)}
	if err := srv.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	return srv
}

func randomHex() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// start runs versitygw on a free port (the same one again after Stop) and
// waits until its health endpoint answers.
func (s *S3Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return nil
	}
	if s.addr == "" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		s.addr = ln.Addr().String()
		ln.Close()
		s.Endpoint = "http://" + s.addr
	}
	data := filepath.Join(s.root, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return err
	}
	cmd := exec.Command(s.bin, "--port", s.addr, "--health", "/health", "posix", data)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+s.AccessKey, "ROOT_SECRET_KEY="+s.SecretKey)
	cmd.Stdout = s.log
	cmd.Stderr = s.log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("testenv: starting versitygw: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(s.Endpoint + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-exited:
			return fmt.Errorf("testenv: versitygw exited at start: %s", s.log.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-exited
			return fmt.Errorf("testenv: versitygw not healthy after 15s: %s", s.log.String())
		}
	}
	s.cmd = cmd
	return nil
}

// Start starts the server again after Stop, on the same address and data.
func (s *S3Server) Start(t testing.TB) {
	t.Helper()
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
}

// Stop stops the server (SIGKILL, as a crash would); its data stays.
func (s *S3Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	s.cmd.Process.Wait()
	s.cmd = nil
}

// Client returns an S3 client for the server, for tests that look at the
// objects themselves.
func (s *S3Server) Client() *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint:               aws.String(s.Endpoint),
		Region:                     "us-east-1",
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

// NewBucket creates a new, empty bucket and returns its name.
func (s *S3Server) NewBucket(t testing.TB) string {
	t.Helper()
	name := "modgate-" + randomHex()[:12]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("testenv: creating bucket %s: %v (versitygw log: %s)", name, err, s.log.String())
	}
	return name
}
