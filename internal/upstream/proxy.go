package upstream

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Results passed to ProxyOptions.Observe, one per attempt.
const (
	ResultOK       = "ok"        // 200, the body is being handed to the caller
	ResultNotFound = "not_found" // 404, 410 or 403, or a missing file
	ResultError    = "error"     // any other status, a network or file error
	ResultTimeout  = "timeout"   // no answer in time
	// ResultCanceled means the caller gave up (its context was cancelled,
	// not expired) during the attempt; it says nothing about the upstream's
	// health.
	ResultCanceled = "canceled"
)

// ProxyOptions tunes a Proxy (and the HTTP fetches of Direct).
type ProxyOptions struct {
	// Retries is how many times a failed idempotent request is retried
	// after ErrUnavailable or ErrTimeout: 0 means the default (2), a
	// negative value disables retries. Not-found answers are never
	// retried, nor is anything once the body has been handed over.
	Retries int
	// Logger receives a warning for every retry; nil discards.
	Logger *slog.Logger
	// Observe, when not nil, is called once per attempt with the source's
	// String, one of the Result constants, and the time to the response
	// header (or to the failure). It must be cheap and safe for concurrent
	// use.
	Observe func(upstream, result string, d time.Duration)
	// ObserveBytes, when not nil, is told the body bytes read from each
	// answer, once, when it is closed. Same rules as Observe.
	ObserveBytes func(upstream string, n int64)
}

const (
	defaultRetries = 2
	backoffBase    = 100 * time.Millisecond
	backoffMax     = 2 * time.Second
	// An error body is read up to maxErrorBody bytes, and its first line
	// is quoted up to maxSnippet bytes.
	maxErrorBody = 4 << 10
	maxSnippet   = 200
)

// A Proxy is a Source that fetches from another GOPROXY server, over http
// or https, or from a local directory laid out as a GOPROXY (file://).
// It is safe for concurrent use.
type Proxy struct {
	name string // the URL as given, redacted
	// For http(s):
	get  *getter
	base *url.URL // without user information
	auth string   // Authorization header value, or ""
	// For file://:
	dir string
}

// NewProxy returns a Proxy for the GOPROXY server at rawURL (http, https or
// file). User information in an http(s) URL is sent as Basic
// authentication and never shown (String and errors use the redacted URL).
// client is used for http(s); nil means NewHTTPClient(HTTPConfig{}).
func NewProxy(rawURL string, client *http.Client, opts ProxyOptions) (*Proxy, error) {
	u, shown, err := parseProxyURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("proxy URL %q: %w", shown, err)
	}
	p := &Proxy{name: redactUser(u)}
	if u.Scheme == "file" {
		p.dir = filepath.FromSlash(u.Path)
		p.get = newGetter(nil, p.name, opts)
		return p, nil
	}
	if client == nil {
		client = NewHTTPClient(HTTPConfig{})
	}
	p.get = newGetter(client, p.name, opts)
	p.base, p.auth = splitAuth(u)
	return p, nil
}

// parseProxyURL parses and checks the URL of a GOPROXY server. It also
// returns the URL as it may be shown (credentials redacted), for the caller
// to name it in errors; err itself does not repeat the URL.
func parseProxyURL(raw string) (u *url.URL, shown string, err error) {
	u, err = url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its message would repeat the URL unredacted
		}
		return nil, RedactURL(raw), err
	}
	shown = redactUser(u)
	switch u.Scheme {
	case "https", "http":
		if u.Host == "" {
			return nil, shown, errors.New("missing host")
		}
	case "file":
		if u.Host != "" || u.User != nil || u.Opaque != "" || u.RawQuery != "" || u.Fragment != "" || !strings.HasPrefix(u.Path, "/") {
			return nil, shown, errors.New("a file URL must be file:///absolute/path and nothing else")
		}
	case "":
		return nil, shown, errors.New("missing scheme (want https://, http:// or file://)")
	default:
		return nil, shown, fmt.Errorf("scheme %q not supported (want https, http or file)", u.Scheme)
	}
	return u, shown, nil
}

// splitAuth returns u without user information and the Basic
// Authorization header value it carried.
func splitAuth(u *url.URL) (*url.URL, string) {
	base := *u
	base.User = nil
	if u.User == nil {
		return &base, ""
	}
	pass, _ := u.User.Password()
	cred := u.User.Username() + ":" + pass
	return &base, "Basic " + base64.StdEncoding.EncodeToString([]byte(cred))
}

// String returns the proxy URL with any password redacted.
func (p *Proxy) String() string { return p.name }

// Fetch fetches path (an escaped protocol path such as
// "example.com/m/@v/v1.0.0.info") from the proxy. See the package comment
// for the error classes. The body of a successful answer is streamed, not
// buffered; read errors from it are classified the same way.
func (p *Proxy) Fetch(ctx context.Context, path string) (*Response, error) {
	if err := checkPath(path); err != nil {
		return nil, fmt.Errorf("upstream %q: %w", p.name, err)
	}
	if p.dir != "" {
		return p.fetchFile(ctx, path)
	}
	return p.get.fetch(ctx, target{name: p.name, base: p.base, auth: p.auth}, path)
}

// checkPath accepts clean relative slash-separated paths: no leading
// slash, no empty, "." or ".." elements, no backslashes or control
// characters. It is a last line of defence; callers validate the protocol.
func checkPath(path string) error {
	if path == "" {
		return fmt.Errorf("empty path: %w", fs.ErrInvalid)
	}
	if path[0] == '/' {
		return fmt.Errorf("path %q is not relative: %w", path, fs.ErrInvalid)
	}
	for i := 0; i < len(path); i++ {
		if c := path[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return fmt.Errorf("path %q contains an invalid character: %w", path, fs.ErrInvalid)
		}
	}
	for elem := range strings.SplitSeq(path, "/") {
		if elem == "" || elem == "." || elem == ".." {
			return fmt.Errorf("path %q is not clean: %w", path, fs.ErrInvalid)
		}
	}
	return nil
}

// fetchFile answers path from the local GOPROXY directory.
func (p *Proxy) fetchFile(ctx context.Context, path string) (*Response, error) {
	if err := ctx.Err(); err != nil {
		return nil, ctxError(ctx, p.name, path, nil)
	}
	start := time.Now()
	f, err := os.Open(filepath.Join(p.dir, filepath.FromSlash(path)))
	if err == nil {
		var fi os.FileInfo
		fi, err = f.Stat()
		switch {
		case err != nil:
			f.Close()
		case fi.IsDir():
			f.Close()
			err = fmt.Errorf("%s is a directory: %w", f.Name(), fs.ErrNotExist)
		default:
			p.get.observe(ResultOK, start)
			return &Response{Body: f, Size: fi.Size(), Upstream: p.name}, nil
		}
	}
	if errors.Is(err, fs.ErrNotExist) {
		p.get.observe(ResultNotFound, start)
		return nil, fmt.Errorf("upstream %q: %w", p.name, err)
	}
	p.get.observe(ResultError, start)
	return nil, classify(ErrUnavailable, fmt.Errorf("upstream %q: %w", p.name, err))
}

// A target is one http(s) GOPROXY root to fetch from.
type target struct {
	name string   // redacted, for messages and Response.Upstream
	base *url.URL // without user information
	auth string   // Authorization header value, or ""
}

// getter performs GETs with retries, classification and observation.
// It is shared by Proxy and Direct.
type getter struct {
	client      *http.Client
	observeName string // the upstream label given to observe
	retries     int
	log         *slog.Logger
	observeFn   func(upstream, result string, d time.Duration)
	bytesFn     func(upstream string, n int64)
}

func newGetter(client *http.Client, observeName string, opts ProxyOptions) *getter {
	g := &getter{client: client, observeName: observeName, observeFn: opts.Observe, bytesFn: opts.ObserveBytes, log: opts.Logger}
	switch {
	case opts.Retries == 0:
		g.retries = defaultRetries
	case opts.Retries > 0:
		g.retries = opts.Retries
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	g.log = g.log.With("component", "upstream")
	return g
}

func (g *getter) observe(result string, start time.Time) {
	if g.observeFn != nil {
		g.observeFn(g.observeName, result, time.Since(start))
	}
}

// fetch GETs path below t.base, retrying failures that may be transient.
func (g *getter) fetch(ctx context.Context, t target, path string) (*Response, error) {
	u := *t.base
	u.Path = strings.TrimSuffix(t.base.Path, "/") + "/" + path
	if t.base.RawPath != "" {
		u.RawPath = strings.TrimSuffix(t.base.RawPath, "/") + "/" + strings.ReplaceAll(url.PathEscape(path), "%2F", "/")
	}
	rawURL := u.String()

	var lastErr error
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if !sleep(ctx, backoff(attempt)) {
				return nil, ctxError(ctx, t.name, path, lastErr)
			}
		}
		resp, err := g.once(ctx, t, rawURL, path)
		if err == nil {
			return resp, nil
		}
		lastErr = err
		if attempt >= g.retries || !(errors.Is(err, ErrUnavailable) || errors.Is(err, ErrTimeout)) || errors.Is(err, ErrRedirect) {
			return nil, err
		}
		if ctx.Err() != nil {
			// The caller gave up while the answer was on its way: it
			// would have been retried, so report the cancellation.
			return nil, ctxError(ctx, t.name, path, lastErr)
		}
		g.log.Warn("retrying upstream request", "upstream", t.name, "path", path, "attempt", attempt+1, "err", err)
	}
}

// backoff returns the wait before retry number attempt (1, 2, ...):
// 100ms, 200ms, 400ms... up to backoffMax, each jittered down by up to a
// half so that many clients retrying at once spread out.
func backoff(attempt int) time.Duration {
	d := backoffMax
	if attempt <= 10 {
		d = min(backoffBase<<(attempt-1), backoffMax)
	}
	return d/2 + rand.N(d/2+1)
}

// sleep waits for d, and reports false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// once makes one attempt.
func (g *getter) once(ctx context.Context, t target, rawURL, path string) (*Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("upstream %q: %s: %w", t.name, path, err)
	}
	if t.auth != "" {
		req.Header.Set("Authorization", t.auth)
	}
	start := time.Now()
	resp, err := g.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(context.Cause(ctx), errBudget) {
				g.observe(ResultTimeout, start) // the upstream was too slow for the caller
			} else {
				g.observe(ResultCanceled, start)
			}
			return nil, ctxError(ctx, t.name, path, nil)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // drop "Get <url>": the message names the upstream
		}
		if isTimeout(err) {
			g.observe(ResultTimeout, start)
			return nil, classify(ErrTimeout, fmt.Errorf("upstream %q timed out for %s: %w", t.name, path, err))
		}
		g.observe(ResultError, start)
		if errors.Is(err, ErrRedirect) {
			return nil, classify(ErrUnavailable, fmt.Errorf("upstream %q redirected %s: %w", t.name, path, err))
		}
		return nil, classify(ErrUnavailable, fmt.Errorf("upstream %q failed for %s: %w", t.name, path, err))
	}
	if resp.StatusCode == http.StatusOK {
		g.observe(ResultOK, start)
		return &Response{
			Body:     &body{rc: resp.Body, ctx: ctx, name: t.name, path: path, observe: g.bytesFn, label: g.observeName},
			Size:     resp.ContentLength,
			Upstream: t.name,
		}, nil
	}
	serr := &StatusError{Upstream: t.name, Path: path, StatusCode: resp.StatusCode, Body: snippet(resp)}
	resp.Body.Close()
	if notFoundStatus(resp.StatusCode) {
		g.observe(ResultNotFound, start)
	} else {
		g.observe(ResultError, start)
	}
	return nil, serr
}

// snippet returns the first line of a text/plain (or untyped) error body,
// sanitized for a log line or a one-line error message.
func snippet(resp *http.Response) string {
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "text/plain" {
			return ""
		}
	}
	buf, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	line, _, _ := bytes.Cut(buf, []byte("\n"))
	line = bytes.TrimSpace(line)
	if len(line) > maxSnippet {
		line = line[:maxSnippet] // a character cut in half is dropped below
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t':
			return ' '
		case r == utf8.RuneError || !unicode.IsPrint(r):
			return -1
		}
		return r
	}, string(line))
}

// body classifies errors met while streaming a response body, so that a
// connection reset halfway through a zip reads as ErrUnavailable and a
// stalled one as ErrTimeout, naming the upstream.
type body struct {
	rc   io.ReadCloser
	ctx  context.Context
	name string
	path string

	observe func(upstream string, n int64) // may be nil
	label   string
	n       int64
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.n += int64(n)
	if err != nil && err != io.EOF {
		err = b.classify(err)
	}
	return n, err
}

func (b *body) classify(err error) error {
	switch {
	case b.ctx.Err() != nil:
		return ctxError(b.ctx, b.name, b.path, nil)
	case isTimeout(err):
		return classify(ErrTimeout, fmt.Errorf("upstream %q: reading %s: %w", b.name, b.path, err))
	default:
		return classify(ErrUnavailable, fmt.Errorf("upstream %q: reading %s: %w", b.name, b.path, err))
	}
}

func (b *body) Close() error {
	if b.observe != nil {
		b.observe(b.label, b.n)
		b.observe = nil
	}
	return b.rc.Close()
}
