// Package reqlog carries what a handler learned about a request (which
// artifact, which module, cache result, the error) to the middleware that
// writes the one access-log line and the request metrics. Handlers fill the
// Entry found in the request context; they never log the request themselves.
package reqlog

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Message is the message of every access-log line, so that log plumbing can
// recognise (and batch) them.
const Message = "request"

// An Entry describes one request. Fields are set by handlers; the zero value
// is valid.
type Entry struct {
	ID       string // request id, also sent as X-Request-Id
	Artifact string // list, latest, info, mod, zip, sumdb, health, metrics, other
	Module   string
	Version  string
	Cache    string // hit, miss, stale; empty when not applicable
	Upstream string
	Err      error
	// Identity is who made the request, as authenticated ("" when
	// anonymous); ClientIP is the client's address (behind a trusted
	// proxy, the forwarded one).
	Identity string
	ClientIP string
	// AuthMethod, Issuer, Subject and Grants say how the identity was
	// established and why it has its scopes (see audit.Record).
	AuthMethod string
	Issuer     string
	Subject    string
	Grants     string
	// Rule names the policy rule that blocked or warned, and Warning is
	// the text of a warn rule, sent as a response header.
	Rule    string
	Warning string
}

// Done is called once per finished request, after the access log line,
// with the final status, body bytes and duration (the audit log).
type Done func(r *http.Request, e *Entry, status int, bytes int64, d time.Duration)

type ctxKey struct{}

// From returns the request's Entry. Outside the middleware it returns a
// fresh Entry whose contents are dropped, so handlers never need to check.
func From(ctx context.Context) *Entry {
	if e, ok := ctx.Value(ctxKey{}).(*Entry); ok {
		return e
	}
	return &Entry{}
}

// With returns ctx carrying e.
func With(ctx context.Context, e *Entry) context.Context {
	return context.WithValue(ctx, ctxKey{}, e)
}

// A Recorder receives one call per finished request (the metrics package).
type Recorder interface {
	Request(artifact string, status int, cache string, bytes int64, d time.Duration)
}

// Middleware gives every request an Entry and an id, and after the handler
// returns writes one access-log line (Info; Warn for 5xx) and the request
// metrics, then calls every done hook. rec may be nil.
func Middleware(log *slog.Logger, rec Recorder, done ...Done) func(http.Handler) http.Handler {
	gen := newIDs()
	bufs := &sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			e := &Entry{ID: r.Header.Get("X-Request-Id")}
			if e.ID == "" || len(e.ID) > 64 {
				e.ID = gen.next()
			}
			w.Header().Set("X-Request-Id", e.ID)
			sw := &statusWriter{ResponseWriter: w, bufs: bufs}
			next.ServeHTTP(sw, r.WithContext(With(r.Context(), e)))
			status := sw.status
			if status == 0 {
				status = http.StatusOK
			}
			d := time.Since(start)
			if e.Artifact == "" {
				e.Artifact = "other"
			}
			if rec != nil {
				rec.Request(e.Artifact, status, e.Cache, sw.bytes, d)
			}
			for _, f := range done {
				defer f(r, e, status, sw.bytes, d)
			}
			level := slog.LevelInfo
			if status >= 500 {
				level = slog.LevelWarn
			}
			if !log.Enabled(r.Context(), level) {
				return
			}
			// Room for every attribute, so that appending never grows it.
			attrs := make([]slog.Attr, 0, 14)
			attrs = append(attrs,
				slog.String("id", e.ID),
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.Int("status", status),
				slog.Int64("bytes", sw.bytes),
				slog.Duration("duration", d),
				slog.String("remote", r.RemoteAddr),
			)
			if e.Module != "" {
				attrs = append(attrs, slog.String("module", e.Module))
			}
			if e.Version != "" {
				attrs = append(attrs, slog.String("version", e.Version))
			}
			if e.Cache != "" {
				attrs = append(attrs, slog.String("cache", e.Cache))
			}
			if e.Upstream != "" {
				attrs = append(attrs, slog.String("upstream", e.Upstream))
			}
			if e.Identity != "" {
				attrs = append(attrs, slog.String("user", e.Identity))
			}
			if e.Rule != "" {
				attrs = append(attrs, slog.String("rule", e.Rule))
			}
			if e.Err != nil {
				attrs = append(attrs, slog.String("err", e.Err.Error()))
			}
			log.LogAttrs(r.Context(), level, Message, attrs...)
		})
	}
}

// ids makes request ids: a random per-process prefix and a counter, unique
// across restarts and replicas without a random read per request.
type ids struct {
	prefix string
	n      atomic.Uint64
}

func newIDs() *ids {
	var b [4]byte
	rand.Read(b[:])
	return &ids{prefix: hex.EncodeToString(b[:]) + "-"}
}

func (g *ids) next() string {
	return g.prefix + strconv.FormatUint(g.n.Add(1), 36)
}

// statusWriter records the status and body size. It keeps io.ReaderFrom so
// that files are still sent with sendfile(2) through it.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
	bufs   *sync.Pool // of *[]byte, for copying bodies in memory
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok && fromFile(r) {
		n, err = rf.ReadFrom(r)
	} else if wt, ok := inMemory(r); ok {
		// All of it, from where it is, in one Write.
		n, err = wt.WriteTo(writerOnly{w.ResponseWriter})
	} else {
		// A body in memory goes through the response's buffer, so that a
		// small one leaves in the same write(2) as the header; the
		// server's ReadFrom would write the header out first.
		buf := w.bufs.Get().(*[]byte)
		n, err = io.CopyBuffer(writerOnly{w.ResponseWriter}, r, *buf)
		w.bufs.Put(buf)
	}
	w.bytes += n
	return n, err
}

// fromFile reports whether r reads from a file descriptor (an *os.File, or
// one wrapped, as http.ServeContent does with io.LimitReader), which the
// connection can send with sendfile(2).
func fromFile(r io.Reader) bool {
	if lr, ok := r.(*io.LimitedReader); ok {
		r = lr.R
	}
	_, ok := r.(syscall.Conn)
	return ok
}

// inMemory returns the reader under http.ServeContent's io.LimitReader
// when it can write itself out (a bytes.Reader: the memory cache's files)
// and the limit covers the rest of it, so the body is written without
// first being copied into a buffer.
func inMemory(r io.Reader) (io.WriterTo, bool) {
	lr, ok := r.(*io.LimitedReader)
	if !ok {
		return nil, false
	}
	br, ok := lr.R.(interface {
		io.WriterTo
		Len() int
	})
	if !ok || int64(br.Len()) > lr.N {
		return nil, false
	}
	return br, true
}

// writerOnly hides a writer's ReadFrom from io.Copy.
type writerOnly struct{ io.Writer }

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush implements http.Flusher.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
