package reqlog

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// spyWriter is a ResponseWriter that says how the body reached it.
type spyWriter struct {
	*httptest.ResponseRecorder
	readFrom bool
}

func (w *spyWriter) ReadFrom(r io.Reader) (int64, error) {
	w.readFrom = true
	return io.Copy(w.ResponseRecorder, r)
}

// TestReadFromMemoryAndFile: a body in memory is written through the
// response's buffer (Write), so that a small one leaves with its header in
// one write(2); a file still reaches the connection's ReadFrom (sendfile).
// Both are counted and arrive whole.
func TestReadFromMemoryAndFile(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 300) // past net/http's 512-byte sniff
	path := filepath.Join(t.TempDir(), "f.zip")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		body     func(t *testing.T) io.Reader
		readFrom bool
	}{
		{"memory", func(*testing.T) io.Reader { return io.LimitReader(bytes.NewReader(data), int64(len(data))) }, false},
		{"memory, whole", func(*testing.T) io.Reader { return io.LimitReader(bytes.NewReader(data), 1<<20) }, false},
		{"memory, bare", func(*testing.T) io.Reader { return bytes.NewReader(data) }, false},
		{"file", func(t *testing.T) io.Reader {
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { f.Close() })
			return io.LimitReader(f, int64(len(data)))
		}, true},
		{"bare file", func(t *testing.T) io.Reader {
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { f.Close() })
			return f
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &fakeRecorder{}
			h := Middleware(slog.New(slog.DiscardHandler), rec)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.(io.ReaderFrom).ReadFrom(tc.body(t))
			}))
			w := &spyWriter{ResponseRecorder: httptest.NewRecorder()}
			h.ServeHTTP(w, httptest.NewRequest("GET", "/example.com/a/@v/v1.0.0.zip", nil))
			if w.readFrom != tc.readFrom {
				t.Errorf("the connection's ReadFrom called: %v, want %v", w.readFrom, tc.readFrom)
			}
			if !bytes.Equal(w.Body.Bytes(), data) {
				t.Errorf("body: %d bytes, want the %d written", w.Body.Len(), len(data))
			}
			if len(rec.got) != 1 || rec.got[0].bytes != int64(len(data)) {
				t.Errorf("recorded %+v, want %d bytes", rec.got, len(data))
			}
		})
	}
	// A limit below the reader's length still limits.
	t.Run("memory, limited", func(t *testing.T) {
		rec := &fakeRecorder{}
		h := Middleware(slog.New(slog.DiscardHandler), rec)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.(io.ReaderFrom).ReadFrom(io.LimitReader(bytes.NewReader(data), 100))
		}))
		w := &spyWriter{ResponseRecorder: httptest.NewRecorder()}
		h.ServeHTTP(w, httptest.NewRequest("GET", "/x", nil))
		if !bytes.Equal(w.Body.Bytes(), data[:100]) || len(rec.got) != 1 || rec.got[0].bytes != 100 {
			t.Errorf("body %d bytes, recorded %+v; want the first 100", w.Body.Len(), rec.got)
		}
	})
}
