package reqlog

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

type recorded struct {
	artifact, cache string
	status          int
	bytes           int64
}

type fakeRecorder struct{ got []recorded }

func (r *fakeRecorder) Request(artifact string, status int, cache string, bytes int64, _ time.Duration) {
	r.got = append(r.got, recorded{artifact, cache, status, bytes})
}

func TestMiddleware(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	rec := &fakeRecorder{}
	h := Middleware(log, rec)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e := From(r.Context())
		e.Artifact, e.Module, e.Version, e.Cache = "zip", "example.com/a", "v1.0.0", "hit"
		// Files are sent through ReadFrom (sendfile); the wrapper must
		// keep it and count the bytes.
		if _, ok := w.(io.ReaderFrom); !ok {
			t.Error("the middleware's ResponseWriter lost io.ReaderFrom")
		}
		w.(io.ReaderFrom).ReadFrom(strings.NewReader("12345"))
	}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/example.com/a/@v/v1.0.0.zip", nil))

	id := w.Header().Get("X-Request-Id")
	if id == "" {
		t.Error("no X-Request-Id header")
	}
	if len(rec.got) != 1 || rec.got[0] != (recorded{"zip", "hit", 200, 5}) {
		t.Errorf("recorded %+v, want one zip/hit/200/5 bytes", rec.got)
	}
	var line map[string]any
	if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
		t.Fatalf("access log is not one JSON line: %v\n%s", err, logs.String())
	}
	for k, want := range map[string]any{"msg": "request", "id": id, "status": 200.0, "bytes": 5.0, "module": "example.com/a", "version": "v1.0.0", "cache": "hit", "level": "INFO"} {
		if line[k] != want {
			t.Errorf("log %s = %v, want %v", k, line[k], want)
		}
	}
}

func TestMiddlewareErrorsAndIDs(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	h := Middleware(log, nil)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		From(r.Context()).Err = io.ErrUnexpectedEOF
		w.WriteHeader(http.StatusBadGateway)
	}))
	ids := map[string]bool{}
	for range 3 {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/x", nil))
		ids[w.Header().Get("X-Request-Id")] = true
	}
	if len(ids) != 3 {
		t.Errorf("request ids are not unique: %v", ids)
	}
	if !strings.Contains(logs.String(), `"level":"WARN"`) || !strings.Contains(logs.String(), `"err":"unexpected EOF"`) {
		t.Errorf("a 502 should log at WARN with its error:\n%s", logs.String())
	}
	// A client-supplied id is kept when it is reasonable.
	w := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/x", nil)
	req.Header.Set("X-Request-Id", "from-the-load-balancer")
	h.ServeHTTP(w, req)
	if got := w.Header().Get("X-Request-Id"); got != "from-the-load-balancer" {
		t.Errorf("X-Request-Id = %q, want the one the client sent", got)
	}
}
