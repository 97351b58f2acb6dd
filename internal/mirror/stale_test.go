package mirror

import (
	"strings"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/storage"
)

// TestRefreshWait: a request for an expired list whose refresh hangs gets
// the older list, marked stale, after RefreshWait; the refresh goes on and
// its answer is served once the upstream answers.
func TestRefreshWait(t *testing.T) {
	src := newFakeSource()
	m, err := New(Config{
		Store:       storage.NewMemory(),
		Upstream:    src,
		ScratchDir:  t.TempDir(),
		ListTTL:     time.Nanosecond, // every answer has expired by the next request
		RefreshWait: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	const key = "example.com/a/@v/list"
	src.set(key, []byte("v1.0.0\n"))
	list := func(opts Options) *Answer {
		t.Helper()
		a, err := m.List(t.Context(), "example.com/a", "example.com/a", opts)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		return a
	}
	if a := list(Options{}); a.Result != Miss {
		t.Fatalf("first List: %s, want miss", a.Result)
	}

	gate := make(chan struct{})
	src.mu.Lock()
	src.gate = gate
	src.files[key] = []byte("v1.0.0\nv1.1.0\n")
	src.mu.Unlock()
	start := time.Now()
	a := list(Options{})
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("List with a hanging refresh took %v, want about RefreshWait", d)
	}
	if a.Result != Stale || string(a.Data) != "v1.0.0\n" {
		t.Errorf("List with a hanging refresh = %s %q, want the stale v1.0.0", a.Result, a.Data)
	}
	if n := src.count(key); n != 2 {
		t.Errorf("upstream asked %d times, want 2 (the refresh is running)", n)
	}

	close(gate) // the upstream answers: the refresh completes in the background
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(string(list(Options{NoFetch: true}).Data), "v1.1.0") {
		if time.Now().After(deadline) {
			t.Fatal("the background refresh never updated the list")
		}
		time.Sleep(time.Millisecond)
	}
	if n := src.count(key); n != 2 {
		t.Errorf("upstream asked %d times, want 2: the abandoned refresh was not restarted", n)
	}
}

// TestRefreshWaitWithoutStaleCopy: without an older answer there is
// nothing to serve early, so the request waits for the upstream.
func TestRefreshWaitWithoutStaleCopy(t *testing.T) {
	src := newFakeSource()
	src.gate = make(chan struct{})
	m, err := New(Config{Store: storage.NewMemory(), Upstream: src, ScratchDir: t.TempDir(), RefreshWait: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	src.set("example.com/a/@v/list", []byte("v1.0.0\n"))
	time.AfterFunc(50*time.Millisecond, func() { close(src.gate) })
	a, err := m.List(t.Context(), "example.com/a", "example.com/a", Options{})
	if err != nil || a.Result != Miss || string(a.Data) != "v1.0.0\n" {
		t.Errorf("List = %v, %v; want the upstream's answer", a, err)
	}
}
