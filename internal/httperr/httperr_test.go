package httperr

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"

	"github.com/modgate/modgate/internal/audit"
	"github.com/modgate/modgate/internal/auth"
	"github.com/modgate/modgate/internal/mirror"
	"github.com/modgate/modgate/internal/policy"
	"github.com/modgate/modgate/internal/reqlog"
	"github.com/modgate/modgate/internal/state"
	"github.com/modgate/modgate/internal/storage"
	"github.com/modgate/modgate/internal/upstream"
)

// hidden is an auth.ErrHidden-like refusal: it matches fs.ErrNotExist.
type hidden struct{}

func (hidden) Error() string { return "x.example/m: not found" }
func (hidden) Is(target error) bool {
	return target == fs.ErrNotExist || target == auth.ErrHidden
}

func TestStatus(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"method", ErrMethod, 405},
		{"bad request", fmt.Errorf("module=%q: %w", "x", ErrBadRequest), 400},
		{"too large", ErrTooLarge, 413},
		{"unauthenticated", fmt.Errorf("anonymous: %w", auth.ErrUnauthenticated), 401},
		{"forbidden", auth.ErrForbidden, 403},
		{"blocked", fmt.Errorf("x@v1: %w", policy.ErrBlocked), 403},
		{"hidden is not found", hidden{}, 404},
		{"rate limited", auth.ErrRateLimited, 429},
		{"audit unwritable", audit.ErrUnwritable, 503},
		{"not ready", ErrNotReady, 503},
		{"storage unavailable", fmt.Errorf("reading x: %w", storage.ErrUnavailable), 503},
		{"shared state down", fmt.Errorf("recording: %w", state.ErrUnavailable), 503},
		{"fill queue full", fmt.Errorf("fetching x: %w", mirror.ErrBusy), 503},
		{"verification", fmt.Errorf("x: %w", mirror.ErrVerification), 502},
		// A failed verification wins over the not-found it may wrap.
		{"verification of a missing file", fmt.Errorf("%w: %w", mirror.ErrVerification, fs.ErrNotExist), 502},
		{"not found", fs.ErrNotExist, 404},
		{"timeout", upstream.ErrTimeout, 504},
		{"deadline", context.DeadlineExceeded, 504},
		{"unavailable", upstream.ErrUnavailable, 502},
		{"canceled", context.Canceled, ClientClosedRequest},
		{"disk full", fmt.Errorf("write: %w", syscall.ENOSPC), 507},
		{"anything else", errors.New("boom"), 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Status(tt.err); got != tt.want {
				t.Errorf("Status(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
	// Every class in the table has a line above.
	for _, c := range classes {
		found := false
		for _, tt := range tests {
			if errors.Is(tt.err, c.err) && Status(tt.err) == c.status {
				found = true
			}
		}
		if !found {
			t.Errorf("class %v (%d) has no test case", c.err, c.status)
		}
	}
}

// public is an error with a client-safe text.
type public struct{ err error }

func (p public) Error() string {
	return "git -C /srv/x fetch https://git.internal/x.git: " + p.err.Error()
}
func (p public) Unwrap() error       { return p.err }
func (p public) PublicError() string { return "x.example/m@v1.0.0: the private Git server failed" }

func TestWrite(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		err        error
		wantStatus int
		wantBody   string
		wantHeader map[string]string
	}{
		{name: "reason", err: fmt.Errorf("x.example/m@v1.0.0: blocked by rule %q: %w", "no-x", policy.ErrBlocked),
			wantStatus: 403, wantBody: "modgate: x.example/m@v1.0.0: blocked by rule \"no-x\": blocked by policy\n"},
		{name: "one line", err: fmt.Errorf("a\nb\n  c: %w", fs.ErrNotExist), wantStatus: 404, wantBody: "modgate: a b c: file does not exist\n"},
		{name: "public text", err: fmt.Errorf("fetching: %w", public{upstream.ErrUnavailable}),
			wantStatus: 502, wantBody: "modgate: x.example/m@v1.0.0: the private Git server failed\n"},
		{name: "internal", err: errors.New("open /srv/data/x: permission denied"), wantStatus: 500,
			wantBody: "modgate: internal error (request id r-1; details are in the server log)\n"},
		{name: "challenge", err: auth.ErrUnauthenticated, wantStatus: 401,
			wantHeader: map[string]string{"WWW-Authenticate": auth.Challenge}},
		{name: "head", method: http.MethodHead, err: fs.ErrNotExist, wantStatus: 404, wantBody: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := cmpOr(tt.method, http.MethodGet)
			e := &reqlog.Entry{ID: "r-1"}
			r := httptest.NewRequest(method, "/x", nil)
			r = r.WithContext(reqlog.With(r.Context(), e))
			w := httptest.NewRecorder()
			w.Header().Set("ETag", `"x"`)
			w.Header().Set(policy.HeaderWarning, "w")
			if got := Write(w, r, tt.err); got != tt.wantStatus || w.Code != tt.wantStatus {
				t.Errorf("Write = %d (sent %d), want %d", got, w.Code, tt.wantStatus)
			}
			if tt.wantBody != "" || method == http.MethodHead {
				if w.Body.String() != tt.wantBody {
					t.Errorf("body = %q, want %q", w.Body, tt.wantBody)
				}
			}
			if ct := w.Header().Get("Content-Type"); ct != "text/plain; charset=utf-8" {
				t.Errorf("Content-Type = %q", ct)
			}
			if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control = %q", cc)
			}
			if w.Header().Get("ETag") != "" || w.Header().Get(policy.HeaderWarning) != "" {
				t.Error("validator or policy warning kept on an error")
			}
			for k, v := range tt.wantHeader {
				if got := w.Header().Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if !errors.Is(e.Err, tt.err) {
				t.Errorf("entry error = %v, want the error itself for the log", e.Err)
			}
			if strings.Contains(w.Body.String(), "git.internal") {
				t.Error("internal details in the body")
			}
		})
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
