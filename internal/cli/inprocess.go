package cli

import (
	"io"
	"net/http"
	"strconv"
	"sync"
)

// handlerTransport is an http.RoundTripper that answers from an in-process
// handler, streaming the body through a pipe (a recorder would hold whole
// zips in memory). Commands that fill a data directory (prefetch, import)
// use it to go through exactly the code path serve uses: policy, storage,
// verification and audit, without opening a port.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	pr, pw := io.Pipe()
	rw := &pipeResponse{header: make(http.Header), pw: pw, ready: make(chan struct{})}
	if req.RemoteAddr == "" {
		req = req.Clone(req.Context())
		req.RemoteAddr = "127.0.0.1:0"
		req.RequestURI = req.URL.RequestURI()
		req.Host = req.URL.Host
	}
	go func() {
		defer pw.Close()
		defer rw.WriteHeader(http.StatusOK) // a handler that wrote nothing
		t.h.ServeHTTP(rw, req)
	}()
	select {
	case <-rw.ready:
	case <-req.Context().Done():
		pr.CloseWithError(req.Context().Err())
		return nil, req.Context().Err()
	}
	return &http.Response{
		Status:        http.StatusText(rw.status),
		StatusCode:    rw.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        rw.sent,
		Body:          pr,
		ContentLength: contentLength(rw.sent),
		Request:       req,
	}, nil
}

func contentLength(h http.Header) int64 {
	n, err := strconv.ParseInt(h.Get("Content-Length"), 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// pipeResponse is the handler's side of handlerTransport.
type pipeResponse struct {
	header http.Header
	sent   http.Header
	status int
	pw     *io.PipeWriter
	once   sync.Once
	ready  chan struct{}
}

func (w *pipeResponse) Header() http.Header { return w.header }

func (w *pipeResponse) WriteHeader(status int) {
	w.once.Do(func() {
		w.status = status
		w.sent = w.header.Clone()
		close(w.ready)
	})
}

func (w *pipeResponse) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.pw.Write(p)
}

func (w *pipeResponse) Flush() {}
