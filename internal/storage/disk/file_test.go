package disk

import (
	"bytes"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/storage/storagetest"
)

// getFile stores data under a key and opens it again with Get.
func getFile(t testing.TB, data []byte) io.ReadSeekCloser {
	t.Helper()
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	name := "example.com/m/@v/v1.0.0.zip"
	if err := s.Put(t.Context(), name, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	rc, err := s.Get(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Close() })
	return rc.(io.ReadSeekCloser)
}

// TestFileSeekProbe checks that the size probe answered without a system
// call leaves the file reading from where the caller was told it is.
func TestFileSeekProbe(t *testing.T) {
	data := storagetest.Content(100_000, 7)
	size := int64(len(data))
	seek := func(t *testing.T, f io.Seeker, off int64, whence int, want int64) {
		t.Helper()
		if got, err := f.Seek(off, whence); err != nil || got != want {
			t.Fatalf("Seek(%d, %d) = %d, %v; want %d", off, whence, got, err, want)
		}
	}
	readAll := func(t *testing.T, r io.Reader, want []byte) {
		t.Helper()
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("read %d bytes, %v; want %d bytes of the file", len(got), err, len(want))
		}
	}
	t.Run("probe then read", func(t *testing.T) {
		f := getFile(t, data)
		seek(t, f, 0, io.SeekEnd, size)
		seek(t, f, 0, io.SeekCurrent, size)
		seek(t, f, 0, io.SeekStart, 0)
		readAll(t, f, data)
	})
	t.Run("read at end", func(t *testing.T) {
		f := getFile(t, data)
		seek(t, f, 0, io.SeekEnd, size)
		readAll(t, f, nil)
		seek(t, f, -10, io.SeekEnd, size-10)
		readAll(t, f, data[size-10:])
	})
	t.Run("real seeks after a read", func(t *testing.T) {
		f := getFile(t, data)
		buf := make([]byte, 10)
		if _, err := io.ReadFull(f, buf); err != nil {
			t.Fatal(err)
		}
		seek(t, f, 0, io.SeekCurrent, 10)
		seek(t, f, 0, io.SeekEnd, size)
		seek(t, f, 0, io.SeekStart, 0)
		readAll(t, f, data)
	})
	t.Run("relative seek", func(t *testing.T) {
		f := getFile(t, data)
		seek(t, f, 0, io.SeekEnd, size)
		seek(t, f, -5, io.SeekCurrent, size-5)
		readAll(t, f, data[size-5:])
	})
	t.Run("descriptor at end", func(t *testing.T) {
		// What reaches the descriptor directly (sendfile) must see the
		// offset Seek reported.
		f := getFile(t, data)
		seek(t, f, 0, io.SeekEnd, size)
		readAll(t, sendfileReader(t, f), nil)
	})
	t.Run("descriptor from the start", func(t *testing.T) {
		f := getFile(t, data)
		seek(t, f, 0, io.SeekEnd, size)
		seek(t, f, 0, io.SeekStart, 0)
		readAll(t, sendfileReader(t, f), data)
	})
	t.Run("stat", func(t *testing.T) {
		f := getFile(t, data)
		fi, err := f.(interface{ Stat() (fs.FileInfo, error) }).Stat()
		if err != nil || fi.Size() != size || !fi.Mode().IsRegular() {
			t.Fatalf("Stat() = %v, %v; want a regular file of %d bytes", fi, err, size)
		}
	})
}

// sendfileReader copies f to a loopback TCP connection the way net/http
// sends a file (TCPConn.ReadFrom, which uses sendfile(2) through
// SyscallConn) and returns what the other end received.
func sendfileReader(t *testing.T, f io.Reader) io.Reader {
	t.Helper()
	if _, ok := f.(syscall.Conn); !ok {
		t.Fatalf("%T has no SyscallConn: sendfile cannot reach it", f)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		b, _ := io.ReadAll(c)
		got <- b
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.(*net.TCPConn).ReadFrom(f); err != nil {
		t.Fatal(err)
	}
	c.Close()
	return bytes.NewReader(<-got)
}

// TestFileServeContent serves a stored file with http.ServeContent, whole
// and by ranges, over a real connection.
func TestFileServeContent(t *testing.T) {
	data := storagetest.Content(300_000, 3)
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	name := "example.com/m/@v/v1.0.0.zip"
	if err := s.Put(t.Context(), name, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc, err := s.Get(r.Context(), name)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer rc.Close()
		http.ServeContent(w, r, "", time.Time{}, rc.(io.ReadSeeker))
	}))
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		name, rng string
		want      []byte
	}{
		{"whole", "", data},
		{"range", "bytes=1000-1999", data[1000:2000]},
		{"suffix", "bytes=-500", data[len(data)-500:]},
		{"open end", "bytes=299000-", data[299000:]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL, nil)
			if tc.rng != "" {
				req.Header.Set("Range", tc.rng)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, err := io.ReadAll(resp.Body)
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Fatalf("GET Range %q: %d bytes, %v; want %d bytes", tc.rng, len(got), err, len(tc.want))
			}
			if cl := resp.Header.Get("Content-Length"); cl != strconv.Itoa(len(tc.want)) {
				t.Errorf("Content-Length %q, want %d", cl, len(tc.want))
			}
		})
	}
}

// BenchmarkServePath is what the server asks of a stored file on a cache
// hit that misses the memory cache: Get, three Stats (memory cache,
// integrity guard, headers), http.ServeContent's size probe, the read and
// the close.
func BenchmarkServePath(b *testing.B) {
	s, err := New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	name := "example.com/!corp/lib/@v/v1.2.0.mod"
	data := storagetest.Content(4096, 1)
	if err := s.Put(b.Context(), name, bytes.NewReader(data)); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 8192)
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		rc, err := s.Get(ctx, name)
		if err != nil {
			b.Fatal(err)
		}
		for range 3 {
			if _, err := rc.(interface{ Stat() (fs.FileInfo, error) }).Stat(); err != nil {
				b.Fatal(err)
			}
		}
		rs := rc.(io.ReadSeeker)
		if n, err := rs.Seek(0, io.SeekEnd); err != nil || n != int64(len(data)) {
			b.Fatalf("Seek(0, End) = %d, %v", n, err)
		}
		if _, err := rs.Seek(0, io.SeekStart); err != nil {
			b.Fatal(err)
		}
		if n, err := io.ReadFull(rs, buf[:len(data)]); err != nil || n != len(data) {
			b.Fatalf("read %d bytes, %v", n, err)
		}
		rc.Close()
	}
}
