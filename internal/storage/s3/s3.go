// Package s3 is a storage.Store in a bucket of an S3-compatible object
// store (AWS S3, MinIO, Ceph, versitygw), shared by any number of modgate
// replicas, with a bounded cache on local disk in front.
//
// # Keys
//
// A storage key is the object key, after an optional prefix: the key
// "example.com/!corp/lib/@v/v1.2.0.zip" is the object
// "{prefix}example.com/!corp/lib/@v/v1.2.0.zip". The bucket is therefore
// laid out like the disk store's directory.
//
// # Writes
//
// Every Put first copies its reader to a file in the cache's temporary
// directory, then sends that file in one PutObject with a known length:
// the bytes stream from disk and are never held in memory, whatever their
// size (module zips are at most 500 MB, far below the 5 GB limit of one
// PutObject). A single PutObject is atomic in S3: readers see the old
// object or the new one, never a part, and a failed or cancelled upload
// leaves nothing.
//
// Names that storage.Immutable accepts (module files of canonical
// versions, checksum database lookups and tiles) are written with the
// conditional header If-None-Match: *. When two replicas fill the same
// file, S3 keeps the first one and answers the second 412 Precondition
// Failed, which Put treats as success: the file is stored, and its content
// is the same by construction, since both copies passed the same
// verification against the checksum database. Nothing ever replaces the
// bytes of an immutable object. Other names (lists, @latest, remembered
// answers, the checksum database's latest tree) are overwritten.
//
// # The local cache
//
// Immutable files are read from the local cache (Config.CacheDir): a miss
// downloads the object to a temporary file, checks its length against the
// one S3 reported, syncs and renames it into place, so that a partial
// download is never served. Get then returns the cached *os.File, which
// the HTTP server sends with sendfile, as it does for the disk store. The
// cache is bounded (Config.CacheMaxBytes) and evicts the least recently
// used files first; it holds nothing that S3 does not, so it may be wiped
// at any time, running or not. A file the cache cannot take (larger than
// the bound, or the cache's disk is full) is streamed from S3 instead.
// Files written through this Store go into the cache as they are
// uploaded. Mutable files are always read from S3, because another replica
// may have replaced them.
//
// # Errors
//
// A missing object is fs.ErrNotExist. An S3 that cannot be reached or
// answers with an error is storage.ErrUnavailable (the server answers
// 503); files in the local cache are still served meanwhile, and nothing
// is stored. The store retries on its own at the next request: there is
// no state to recover.
package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"golang.org/x/sync/singleflight"

	"github.com/modgate/modgate/internal/storage"
)

// Config says which bucket to use and how to reach it.
type Config struct {
	// Endpoint is the server's URL, for example "http://127.0.0.1:7070".
	// Empty means AWS's endpoint for Region.
	Endpoint string
	Region   string
	Bucket   string
	// Prefix is put in front of every key: "" or a path ending in "/".
	Prefix string
	// PathStyle puts the bucket in the URL's path rather than its host
	// name, as most self-hosted servers want.
	PathStyle bool

	AccessKey string
	SecretKey string

	// CacheDir holds the local cache. Required.
	CacheDir string
	// CacheMaxBytes bounds the local cache; 0 or less turns it off (every
	// read goes to S3, and files are streamed from it).
	CacheMaxBytes int64

	// HTTPClient sends the requests; nil means a client with short
	// connection timeouts, so that an unreachable server fails fast.
	HTTPClient *http.Client

	// Log receives warnings about the cache; nil discards them.
	Log *slog.Logger
}

// Store is a storage.Store in an S3 bucket. It also implements
// storage.FilePutter, storage.Lister and storage.Deleter. A Store is safe
// for concurrent use, also by several processes (replicas) sharing the
// bucket, each with a cache of its own.
type Store struct {
	client *awss3.Client
	bucket string
	prefix string
	cache  *diskCache
	log    *slog.Logger
	fills  singleflight.Group // name → download into the cache
}

var (
	_ storage.Store      = (*Store)(nil)
	_ storage.FilePutter = (*Store)(nil)
	_ storage.Lister     = (*Store)(nil)
	_ storage.Deleter    = (*Store)(nil)
)

const (
	// fillTimeout bounds the download of one object into the cache. It
	// runs detached from the request that started it, because other
	// requests may wait for it.
	fillTimeout = 10 * time.Minute

	// maxMemoryObject is the largest mutable object Get reads into memory
	// (lists and answers are far smaller); larger ones are streamed.
	maxMemoryObject = 1 << 20
)

// New returns a store for cfg's bucket. It creates the cache directory and
// clears its temporary files, but does not contact the server: a server
// that is down makes requests fail with storage.ErrUnavailable until it is
// back (see Ready).
func New(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("s3 store: no bucket")
	}
	if p := cfg.Prefix; p != "" && (!strings.HasSuffix(p, "/") || storage.CheckName(strings.TrimSuffix(p, "/")) != nil) {
		return nil, fmt.Errorf("s3 store: prefix %q is not a relative path ending in /", p)
	}
	if cfg.CacheDir == "" {
		return nil, errors.New("s3 store: no cache directory")
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cache, err := newDiskCache(cfg.CacheDir, cfg.CacheMaxBytes)
	if err != nil {
		return nil, fmt.Errorf("s3 store: %w", err)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 3 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost:   64,
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: 30 * time.Second,
			// Large PutObjects ask "Expect: 100-continue" first, so a
			// conditional put that loses gets its 412 before sending
			// the body.
			ExpectContinueTimeout: time.Second,
			TLSHandshakeTimeout:   5 * time.Second,
		}}
	}
	opts := awss3.Options{
		Region:       cfg.Region,
		UsePathStyle: cfg.PathStyle,
		Credentials:  credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, ""),
		HTTPClient:   hc,
		// The payload is signed (SigV4 hashes it as it streams from the
		// temporary file); extra checksums would read it once more.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		RetryMaxAttempts:           2,
	}
	if cfg.Endpoint != "" {
		opts.BaseEndpoint = aws.String(cfg.Endpoint)
	}
	return &Store{
		client: awss3.New(opts),
		bucket: cfg.Bucket,
		prefix: cfg.Prefix,
		cache:  cache,
		log:    log,
	}, nil
}

// key is the object key of a storage name.
func (s *Store) key(name string) string { return s.prefix + name }

// Ready reports whether the bucket can be reached, for /readyz: nil, or an
// error matching storage.ErrUnavailable.
func (s *Store) Ready(ctx context.Context) error {
	if _, err := s.client.HeadBucket(ctx, &awss3.HeadBucketInput{Bucket: &s.bucket}); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("checking s3 bucket %s: %w", s.bucket, ctx.Err())
		}
		// A missing bucket (404) is unavailable storage too.
		return &unavailableError{op: "checking bucket", name: s.bucket, err: err}
	}
	return nil
}

// Get returns the file stored under name. Immutable files come from the
// local cache as an *os.File (filled from S3 on a miss); mutable ones from
// S3, as a reader with Stat (and Seek when small). Errors match
// fs.ErrNotExist, storage.ErrInvalidName or storage.ErrUnavailable.
func (s *Store) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := storage.CheckName(name); err != nil {
		return nil, err
	}
	if !storage.Immutable(name) || !s.cache.enabled() {
		return s.getObject(ctx, name)
	}
	if f, err := s.cache.open(name); err == nil {
		return f, nil
	}
	ch := s.fills.DoChan(name, func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fillTimeout)
		defer cancel()
		return nil, s.fill(fctx, name)
	})
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("reading %s from s3: %w", name, ctx.Err())
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
	}
	if f, err := s.cache.open(name); err == nil {
		return f, nil
	}
	// Too large for the cache, or evicted at once by other fills: read it
	// from S3 directly.
	return s.getObject(ctx, name)
}

// fill downloads name into the cache.
func (s *Store) fill(ctx context.Context, name string) error {
	out, err := s.client.GetObject(ctx, &awss3.GetObjectInput{Bucket: &s.bucket, Key: aws.String(s.key(name))})
	if err != nil {
		return s.classify(ctx, "reading", name, err)
	}
	defer out.Body.Close()
	size := aws.ToInt64(out.ContentLength)
	if out.ContentLength == nil || !s.cache.fits(size) {
		return nil // the caller streams it
	}
	tmp, err := s.cache.temp()
	if err != nil {
		// A full or broken cache disk must not stop serving: the
		// caller streams the object instead.
		s.log.Warn("s3 cache cannot take a file", "key", name, "err", err)
		return nil
	}
	n, err := io.Copy(tmp, out.Body)
	if err == nil && n != size {
		err = fmt.Errorf("got %d bytes, s3 announced %d", n, size)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp.Name())
		switch {
		case ctx.Err() != nil:
			return fmt.Errorf("reading %s from s3: %w", name, err)
		case isLocal(err):
			s.log.Warn("s3 cache cannot take a file", "key", name, "err", err)
			return nil // the caller streams it
		}
		return &unavailableError{op: "reading", name: name, err: err}
	}
	if err := s.cache.commit(name, tmp.Name(), n); err != nil {
		s.log.Warn("adding a file to the s3 cache failed", "key", name, "err", err)
	}
	return nil
}

// isLocal reports whether err comes from the local file system rather than
// the network.
func isLocal(err error) bool {
	var pe *fs.PathError
	return errors.As(err, &pe)
}

// getObject reads name from S3 without the cache.
func (s *Store) getObject(ctx context.Context, name string) (io.ReadCloser, error) {
	out, err := s.client.GetObject(ctx, &awss3.GetObjectInput{Bucket: &s.bucket, Key: aws.String(s.key(name))})
	if err != nil {
		return nil, s.classify(ctx, "reading", name, err)
	}
	info := storage.FileInfo{FileName: name, FileSize: aws.ToInt64(out.ContentLength), FileModTime: aws.ToTime(out.LastModified)}
	if out.ContentLength == nil || info.FileSize > maxMemoryObject {
		return &objectReader{ReadCloser: out.Body, info: info}, nil
	}
	defer out.Body.Close()
	data, err := io.ReadAll(io.LimitReader(out.Body, info.FileSize+1))
	if err == nil && int64(len(data)) != info.FileSize {
		err = fmt.Errorf("got %d bytes, s3 announced %d", len(data), info.FileSize)
	}
	if err != nil {
		return nil, s.classify(ctx, "reading", name, err)
	}
	return &memReader{Reader: bytes.NewReader(data), info: info}, nil
}

// Put stores the content of r under name: see the package doc for how,
// and which names are never replaced. On error nothing is stored.
func (s *Store) Put(ctx context.Context, name string, r io.Reader) error {
	if err := storage.CheckName(name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("storing %s: %w", name, err)
	}
	tmp, err := s.cache.temp()
	if err != nil {
		return fmt.Errorf("storing %s: %w", name, err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName) // no-op once the cache took it
	err = copyContext(ctx, tmp, r)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("storing %s: %w", name, err)
	}
	return s.putLocal(ctx, name, tmpName)
}

// PutFile uploads the local file at localPath under name, as Put does,
// and then moves it into the cache (or removes it). On error localPath is
// left for the caller to remove.
func (s *Store) PutFile(ctx context.Context, name, localPath string) error {
	if err := storage.CheckName(name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("storing %s from %s: %w", name, localPath, err)
	}
	if err := s.putLocal(ctx, name, localPath); err != nil {
		return err
	}
	if err := os.Remove(localPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("storing %s: stored, but removing the local file: %w", name, err)
	}
	return nil
}

// putLocal uploads the file at path under name and, when this upload
// created an immutable object, moves the file into the cache.
func (s *Store) putLocal(ctx context.Context, name, path string) error {
	created, size, err := s.upload(ctx, name, path)
	if err != nil {
		return err
	}
	if created && storage.Immutable(name) && s.cache.fits(size) {
		if err := s.cache.adopt(name, path, size); err != nil {
			s.log.Warn("adding a file to the s3 cache failed", "key", name, "err", err)
		}
	}
	return nil
}

// upload sends the file at path as the object for name. For an immutable
// name it is a conditional put: created is false when the object existed
// already (another replica stored it first), which is not an error.
func (s *Store) upload(ctx context.Context, name, path string) (created bool, size int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return false, 0, fmt.Errorf("storing %s: %w", name, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, 0, fmt.Errorf("storing %s: %w", name, err)
	}
	if !fi.Mode().IsRegular() {
		return false, 0, fmt.Errorf("storing %s: %s is not a regular file", name, path)
	}
	in := &awss3.PutObjectInput{
		Bucket:        &s.bucket,
		Key:           aws.String(s.key(name)),
		Body:          f,
		ContentLength: aws.Int64(fi.Size()),
	}
	immutable := storage.Immutable(name)
	if immutable {
		in.IfNoneMatch = aws.String("*")
	}
	// A conditional put that races another one may be answered 409
	// (conflict): try again, and the second answer is 412 or success.
	for attempt := 0; ; attempt++ {
		_, err = s.client.PutObject(ctx, in)
		if err == nil {
			return true, fi.Size(), nil
		}
		status := httpStatus(err)
		if immutable && status == http.StatusPreconditionFailed {
			return false, fi.Size(), nil
		}
		if immutable && status == 0 && ctx.Err() == nil && s.exists(ctx, name) {
			// A server that refuses a conditional put may answer
			// before reading the body and close the connection, which
			// the client sees as a failed send. One PutObject is
			// atomic, so an object that is there now was stored whole:
			// by another replica, or by this upload whose answer got
			// lost. Either way the file is stored.
			return false, fi.Size(), nil
		}
		if !immutable || status != http.StatusConflict || attempt >= 5 {
			return false, 0, s.classify(ctx, "storing", name, err)
		}
		if _, serr := f.Seek(0, io.SeekStart); serr != nil {
			return false, 0, fmt.Errorf("storing %s: %w", name, serr)
		}
		select {
		case <-ctx.Done():
			return false, 0, fmt.Errorf("storing %s: %w", name, ctx.Err())
		case <-time.After(time.Duration(attempt+1) * 50 * time.Millisecond):
		}
	}
}

// exists reports whether the object for name is there.
func (s *Store) exists(ctx context.Context, name string) bool {
	_, err := s.client.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: &s.bucket, Key: aws.String(s.key(name))})
	return err == nil
}

// List returns the sorted names of the objects directly below dir.
func (s *Store) List(ctx context.Context, dir string) ([]string, error) {
	if err := storage.CheckDir(dir); err != nil {
		return nil, err
	}
	prefix := s.key(dir)
	var names []string
	p := awss3.NewListObjectsV2Paginator(s.client, &awss3.ListObjectsV2Input{
		Bucket:    &s.bucket,
		Prefix:    &prefix,
		Delimiter: aws.String("/"),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, s.classify(ctx, "listing", dir, err)
		}
		for _, o := range page.Contents {
			rest, ok := strings.CutPrefix(aws.ToString(o.Key), prefix)
			if ok && rest != "" && !strings.Contains(rest, "/") && storage.CheckName(dir+rest) == nil {
				names = append(names, rest)
			}
		}
	}
	slices.Sort(names)
	return names, nil
}

// Delete removes name from S3 and from the local cache. Deleting an
// absent name is not an error.
func (s *Store) Delete(ctx context.Context, name string) error {
	if err := storage.CheckName(name); err != nil {
		return err
	}
	s.cache.remove(name)
	if _, err := s.client.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: &s.bucket, Key: aws.String(s.key(name))}); err != nil {
		if err := s.classify(ctx, "deleting", name, err); !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// CacheLen returns the number of files and bytes in the local cache.
func (s *Store) CacheLen() (files int, bytes int64) { return s.cache.len() }

// classify turns an error from the S3 client into the storage classes: a
// missing object matches fs.ErrNotExist, the caller's cancellation its
// context error, anything else storage.ErrUnavailable.
func (s *Store) classify(ctx context.Context, op, name string, err error) error {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	if errors.As(err, &nsk) || errors.As(err, &nf) || httpStatus(err) == http.StatusNotFound {
		var nb *types.NoSuchBucket
		if !errors.As(err, &nb) && apiCode(err) != "NoSuchBucket" {
			return &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%s %s in s3: %w", op, name, ctx.Err())
	}
	return &unavailableError{op: op, name: name, err: err}
}

// httpStatus is the HTTP status of an S3 error response, or 0.
func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// apiCode is the S3 error code of err, or "".
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// unavailableError is an S3 failure: it matches storage.ErrUnavailable and
// the underlying error; clients see only a short sentence (the full text,
// with the endpoint's URL, is for the log).
type unavailableError struct {
	op, name string
	err      error
}

func (e *unavailableError) Error() string {
	return fmt.Sprintf("%s %s in s3: %v: %v", e.op, e.name, storage.ErrUnavailable, e.err)
}

func (e *unavailableError) Unwrap() []error { return []error{storage.ErrUnavailable, e.err} }

// PublicError is what a client is told.
func (e *unavailableError) PublicError() string {
	return "module storage is unavailable, try again later"
}

// objectReader is an S3 object's body with Stat, like an *os.File.
type objectReader struct {
	io.ReadCloser
	info storage.FileInfo
}

func (r *objectReader) Stat() (fs.FileInfo, error) { return r.info, nil }

// memReader is a small object read into memory: seekable, with Stat.
type memReader struct {
	*bytes.Reader
	info storage.FileInfo
}

func (r *memReader) Stat() (fs.FileInfo, error) { return r.info, nil }
func (r *memReader) Close() error               { return nil }

// copyContext copies r to w until r is exhausted, checking ctx before each
// read so that a slow source can be abandoned.
func copyContext(ctx context.Context, w io.Writer, r io.Reader) error {
	buf := make([]byte, 128<<10)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, rerr := r.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return fmt.Errorf("reading content: %w", rerr)
		}
	}
}
