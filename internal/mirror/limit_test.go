package mirror

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/storage"
	"github.com/modgate/modgate/internal/upstream"
)

// blockingSource answers every path with a .info after gate is closed,
// counting the fetches running at once.
type blockingSource struct {
	gate    chan struct{}
	running atomic.Int32
	peak    atomic.Int32
	mu      sync.Mutex
	calls   map[string]int
}

func (s *blockingSource) String() string { return "blocking" }

func (s *blockingSource) Fetch(ctx context.Context, path string) (*upstream.Response, error) {
	s.mu.Lock()
	s.calls[path]++
	s.mu.Unlock()
	n := s.running.Add(1)
	defer s.running.Add(-1)
	for {
		p := s.peak.Load()
		if n <= p || s.peak.CompareAndSwap(p, n) {
			break
		}
	}
	select {
	case <-s.gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	version := strings.TrimSuffix(path[strings.LastIndex(path, "/")+1:], ".info")
	body := fmt.Sprintf(`{"Version":%q}`, version)
	return &upstream.Response{Body: io.NopCloser(strings.NewReader(body)), Size: int64(len(body)), Upstream: "blocking"}, nil
}

// limitObserver records what the limiter reports.
type limitObserver struct {
	depth   atomic.Int64
	refused atomic.Int64
	told    atomic.Bool
}

func (o *limitObserver) FillStarted(string)        {}
func (o *limitObserver) FillDone(string, error)    {}
func (o *limitObserver) VerificationFailed(string) {}
func (o *limitObserver) Prefetched(string)         {}
func (o *limitObserver) FillQueue(depth int)       { o.depth.Store(int64(depth)); o.told.Store(true) }
func (o *limitObserver) FillRefused()              { o.refused.Add(1) }

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestFillLimit: with more distinct cold requests than slots, at most
// MaxFills upstream fetches run; the others queue, and when the queue
// timeout passes they fail with ErrBusy (which carries a Retry-After).
// Requests for a file being fetched share its slot, background work has
// its own budget, and the queue depth and refusals are reported.
func TestFillLimit(t *testing.T) {
	src := &blockingSource{gate: make(chan struct{}), calls: map[string]int{}}
	obs := &limitObserver{}
	m, err := New(Config{
		Store:            storage.NewMemory(),
		Upstream:         src,
		ScratchDir:       t.TempDir(),
		MaxFills:         2,
		FillQueueTimeout: 7 * time.Second,
		Observer:         obs,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if !obs.told.Load() || obs.depth.Load() != 0 {
		t.Error("the queue depth was not reported as 0 at start")
	}
	l := m.upstream.(limitedSource).l
	fire := make(chan time.Time)
	l.newTimer = func(time.Duration) (<-chan time.Time, func() bool) { return fire, func() bool { return true } }

	key := func(i int) string { return fmt.Sprintf("example.com/m%d/@v/v1.0.0.info", i) }
	const distinct, sharers = 5, 4
	errs := make([]error, distinct+sharers)
	var wg sync.WaitGroup
	for i := range distinct {
		wg.Go(func() {
			f, err := m.File(t.Context(), fmt.Sprintf("example.com/m%d", i), "v1.0.0", key(i), Options{})
			if err == nil {
				f.Body.Close()
			}
			errs[i] = err
		})
	}
	waitFor(t, "2 fetches running and 3 queued", func() bool { return src.running.Load() == 2 && obs.depth.Load() == 3 })
	// Clients asking for the files being fetched, or queued, join their flights.
	for j := range sharers {
		wg.Go(func() {
			f, err := m.File(t.Context(), fmt.Sprintf("example.com/m%d", j), "v1.0.0", key(j), Options{})
			if err == nil {
				f.Body.Close()
			}
			errs[distinct+j] = err
		})
	}
	waitFor(t, "sharers to join", func() bool {
		m.flights.mu.Lock()
		defer m.flights.mu.Unlock()
		n := 0
		for _, f := range m.flights.m {
			n += f.waiters
		}
		return n == distinct+sharers
	})
	// Background work is not stuck behind the clients.
	bgRelease, err := l.acquire(asBackground(t.Context()))
	if err != nil {
		t.Fatalf("background acquire with every client slot taken = %v, want its own slot", err)
	}
	bgRelease()
	if d := obs.depth.Load(); d != 3 {
		t.Errorf("queue depth with sharers = %d, want still 3", d)
	}

	close(fire) // the queue timeout passes for everyone queued
	waitFor(t, "queued requests refused", func() bool { return obs.refused.Load() == 3 && obs.depth.Load() == 0 })
	close(src.gate)
	wg.Wait()

	busy, ok := 0, 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ErrBusy):
			busy++
			var ra interface{ RetryAfter() time.Duration }
			if !errors.As(err, &ra) || ra.RetryAfter() != 7*time.Second {
				t.Errorf("request %d: %v has no RetryAfter of 7s", i, err)
			}
			if !strings.Contains(err.Error(), "server busy") || !errors.Is(err, upstream.ErrUnavailable) {
				t.Errorf("request %d: %v, want a server busy error matching upstream.ErrUnavailable", i, err)
			}
		default:
			t.Errorf("request %d: %v", i, err)
		}
	}
	// 2 distinct files fetched (and their sharers); 3 distinct files
	// refused, with the sharers that joined them.
	if ok < 2 || busy < 3 || ok+busy != distinct+sharers {
		t.Errorf("%d succeeded and %d were refused busy, want 2+ and 3+ of %d", ok, busy, distinct+sharers)
	}
	if p := src.peak.Load(); p != 2 {
		t.Errorf("peak concurrent upstream fetches = %d, want 2", p)
	}
	for i := range distinct {
		if n := src.calls[key(i)]; n > 1 {
			t.Errorf("%s fetched %d times, want at most once", key(i), n)
		}
	}
	// The slots were given back: a new file is fetched at once.
	f, err := m.File(t.Context(), "example.com/later", "v1.0.0", "example.com/later/@v/v1.0.0.info", Options{})
	if err != nil {
		t.Fatalf("File after the burst = %v", err)
	}
	f.Body.Close()
}

func TestBackgroundSlots(t *testing.T) {
	for _, tt := range []struct{ fills, workers, want, conns int }{
		{8, 8, 8, 32},    // defaults on a small machine: prefetch never queues
		{64, 8, 16, 160}, // a quarter of a large limit, for refreshes
		{4, 0, 1, 10},
		{2, 64, 2, 8}, // never more than the client limit
		{0, 8, 0, 0},  // no limit
	} {
		if tt.fills > 0 {
			if got := backgroundSlots(tt.fills, tt.workers); got != tt.want {
				t.Errorf("backgroundSlots(%d, %d) = %d, want %d", tt.fills, tt.workers, got, tt.want)
			}
		}
		if got := UpstreamConns(tt.fills, tt.workers); got != tt.conns {
			t.Errorf("UpstreamConns(%d, %d) = %d, want %d", tt.fills, tt.workers, got, tt.conns)
		}
	}
}
