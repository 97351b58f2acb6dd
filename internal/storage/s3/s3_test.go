package s3

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/modgate/modgate/internal/storage"
	"github.com/modgate/modgate/internal/storage/storagetest"
	"github.com/modgate/modgate/internal/testenv"
)

func TestMain(m *testing.M) {
	testenv.GuardNetwork()
	code := m.Run()
	testenv.StopS3()
	os.Exit(code)
}

// newStore returns a store over a new bucket of the shared versitygw.
func newStore(t *testing.T, cacheMax int64) *Store {
	t.Helper()
	endpoint, bucket, ak, sk := testenv.S3(t)
	return openStore(t, Config{Endpoint: endpoint, Bucket: bucket, AccessKey: ak, SecretKey: sk}, cacheMax)
}

func openStore(t *testing.T, cfg Config, cacheMax int64) *Store {
	t.Helper()
	cfg.Region = "us-east-1"
	cfg.PathStyle = true
	if cfg.CacheDir == "" {
		cfg.CacheDir = t.TempDir()
	}
	cfg.CacheMaxBytes = cacheMax
	s, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store { return newStore(t, 64<<20) })
}

func TestConformanceWithoutCache(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store { return newStore(t, 0) })
}

func TestConformanceWithPrefix(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		endpoint, bucket, ak, sk := testenv.S3(t)
		return openStore(t, Config{Endpoint: endpoint, Bucket: bucket, Prefix: "mirror/a/", AccessKey: ak, SecretKey: sk}, 64<<20)
	})
}

func mustPut(t *testing.T, s storage.Store, name string, data []byte) {
	t.Helper()
	if err := s.Put(t.Context(), name, bytes.NewReader(data)); err != nil {
		t.Fatalf("Put(%q) = %v", name, err)
	}
}

func readAll(t *testing.T, s storage.Store, name string) ([]byte, error) {
	t.Helper()
	rc, err := s.Get(t.Context(), name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// TestImmutableRace: 16 replicas (stores with caches of their own) fill
// one zip at once, each with different bytes so that an overwrite would
// show. Exactly one upload creates the object, every Put succeeds, readers
// during the race see nothing or one whole copy, and afterwards every
// replica and S3 itself serve the winner's bytes.
func TestImmutableRace(t *testing.T) {
	endpoint, bucket, ak, sk := testenv.S3(t)
	const writers = 16
	const name = "example.com/race/@v/v1.0.0.zip"
	stores := make([]*Store, writers)
	contents := make([][]byte, writers)
	for i := range stores {
		stores[i] = openStore(t, Config{Endpoint: endpoint, Bucket: bucket, AccessKey: ak, SecretKey: sk}, 64<<20)
		contents[i] = storagetest.Content(1<<20+i, uint64(i))
	}
	isCopy := func(data []byte) int {
		for i, c := range contents {
			if bytes.Equal(data, c) {
				return i
			}
		}
		return -1
	}
	var created atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, s := range stores {
		wg.Go(func() {
			<-start
			tmp := filepath.Join(t.TempDir(), "zip")
			if err := os.WriteFile(tmp, contents[i], 0o644); err != nil {
				t.Error(err)
				return
			}
			ok, _, err := s.upload(t.Context(), name, tmp)
			if err != nil {
				t.Errorf("writer %d: upload = %v", i, err)
			}
			if ok {
				created.Add(1)
			}
		})
	}
	stop := make(chan struct{})
	var readers sync.WaitGroup
	reader := openStore(t, Config{Endpoint: endpoint, Bucket: bucket, AccessKey: ak, SecretKey: sk}, 0)
	for range 4 {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				data, err := readAll(t, reader, name)
				if errors.Is(err, fs.ErrNotExist) {
					continue
				}
				if err != nil {
					t.Errorf("Get during the race: %v", err)
					return
				}
				if isCopy(data) < 0 {
					t.Errorf("Get during the race read %d bytes that are no writer's whole copy", len(data))
					return
				}
			}
		})
	}
	close(start)
	wg.Wait()
	close(stop)
	readers.Wait()
	if n := created.Load(); n != 1 {
		t.Fatalf("%d uploads created the object, want exactly 1", n)
	}
	first, err := readAll(t, stores[0], name)
	if err != nil {
		t.Fatal(err)
	}
	winner := isCopy(first)
	if winner < 0 {
		t.Fatalf("stored object is no writer's copy")
	}
	for i, s := range stores {
		got, err := readAll(t, s, name)
		if err != nil || !bytes.Equal(got, contents[winner]) {
			t.Errorf("replica %d reads %d bytes, %v; want writer %d's copy", i, len(got), err, winner)
		}
	}
	// S3's own view: one object, the winner's bytes (a single PUT's ETag
	// is the MD5 of its content).
	head, err := testenvClient(endpoint, ak, sk).HeadObject(t.Context(), &awss3.HeadObjectInput{Bucket: &bucket, Key: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum(contents[winner])
	if etag := strings.Trim(aws.ToString(head.ETag), `"`); etag != hex.EncodeToString(sum[:]) {
		t.Errorf("ETag = %s, want the MD5 of writer %d's copy", etag, winner)
	}
	// A later Put (a replica filling it again) changes nothing.
	if err := stores[3].Put(t.Context(), name, bytes.NewReader([]byte("other"))); err != nil {
		t.Errorf("Put of an existing immutable name = %v, want nil", err)
	}
	if got, _ := readAll(t, reader, name); !bytes.Equal(got, contents[winner]) {
		t.Errorf("after another Put, S3 holds %d bytes, want the first copy", len(got))
	}
}

func testenvClient(endpoint, ak, sk string) *awss3.Client {
	return (&testenv.S3Server{Endpoint: endpoint, AccessKey: ak, SecretKey: sk}).Client()
}

// TestMutableOverwrite: lists and the other mutable names are replaced,
// also when another replica wrote them, and never served from a cache.
func TestMutableOverwrite(t *testing.T) {
	endpoint, bucket, ak, sk := testenv.S3(t)
	a := openStore(t, Config{Endpoint: endpoint, Bucket: bucket, AccessKey: ak, SecretKey: sk}, 1<<20)
	b := openStore(t, Config{Endpoint: endpoint, Bucket: bucket, AccessKey: ak, SecretKey: sk}, 1<<20)
	for _, name := range []string{"example.com/m/@v/list", "example.com/m/@latest", "answers/example.com/m/@v/v1.0.0.info", "sumdb/sum.example.org/fallback/latest"} {
		mustPut(t, a, name, []byte("one"))
		if got, err := readAll(t, b, name); err != nil || string(got) != "one" {
			t.Fatalf("%s: replica b reads %q, %v", name, got, err)
		}
		mustPut(t, b, name, []byte("two"))
		if got, err := readAll(t, a, name); err != nil || string(got) != "two" {
			t.Errorf("%s: after b replaced it, replica a reads %q, %v; want two", name, got, err)
		}
	}
}

// TestCacheServesFiles: an immutable file read once is served from the
// local cache as an *os.File (what the HTTP server sends with sendfile),
// the cache is bounded, and wiping it only costs downloads.
func TestCacheServesFiles(t *testing.T) {
	s := newStore(t, 3<<20)
	names := []string{"example.com/c/@v/v1.0.0.zip", "example.com/c/@v/v1.1.0.zip", "example.com/c/@v/v1.2.0.zip"}
	for i, n := range names {
		mustPut(t, s, n, storagetest.Content(1<<20+100, uint64(i)))
	}
	if files, size := s.CacheLen(); files != 2 || size > 3<<20 {
		t.Errorf("cache holds %d files, %d bytes; want 2 files within 3 MB", files, size)
	}
	for i, n := range names {
		rc, err := s.Get(t.Context(), n)
		if err != nil {
			t.Fatalf("Get(%q) = %v", n, err)
		}
		if _, ok := rc.(*os.File); !ok {
			t.Errorf("Get(%q) returned %T, want an *os.File from the cache", n, rc)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		if !bytes.Equal(got, storagetest.Content(1<<20+100, uint64(i))) {
			t.Errorf("Get(%q) read wrong content", n)
		}
	}
	// Wipe the cache while running, leaving a partial temporary file and
	// a truncated stray: every Get still reads the whole files.
	if err := os.RemoveAll(s.cache.dir); err != nil {
		t.Fatal(err)
	}
	for i, n := range names {
		got, err := readAll(t, s, n)
		if err != nil || !bytes.Equal(got, storagetest.Content(1<<20+100, uint64(i))) {
			t.Errorf("after wiping the cache, Get(%q) = %d bytes, %v", n, len(got), err)
		}
	}
	// A new process over the same directory indexes what is there,
	// removes temporary files and ignores anything that is not an
	// immutable name.
	os.WriteFile(filepath.Join(s.cache.tmp, "put-123"), []byte("partial"), 0o644)
	os.MkdirAll(filepath.Join(s.cache.dir, "example.com/c/@v"), 0o755)
	os.WriteFile(filepath.Join(s.cache.dir, "example.com/c/@v/list"), []byte("v9.9.9\n"), 0o644)
	c2, err := newDiskCache(s.cache.dir, 3<<20)
	if err != nil {
		t.Fatal(err)
	}
	if files, _ := c2.len(); files != 2 {
		t.Errorf("reopened cache indexes %d files, want 2", files)
	}
	if _, err := os.Stat(filepath.Join(s.cache.tmp, "put-123")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("reopening the cache left a temporary file: %v", err)
	}
	if got, err := readAll(t, s, "example.com/c/@v/list"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a list in the cache directory was served: %q, %v", got, err)
	}
}

// TestS3Down: with the server stopped, cached files are still served,
// uncached ones and writes fail with storage.ErrUnavailable (nothing is
// stored, nothing cached), Ready says so, and everything works again once
// the server is back, without a new Store.
func TestS3Down(t *testing.T) {
	srv := testenv.NewS3(t)
	bucket := srv.NewBucket(t)
	s := openStore(t, Config{Endpoint: srv.Endpoint, Bucket: bucket, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey}, 64<<20)
	cached, uncached := "example.com/d/@v/v1.0.0.zip", "example.com/d/@v/v1.0.0.mod"
	mustPut(t, s, cached, []byte("zip bytes"))
	other := openStore(t, Config{Endpoint: srv.Endpoint, Bucket: bucket, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey}, 64<<20)
	mustPut(t, other, uncached, []byte("module example.com/d\n"))
	if err := s.Ready(t.Context()); err != nil {
		t.Fatalf("Ready with the server up = %v", err)
	}

	srv.Stop()
	if got, err := readAll(t, s, cached); err != nil || string(got) != "zip bytes" {
		t.Errorf("S3 down: Get(cached) = %q, %v; want it from the cache", got, err)
	}
	_, err := readAll(t, s, uncached)
	if !errors.Is(err, storage.ErrUnavailable) || errors.Is(err, fs.ErrNotExist) {
		t.Errorf("S3 down: Get(uncached) = %v, want storage.ErrUnavailable", err)
	}
	if err := s.Put(t.Context(), "example.com/d/@v/v1.1.0.zip", strings.NewReader("new")); !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("S3 down: Put = %v, want storage.ErrUnavailable", err)
	}
	if err := s.Put(t.Context(), "example.com/d/@v/list", strings.NewReader("v1.0.0\n")); !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("S3 down: Put(list) = %v, want storage.ErrUnavailable", err)
	}
	if _, err := s.List(t.Context(), "example.com/d/@v/"); !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("S3 down: List = %v, want storage.ErrUnavailable", err)
	}
	if err := s.Ready(t.Context()); !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("S3 down: Ready = %v, want storage.ErrUnavailable", err)
	}
	if files, _ := s.CacheLen(); files != 1 {
		t.Errorf("S3 down: cache holds %d files, want only the one cached before", files)
	}
	var pub interface{ PublicError() string }
	if !errors.As(err, &pub) || strings.Contains(pub.PublicError(), srv.Endpoint) {
		t.Errorf("S3 down: error %v has no public message without the endpoint", err)
	}

	srv.Start(t)
	if got, err := readAll(t, s, uncached); err != nil || string(got) != "module example.com/d\n" {
		t.Errorf("S3 back: Get(uncached) = %q, %v", got, err)
	}
	if _, err := readAll(t, s, "example.com/d/@v/v1.1.0.zip"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("S3 back: the Put that failed stored something: %v", err)
	}
	mustPut(t, s, "example.com/d/@v/v1.1.0.zip", []byte("new"))
	if err := s.Ready(t.Context()); err != nil {
		t.Errorf("S3 back: Ready = %v", err)
	}
}

// TestNoSuchBucket: a missing bucket is a configuration problem, never
// "not found" (which would make clients fall through to another proxy).
func TestNoSuchBucket(t *testing.T) {
	endpoint, _, ak, sk := testenv.S3(t)
	s := openStore(t, Config{Endpoint: endpoint, Bucket: "no-such-bucket-here", AccessKey: ak, SecretKey: sk}, 1<<20)
	if _, err := readAll(t, s, "example.com/x/@v/list"); errors.Is(err, fs.ErrNotExist) || !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("Get from a missing bucket = %v, want storage.ErrUnavailable", err)
	}
	if err := s.Ready(t.Context()); !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("Ready with a missing bucket = %v, want storage.ErrUnavailable", err)
	}
}

// genReader produces n bytes without holding them.
type genReader struct{ n, off int64 }

func (g *genReader) Read(p []byte) (int, error) {
	if g.off >= g.n {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), g.n-g.off)]
	for i := range p {
		p[i] = byte((g.off + int64(i)) * 7)
	}
	g.off += int64(len(p))
	return len(p), nil
}

// TestBigObjectStreams: a 100 MB zip goes up and comes back down without
// being held in memory: the bytes the process allocates over the whole
// round trip are a small fraction of the object.
func TestBigObjectStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("100 MB round trip")
	}
	s := newStore(t, 1<<30)
	const size = 100 << 20
	const name = "example.com/big/@v/v1.0.0.zip"
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	// Sample the heap while the object moves, for its peak.
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	if err := s.Put(t.Context(), name, &genReader{n: size}); err != nil {
		t.Fatalf("Put = %v", err)
	}
	s.cache.remove(name) // make Get download it
	rc, err := s.Get(t.Context(), name)
	if err != nil {
		t.Fatalf("Get = %v", err)
	}
	n, err := io.Copy(io.Discard, rc)
	rc.Close()
	runtime.ReadMemStats(&after)
	close(stop)
	<-sampled
	if err != nil || n != size {
		t.Fatalf("read %d bytes, %v; want %d", n, err, size)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	growth := int64(peak.Load()) - int64(before.HeapInuse)
	t.Logf("100 MB Put + Get allocated %.1f MB in total; peak heap in use %.1f MB, %.1f MB above the start",
		float64(alloc)/(1<<20), float64(peak.Load())/(1<<20), float64(growth)/(1<<20))
	if growth > size/10 {
		t.Errorf("heap in use grew by %d bytes during a 100 MB round trip, want under %d", growth, size/10)
	}
	if alloc > size/5 {
		t.Errorf("100 MB Put + Get allocated %d bytes, want under %d: the object is being buffered", alloc, size/5)
	}
}

// TestCacheConcurrent: many readers of files that are not cached yet, in
// a cache so small that fills evict each other, all read whole files.
func TestCacheConcurrent(t *testing.T) {
	endpoint, bucket, ak, sk := testenv.S3(t)
	writer := openStore(t, Config{Endpoint: endpoint, Bucket: bucket, AccessKey: ak, SecretKey: sk}, 0)
	const files = 6
	name := func(i int) string { return fmt.Sprintf("example.com/conc/@v/v1.0.%d.zip", i) }
	for i := range files {
		mustPut(t, writer, name(i), storagetest.Content(300_000+i, uint64(i)))
	}
	s := openStore(t, Config{Endpoint: endpoint, Bucket: bucket, AccessKey: ak, SecretKey: sk}, 700_000) // two files
	var wg sync.WaitGroup
	for g := range 24 {
		wg.Go(func() {
			for j := range 8 {
				i := (g + j) % files
				got, err := readAll(t, s, name(i))
				if err != nil || !bytes.Equal(got, storagetest.Content(300_000+i, uint64(i))) {
					t.Errorf("Get(%q) = %d bytes, %v; want the whole file", name(i), len(got), err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n, size := s.CacheLen(); size > 700_000 || n > 2 {
		t.Errorf("cache holds %d files, %d bytes; want at most 2 files within 700000 bytes", n, size)
	}
}

// TestPartialDownloadNotCached: a download cut short (the connection
// closes before the announced length) fails, leaves nothing in the cache,
// and the next Get reads the whole file.
func TestPartialDownloadNotCached(t *testing.T) {
	endpoint, bucket, ak, sk := testenv.S3(t)
	target, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	var cut atomic.Bool
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !cut.Load() || r.Method != http.MethodGet {
			rp.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		rp.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		body := rec.Body.Bytes()
		w.Write(body[:len(body)/2])
		// Hang up with half the announced bytes sent.
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	defer proxy.Close()
	s := openStore(t, Config{Endpoint: proxy.URL, Bucket: bucket, AccessKey: ak, SecretKey: sk}, 64<<20)
	const name = "example.com/cut/@v/v1.0.0.zip"
	data := storagetest.Content(1<<20, 42)
	writer := openStore(t, Config{Endpoint: endpoint, Bucket: bucket, AccessKey: ak, SecretKey: sk}, 0)
	mustPut(t, writer, name, data)

	cut.Store(true)
	if got, err := readAll(t, s, name); err == nil {
		t.Errorf("Get through a connection cut at half = %d bytes, nil error; want an error", len(got))
	} else if !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("Get through a connection cut at half = %v, want storage.ErrUnavailable", err)
	}
	if n, _ := s.CacheLen(); n != 0 {
		t.Errorf("after a cut download the cache holds %d files, want 0", n)
	}
	if _, err := os.Stat(filepath.Join(s.cache.dir, filepath.FromSlash(name))); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after a cut download, the cache file exists: %v", err)
	}
	cut.Store(false)
	if got, err := readAll(t, s, name); err != nil || !bytes.Equal(got, data) {
		t.Errorf("Get after the cut = %d bytes, %v; want the whole file", len(got), err)
	}
}

// TestBrokenCacheStillServes: when the cache cannot take files (its disk
// is full or broken), stored files are streamed from S3 instead.
func TestBrokenCacheStillServes(t *testing.T) {
	endpoint, bucket, ak, sk := testenv.S3(t)
	writer := openStore(t, Config{Endpoint: endpoint, Bucket: bucket, AccessKey: ak, SecretKey: sk}, 0)
	s := openStore(t, Config{Endpoint: endpoint, Bucket: bucket, AccessKey: ak, SecretKey: sk}, 64<<20)
	const name = "example.com/broken/@v/v1.0.0.zip"
	data := storagetest.Content(200_000, 7)
	mustPut(t, writer, name, data)
	// A file where the temporary directory should be: no temporary file
	// can be created, as on a full disk.
	if err := os.RemoveAll(s.cache.tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.cache.tmp, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	rc, err := s.Get(t.Context(), name)
	if err != nil {
		t.Fatalf("Get with a broken cache = %v, want the file from S3", err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("Get with a broken cache read %d bytes, %v; want the whole file", len(got), err)
	}
	if n, _ := s.CacheLen(); n != 0 {
		t.Errorf("broken cache holds %d files", n)
	}
}
