package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/testenv"
)

// scriptedSource answers with the error set by the test, counting calls.
type scriptedSource struct {
	mu    sync.Mutex
	err   error
	calls int
	block chan struct{} // when set, Fetch waits for it
}

func (s *scriptedSource) String() string { return "https://up.example" }

func (s *scriptedSource) Fetch(ctx context.Context, path string) (*Response, error) {
	s.mu.Lock()
	s.calls++
	err, block := s.err, s.block
	s.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return nil, ctxError(ctx, s.String(), path, nil)
		}
	}
	if err != nil {
		return nil, err
	}
	return &Response{Body: io.NopCloser(strings.NewReader("ok")), Size: 2}, nil
}

func (s *scriptedSource) set(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

func (s *scriptedSource) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// TestGuardHealth: failures in a row mark an upstream down; then fetches
// fail at once without reaching it, except one trial at a time at
// doubling intervals; an answer brings it back. Answers that are not
// failures ("not found", 4xx) reset the count, and fetches the caller
// gave up on count for nothing.
func TestGuardHealth(t *testing.T) {
	src := &scriptedSource{}
	clock := testenv.NewClock(time.Unix(1e9, 0))
	var changes []string
	g := NewGuard(src, HealthOptions{
		RetryMin: time.Second, RetryMax: 3 * time.Second, Now: clock.Now,
		OnChange: func(up string, ok bool) { changes = append(changes, fmt.Sprintf("%s %v", up, ok)) },
	})
	ctx := t.Context()
	fetch := func() error {
		resp, err := g.Fetch(ctx, "m/@v/list")
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	timeout := classify(ErrTimeout, errors.New("upstream timed out for test"))

	// Two failures, then a "not found" and a 400: still up, count reset.
	src.set(timeout)
	fetch()
	fetch()
	src.set(fmt.Errorf("nope: %w", fs.ErrNotExist))
	fetch()
	src.set(&StatusError{Upstream: "u", Path: "p", StatusCode: http.StatusBadRequest})
	fetch()
	// A caller that gave up says nothing.
	src.set(timeout)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	g.Fetch(cctx, "m/@v/list")
	fetch()
	fetch()
	if !g.Healthy() {
		t.Fatal("down after 2 failures in a row (and one abandoned fetch), want up")
	}
	fetch()
	if g.Healthy() {
		t.Fatal("up after 3 failures in a row, want down")
	}
	calls := src.count()

	// Down: fail fast with the last failure's class, not reaching the upstream.
	err := fetch()
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), `upstream "https://up.example" is down`) {
		t.Errorf("Fetch while down = %v, want a fast ErrTimeout saying it is down", err)
	}
	clock.Advance(999 * time.Millisecond)
	fetch()
	if n := src.count(); n != calls {
		t.Fatalf("%d fetches reached a down upstream before the first trial, want 0", n-calls)
	}

	// The first trial after RetryMin; meanwhile, others fail fast.
	clock.Advance(time.Millisecond)
	src.mu.Lock()
	src.block = make(chan struct{})
	src.mu.Unlock()
	trialDone := make(chan error)
	go func() { trialDone <- fetch() }()
	for src.count() != calls+1 {
		time.Sleep(time.Millisecond)
	}
	if err := fetch(); err == nil || src.count() != calls+1 {
		t.Errorf("a second fetch during the trial = %v, reaching the upstream %d times; want a fast failure", err, src.count()-calls)
	}
	close(src.block)
	if err := <-trialDone; !errors.Is(err, ErrTimeout) {
		t.Errorf("failed trial = %v", err)
	}
	src.mu.Lock()
	src.block = nil
	src.mu.Unlock()

	// The next trial waits twice as long (2s), then 3s (RetryMax).
	clock.Advance(1999 * time.Millisecond)
	fetch()
	if n := src.count(); n != calls+1 {
		t.Errorf("trial before the doubled wait")
	}
	clock.Advance(time.Millisecond)
	fetch()
	clock.Advance(3 * time.Second)
	src.set(nil)
	if err := fetch(); err != nil {
		t.Errorf("trial of a recovered upstream = %v", err)
	}
	if n := src.count(); n != calls+3 {
		t.Errorf("%d fetches reached the upstream while down, want 3 trials", n-calls)
	}
	if !g.Healthy() || fetch() != nil {
		t.Error("not up after an answered trial")
	}
	want := []string{"https://up.example true", "https://up.example false", "https://up.example true"}
	if fmt.Sprint(changes) != fmt.Sprint(want) {
		t.Errorf("OnChange calls = %q, want %q", changes, want)
	}
}

// TestGuardBudget: a fetch that gets no answer within the budget fails
// with ErrTimeout, retries included, however long the Source's own
// timeouts are; an answer within the budget can be read for as long as it
// takes.
func TestGuardBudget(t *testing.T) {
	release := make(chan struct{})
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/hang/") {
			blockUntilDone(t, r)
			return
		}
		w.(http.Flusher).Flush() // headers now, the body later
		<-release
		io.WriteString(w, "slow body")
	})
	var rec recorder
	p := newTestProxy(t, srv.URL, HTTPConfig{}, ProxyOptions{Retries: 5, Observe: rec.observe})
	g := NewGuard(p, HealthOptions{Budget: 200 * time.Millisecond})

	start := time.Now()
	_, err := g.Fetch(t.Context(), "hang/x")
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Fetch from a hanging upstream took %v, want about the 200ms budget", d)
	}
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "within the request budget of 200ms") {
		t.Errorf("Fetch from a hanging upstream = %v, want ErrTimeout naming the budget", err)
	}
	if got := rec.got(); len(got) != 1 || got[0] != srv.URL+" "+ResultTimeout {
		t.Errorf("Observe calls = %q, want one timeout", got)
	}

	resp, err := g.Fetch(t.Context(), "slow/x")
	if err != nil {
		t.Fatalf("Fetch = %v", err)
	}
	defer resp.Body.Close()
	time.AfterFunc(400*time.Millisecond, func() { close(release) })
	body, err := io.ReadAll(resp.Body)
	if err != nil || string(body) != "slow body" {
		t.Errorf("reading a body past the budget = %q, %v; want it whole", body, err)
	}
}

// TestGuardInChain: a down upstream is skipped at once with "|", and
// ends the chain at once with "," (the go command's rules), without being
// asked.
func TestGuardInChain(t *testing.T) {
	down := &scriptedSource{err: classify(ErrUnavailable, errors.New("connection refused for test"))}
	g := NewGuard(down, HealthOptions{FailuresToDown: 1, RetryMin: time.Hour})
	g.Fetch(t.Context(), "m/@v/list") // marks it down
	asked := down.count()
	next := &scriptedSource{}
	for _, tt := range []struct {
		sep  string
		pipe bool
		ok   bool
	}{{"|", true, true}, {",", false, false}} {
		c := NewChain([]ChainEntry{{Source: g, FallThroughOnAnyError: tt.pipe}, {Source: next}})
		resp, err := c.Fetch(t.Context(), "m/@v/list")
		if (err == nil) != tt.ok {
			t.Errorf("down%snext: Fetch = %v, want success %v", tt.sep, err, tt.ok)
		}
		if err == nil {
			resp.Body.Close()
		} else if !errors.Is(err, ErrUnavailable) {
			t.Errorf("down%snext: Fetch = %v, want ErrUnavailable (502)", tt.sep, err)
		}
	}
	if down.count() != asked {
		t.Error("the down upstream was asked")
	}
}
