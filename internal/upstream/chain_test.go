package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fakeSource answers every path with one outcome.
type fakeSource struct {
	name    string
	outcome string // "ok", "404", "500", "timeout", "other"
	calls   atomic.Int32
	onFetch func() // called at the start of Fetch, if set
}

var errOther = errors.New("something unclassified")

func (s *fakeSource) String() string { return s.name }

func (s *fakeSource) Fetch(ctx context.Context, path string) (*Response, error) {
	s.calls.Add(1)
	if s.onFetch != nil {
		s.onFetch()
	}
	switch s.outcome {
	case "ok":
		return &Response{Body: io.NopCloser(strings.NewReader(s.name)), Size: int64(len(s.name)), Upstream: s.name}, nil
	case "404":
		return nil, &StatusError{Upstream: s.name, Path: path, StatusCode: 404}
	case "500":
		return nil, &StatusError{Upstream: s.name, Path: path, StatusCode: 500}
	case "timeout":
		return nil, classify(ErrTimeout, fmt.Errorf("upstream %q timed out for %s", s.name, path))
	default:
		return nil, fmt.Errorf("upstream %q: %w", s.name, errOther)
	}
}

func TestChainFallThrough(t *testing.T) {
	type src struct {
		outcome string
		pipe    bool // followed by '|'
	}
	tests := []struct {
		name      string
		srcs      []src
		want      string  // body (the answering source's name) or error class
		wantCalls []int32 // per source
		wantMsgs  int     // failures named in the error message
	}{
		{name: "comma on 404 moves on", srcs: []src{{"404", false}, {"ok", false}}, want: "s1", wantCalls: []int32{1, 1}},
		{name: "comma on 500 stops", srcs: []src{{"500", false}, {"ok", false}}, want: "unavailable", wantCalls: []int32{1, 0}, wantMsgs: 1},
		{name: "comma on timeout stops", srcs: []src{{"timeout", false}, {"ok", false}}, want: "timeout", wantCalls: []int32{1, 0}, wantMsgs: 1},
		{name: "pipe on 500 moves on", srcs: []src{{"500", true}, {"ok", false}}, want: "s1", wantCalls: []int32{1, 1}},
		{name: "pipe on 404 moves on", srcs: []src{{"404", true}, {"ok", false}}, want: "s1", wantCalls: []int32{1, 1}},
		{name: "first success wins", srcs: []src{{"ok", true}, {"ok", false}}, want: "s0", wantCalls: []int32{1, 0}},
		{name: "a,b|c: 404, 500, ok", srcs: []src{{"404", false}, {"500", true}, {"ok", false}}, want: "s2", wantCalls: []int32{1, 1, 1}},
		{name: "a,b|c: 500 stops at a", srcs: []src{{"500", false}, {"500", true}, {"ok", false}}, want: "unavailable", wantCalls: []int32{1, 0, 0}, wantMsgs: 1},
		{name: "all not found", srcs: []src{{"404", false}, {"404", false}}, want: "not-found", wantCalls: []int32{1, 1}, wantMsgs: 2},
		{name: "a failure before a not found decides (as the go command reports it)", srcs: []src{{"500", true}, {"404", false}}, want: "unavailable", wantCalls: []int32{1, 1}, wantMsgs: 2},
		{name: "last failure after not found", srcs: []src{{"404", false}, {"500", false}}, want: "unavailable", wantCalls: []int32{1, 1}, wantMsgs: 2},
		{name: "stop in the middle names all asked", srcs: []src{{"404", false}, {"500", false}, {"ok", false}}, want: "unavailable", wantCalls: []int32{1, 1, 0}, wantMsgs: 2},
		{name: "unavailable outranks timeout", srcs: []src{{"timeout", true}, {"500", true}, {"timeout", false}}, want: "unavailable", wantCalls: []int32{1, 1, 1}, wantMsgs: 3},
		{name: "timeout outranks not found", srcs: []src{{"404", true}, {"timeout", false}}, want: "timeout", wantCalls: []int32{1, 1}, wantMsgs: 2},
		{name: "only timeouts", srcs: []src{{"timeout", true}, {"timeout", false}}, want: "timeout", wantCalls: []int32{1, 1}, wantMsgs: 2},
		{name: "unclassified outranks all", srcs: []src{{"500", true}, {"other", true}, {"timeout", false}}, want: "other", wantCalls: []int32{1, 1, 1}, wantMsgs: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var fakes []*fakeSource
			var entries []ChainEntry
			for i, s := range tt.srcs {
				f := &fakeSource{name: fmt.Sprintf("s%d", i), outcome: s.outcome}
				fakes = append(fakes, f)
				entries = append(entries, ChainEntry{Source: f, FallThroughOnAnyError: s.pipe})
			}
			c := NewChain(entries)
			resp, err := c.Fetch(t.Context(), infoPath)
			got := errorClass(err)
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				got = string(b)
				if resp.Upstream != got {
					t.Errorf("Response.Upstream = %q, want %q", resp.Upstream, got)
				}
			}
			if got != tt.want {
				t.Fatalf("Chain(%s).Fetch = %q (err %v), want %q", c, got, err, tt.want)
			}
			var calls []int32
			for _, f := range fakes {
				calls = append(calls, f.calls.Load())
			}
			if diff := cmp.Diff(tt.wantCalls, calls); diff != "" {
				t.Errorf("Chain(%s).Fetch calls per source (-want +got):\n%s", c, diff)
			}
			if err == nil {
				return
			}
			for i := range tt.wantMsgs {
				if !strings.Contains(err.Error(), fmt.Sprintf("s%d", i)) {
					t.Errorf("Chain(%s).Fetch error %q does not name s%d", c, err, i)
				}
			}
			var ce *ChainError
			if isChain := errors.As(err, &ce); isChain != (tt.wantMsgs > 1) {
				t.Errorf("Chain(%s).Fetch error %T: ChainError %v, want %v", c, err, isChain, tt.wantMsgs > 1)
			} else if isChain && len(ce.Failures) != tt.wantMsgs {
				t.Errorf("ChainError.Failures has %d entries, want %d", len(ce.Failures), tt.wantMsgs)
			}
		})
	}
}

func TestChainErrorMessage(t *testing.T) {
	a := &fakeSource{name: "https://a.example", outcome: "404"}
	b := &fakeSource{name: "direct", outcome: "404"}
	c := NewChain([]ChainEntry{{Source: a}, {Source: b}})
	_, err := c.Fetch(t.Context(), infoPath)
	want := `fetching example.com/m/@v/v1.0.0.info: upstream "https://a.example" answered 404 Not Found for example.com/m/@v/v1.0.0.info; ` +
		`upstream "direct" answered 404 Not Found for example.com/m/@v/v1.0.0.info`
	if err == nil || err.Error() != want {
		t.Errorf("Fetch error =\n\t%v\nwant\n\t%s", err, want)
	}
}

func TestChainCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	a := &fakeSource{name: "a", outcome: "404", onFetch: cancel}
	b := &fakeSource{name: "b", outcome: "ok"}
	c := NewChain([]ChainEntry{{Source: a, FallThroughOnAnyError: true}, {Source: b}})
	_, err := c.Fetch(ctx, infoPath)
	if !errors.Is(err, context.Canceled) || errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Fetch cancelled during the first source = %v, want context.Canceled (and not not-found)", err)
	}
	if n := b.calls.Load(); n != 0 {
		t.Errorf("second source called %d times after cancel, want 0", n)
	}

	// Already cancelled: nothing is asked.
	a.calls.Store(0)
	if _, err := c.Fetch(ctx, infoPath); !errors.Is(err, context.Canceled) || a.calls.Load() != 0 {
		t.Errorf("Fetch with a cancelled context = %v after %d calls, want context.Canceled after none", err, a.calls.Load())
	}
}

func TestChainEmpty(t *testing.T) {
	_, err := NewChain(nil).Fetch(t.Context(), infoPath)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "no upstream configured") {
		t.Errorf("empty Chain Fetch = %v, want ErrUnavailable saying no upstream configured", err)
	}
}

func TestChainString(t *testing.T) {
	c := NewChain([]ChainEntry{
		{Source: &fakeSource{name: "https://a.example"}, FallThroughOnAnyError: true},
		{Source: &fakeSource{name: "https://u:xxxxx@b.example"}},
		{Source: Off{}},
	})
	if got, want := c.String(), "https://a.example|https://u:xxxxx@b.example,off"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if diff := cmp.Diff([]string{"https://a.example", "https://u:xxxxx@b.example", "off"}, c.Entries()); diff != "" {
		t.Errorf("Entries() (-want +got):\n%s", diff)
	}
}

// TestChainOfProxies runs a chain of real Proxies against httptest servers.
func TestChainOfProxies(t *testing.T) {
	missing := newServer(t, func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	down := newServer(t, func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusBadGateway) })
	good := newServer(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"Version":"v1.0.0"}`) })

	chain, err := Build(missing.URL+","+down.URL+"|"+good.URL, BuildOptions{Client: testClient(t, HTTPConfig{}), Proxy: ProxyOptions{Retries: -1}})
	if err != nil {
		t.Fatalf("Build = %v", err)
	}
	resp, err := chain.Fetch(t.Context(), infoPath)
	if err != nil {
		t.Fatalf("Fetch = %v", err)
	}
	defer resp.Body.Close()
	if resp.Upstream != good.URL {
		t.Errorf("Response.Upstream = %q, want %q", resp.Upstream, good.URL)
	}

	chain, err = Build(missing.URL+","+down.URL+","+good.URL, BuildOptions{Client: testClient(t, HTTPConfig{}), Proxy: ProxyOptions{Retries: -1}})
	if err != nil {
		t.Fatalf("Build = %v", err)
	}
	_, err = chain.Fetch(t.Context(), infoPath)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), missing.URL) || !strings.Contains(err.Error(), "answered 502 Bad Gateway") {
		t.Errorf("Fetch through a,down,c = %v, want ErrUnavailable naming both upstreams asked", err)
	}
}

func TestChainLinks(t *testing.T) {
	c, err := Build("https://a.example|https://u:pw@b.example,direct", BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{{URL: "https://a.example", FallThroughOnAnyError: true}, {URL: "https://u:xxxxx@b.example"}, {URL: "direct"}}
	if diff := cmp.Diff(want, c.Links()); diff != "" {
		t.Errorf("Links() (-want +got):\n%s", diff)
	}
}
