package postgres_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/mirror"
	"github.com/modgate/modgate/internal/storage/disk"
	"github.com/modgate/modgate/internal/upstream"
)

// TestLeasesExclusive: one holder at a time; a waiter returns when the
// holder releases.
func TestLeasesExclusive(t *testing.T) {
	dbA, dsn := migrated(t)
	dbB := open(t, dsn)
	a, b := dbA.Leases(10*time.Second), dbB.Leases(10*time.Second)
	const key = "example.com/m/@v/v1.0.0.zip"
	release, ok, err := a.Acquire(t.Context(), key)
	if err != nil || !ok {
		t.Fatalf("A Acquire = %v, %v; want the lease", ok, err)
	}
	if _, ok, err := b.Acquire(t.Context(), key); ok || err != nil {
		t.Fatalf("B Acquire while A holds it = %v, %v; want not ok", ok, err)
	}
	if _, ok, _ := b.Acquire(t.Context(), "example.com/m/@v/v1.0.0.mod"); !ok {
		t.Errorf("B Acquire of another file: not ok; leases are per file")
	}
	waited := make(chan error, 1)
	go func() { waited <- b.Wait(t.Context(), key) }()
	select {
	case err := <-waited:
		t.Fatalf("B Wait returned %v while A holds the lease", err)
	case <-time.After(300 * time.Millisecond):
	}
	release()
	select {
	case err := <-waited:
		if err != nil {
			t.Fatalf("B Wait = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("B Wait did not return within 5s of the release")
	}
	if rel, ok, err := b.Acquire(t.Context(), key); !ok || err != nil {
		t.Fatalf("B Acquire after the release = %v, %v", ok, err)
	} else {
		rel()
	}
}

// TestLeaseExpiresAfterCrash: a holder that stops without releasing (its
// context ends: the process died or hung) loses the lease after the TTL,
// however long it was renewed before, and another replica takes it.
func TestLeaseExpiresAfterCrash(t *testing.T) {
	dbA, dsn := migrated(t)
	dbB := open(t, dsn)
	const ttl = time.Second
	a, b := dbA.Leases(ttl), dbB.Leases(ttl)
	const key = "example.com/m/@v/v1.0.0.zip"
	ctx, crash := context.WithCancel(t.Context())
	if _, ok, err := a.Acquire(ctx, key); !ok || err != nil {
		t.Fatalf("A Acquire = %v, %v", ok, err)
	}
	// Renewed while A lives: still held after two TTLs.
	time.Sleep(2 * ttl)
	if _, ok, _ := b.Acquire(t.Context(), key); ok {
		t.Fatalf("B took a lease A is still renewing")
	}
	crash() // no release
	crashed := time.Now()
	if err := b.Wait(t.Context(), key); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(crashed); d > 10*ttl {
		t.Errorf("lease of a crashed holder expired after %v, want about %v", d, ttl)
	}
	if rel, ok, err := b.Acquire(t.Context(), key); !ok || err != nil {
		t.Fatalf("B Acquire after A crashed = %v, %v", ok, err)
	} else {
		rel()
	}
}

// countingSource is a slow upstream that counts fetches per file.
type countingSource struct {
	delay time.Duration
	mu    sync.Mutex
	n     map[string]int
}

func (s *countingSource) String() string { return "counting" }

func (s *countingSource) Fetch(ctx context.Context, path string) (*upstream.Response, error) {
	s.mu.Lock()
	s.n[path]++
	s.mu.Unlock()
	select {
	case <-time.After(s.delay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	body := `{"Version":"v1.0.0","Time":"2026-01-02T03:04:05Z"}`
	return &upstream.Response{Body: io.NopCloser(strings.NewReader(body)), Size: int64(len(body)), Upstream: "counting"}, nil
}

func (s *countingSource) count(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n[path]
}

// newReplica is a mirror over the shared store dir, with leases in db.
func newReplica(t *testing.T, storeDir string, leaser mirror.Leaser, src upstream.Source) *mirror.Mirror {
	t.Helper()
	store, err := disk.New(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := mirror.New(mirror.Config{Store: store, Upstream: src, ScratchDir: t.TempDir(), Leaser: leaser})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// TestOneFetchAcrossReplicas: 24 concurrent requests for one uncached
// file, spread over three replicas sharing a store and a database, cause
// exactly one upstream fetch, and every request is answered with the file.
func TestOneFetchAcrossReplicas(t *testing.T) {
	db, dsn := migrated(t)
	storeDir := t.TempDir()
	src := &countingSource{delay: 300 * time.Millisecond, n: map[string]int{}}
	replicas := []*mirror.Mirror{
		newReplica(t, storeDir, db.Leases(0), src),
		newReplica(t, storeDir, open(t, dsn).Leases(0), src),
		newReplica(t, storeDir, open(t, dsn).Leases(0), src),
	}
	const key = "example.com/m/@v/v1.0.0.info"
	var wg sync.WaitGroup
	var failed atomic.Int32
	errs := make(chan error, 24)
	for i := range 24 {
		m := replicas[i%len(replicas)]
		wg.Go(func() {
			f, err := m.File(t.Context(), "example.com/m", "v1.0.0", key, mirror.Options{})
			if err != nil {
				failed.Add(1)
				errs <- err
				return
			}
			data, _ := io.ReadAll(f.Body)
			f.Body.Close()
			if !strings.Contains(string(data), `"v1.0.0"`) {
				failed.Add(1)
				errs <- fmt.Errorf("request %d got %q", i, data)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("request failed: %v", err)
	}
	if n := src.count(key); n != 1 {
		t.Errorf("24 requests over 3 replicas: %d upstream fetches, want 1", n)
	}
}

// TestCrashedFillerReplaced: replica A takes a file's lease and dies
// without filling or releasing; replica B's request waits for the lease to
// expire and then fills the file itself.
func TestCrashedFillerReplaced(t *testing.T) {
	db, dsn := migrated(t)
	const ttl = 500 * time.Millisecond
	const key = "example.com/m/@v/v1.0.0.info"
	ctx, crash := context.WithCancel(t.Context())
	if _, ok, err := db.Leases(ttl).Acquire(ctx, key); !ok || err != nil {
		t.Fatalf("A Acquire = %v, %v", ok, err)
	}
	crash()
	src := &countingSource{delay: 0, n: map[string]int{}}
	b := newReplica(t, t.TempDir(), open(t, dsn).Leases(ttl), src)
	start := time.Now()
	f, err := b.File(t.Context(), "example.com/m", "v1.0.0", key, mirror.Options{})
	if err != nil {
		t.Fatalf("B's request after A crashed holding the lease: %v", err)
	}
	f.Body.Close()
	if n := src.count(key); n != 1 {
		t.Errorf("B fetched %d times, want 1", n)
	}
	if d := time.Since(start); d > 20*ttl {
		t.Errorf("B waited %v for a lease of TTL %v", d, ttl)
	}
}
