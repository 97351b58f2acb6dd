package upstream

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"strings"
	"sync"
	"testing"
)

// sumdbSource answers checksum database paths: supported with its own
// status, everything else with "not found" or a body, and counts paths.
type sumdbSource struct {
	name      string
	supported string // "ok", "404", "500"
	lookup    string // "ok", "404"
	mu        sync.Mutex
	calls     map[string]int
}

func (s *sumdbSource) String() string { return s.name }

func (s *sumdbSource) Fetch(_ context.Context, path string) (*Response, error) {
	s.mu.Lock()
	if s.calls == nil {
		s.calls = map[string]int{}
	}
	s.calls[path]++
	s.mu.Unlock()
	outcome := s.lookup
	if strings.HasSuffix(path, "/supported") {
		outcome = s.supported
	}
	switch outcome {
	case "ok":
		return &Response{Body: io.NopCloser(strings.NewReader(s.name)), Upstream: s.name}, nil
	case "404":
		return nil, &StatusError{Upstream: s.name, Path: path, StatusCode: 404}
	}
	return nil, &StatusError{Upstream: s.name, Path: path, StatusCode: 500}
}

func (s *sumdbSource) count(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[path]
}

// TestChainSumdbNotFoundIsAuthoritative: as in the go command, the first
// entry that proxies a checksum database answers for it, "not found"
// included; only entries that do not proxy it are skipped.
func TestChainSumdbNotFoundIsAuthoritative(t *testing.T) {
	const lookup = "sumdb/sum.test/lookup/example.com/nosuch@v1.0.0"
	tests := []struct {
		name       string
		supported  string
		pipe       bool
		wantNext   int // fetches of lookup from the second entry
		wantClass  error
		wantAnswer bool
	}{
		{name: "supporting proxy's 404 stops", supported: "ok", wantNext: 0, wantClass: fs.ErrNotExist},
		{name: "proxy without the database is skipped", supported: "404", wantNext: 1, wantAnswer: true},
		{name: "proxy that cannot tell is a failure", supported: "500", wantNext: 0, wantClass: ErrUnavailable},
		{name: "pipe moves on when it cannot tell", supported: "500", pipe: true, wantNext: 1, wantAnswer: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first := &sumdbSource{name: "first", supported: tt.supported, lookup: "404"}
			next := &sumdbSource{name: "next", supported: "ok", lookup: "ok"}
			c := NewChain([]ChainEntry{{Source: first, FallThroughOnAnyError: tt.pipe}, {Source: next}})
			for range 3 {
				resp, err := c.Fetch(t.Context(), lookup)
				if tt.wantAnswer {
					if err != nil {
						t.Fatalf("Fetch(%s): %v, want the next entry's answer", lookup, err)
					}
					resp.Body.Close()
				} else if !errors.Is(err, tt.wantClass) {
					t.Fatalf("Fetch(%s) = %v, want an error matching %v", lookup, err, tt.wantClass)
				}
			}
			if got := next.count(lookup); got != 3*tt.wantNext {
				t.Errorf("next entry asked %d times, want %d", got, 3*tt.wantNext)
			}
			// A definite answer to "supported" is asked once, not per lookup.
			if got := first.count("sumdb/sum.test/supported"); tt.supported != "500" && got != 1 {
				t.Errorf("first entry's supported asked %d times, want 1", got)
			}
		})
	}
	// Module paths keep the plain GOPROXY rule: "not found" moves on.
	first := &sumdbSource{name: "first", supported: "ok", lookup: "404"}
	next := &sumdbSource{name: "next", lookup: "ok"}
	c := NewChain([]ChainEntry{{Source: first}, {Source: next}})
	resp, err := c.Fetch(t.Context(), "example.com/a/@v/list")
	if err != nil {
		t.Fatalf("module path after a 404: %v", err)
	}
	resp.Body.Close()
}
