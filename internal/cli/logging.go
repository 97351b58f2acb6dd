package cli

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/modgate/modgate/internal/config"
	"github.com/modgate/modgate/internal/reqlog"
)

// logFlushInterval bounds how long an access-log line waits in the buffer.
const logFlushInterval = 100 * time.Millisecond

// newLogger returns the process logger described by c, writing to w, and a
// function that flushes and stops it.
//
// Access-log lines (one per request, the only high-volume records) are
// buffered and written in batches at least every logFlushInterval: one
// write(2) per line costs about a tenth of the CPU of serving a cached
// file. Every other record — lifecycle, warnings, errors, security events —
// is written at once, so a crash loses at most that interval of access
// lines and nothing else.
func newLogger(c config.Log, w io.Writer) (*slog.Logger, func()) {
	out := &batchWriter{w: bufio.NewWriterSize(w, 64<<10), done: make(chan struct{})}
	opts := &slog.HandlerOptions{Level: c.SlogLevel()}
	var h slog.Handler
	if c.Format == config.LogFormatJSON {
		h = slog.NewJSONHandler(out, opts)
	} else {
		h = slog.NewTextHandler(out, opts)
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(logFlushInterval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				out.flush()
			case <-out.done:
				out.flush()
				return
			}
		}
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			close(out.done)
			<-stopped
		})
	}
	return slog.New(batchHandler{h, out}), stop
}

// batchWriter buffers what the handler writes. Writes are serialized.
type batchWriter struct {
	mu   sync.Mutex
	w    *bufio.Writer
	done chan struct{}
}

func (b *batchWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.w.Write(p)
}

func (b *batchWriter) flush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.w.Flush()
}

// batchHandler flushes after every record except access-log lines.
type batchHandler struct {
	slog.Handler
	out *batchWriter
}

func (h batchHandler) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Message != reqlog.Message || r.Level >= slog.LevelWarn {
		h.out.flush()
	}
	return err
}

func (h batchHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return batchHandler{h.Handler.WithAttrs(attrs), h.out}
}

func (h batchHandler) WithGroup(name string) slog.Handler {
	return batchHandler{h.Handler.WithGroup(name), h.out}
}

// NewLogger is the logger `modgate serve` uses, for benchmarks that must
// log exactly as serve does. The returned function flushes and stops it.
func NewLogger(c config.Log, w io.Writer) (*slog.Logger, func()) { return newLogger(c, w) }
