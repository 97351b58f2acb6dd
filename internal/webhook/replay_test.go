package webhook

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// replayHandler is a handler whose deliveries record lives in file, with a
// clock the test moves.
func replayHandler(t *testing.T, file string, now *time.Time, max int) (*Handler, *recorder) {
	t.Helper()
	rec := new(recorder)
	h, err := NewHandler(Config{
		Secret: []byte(testSecret), DeliveriesFile: file, ReplayWindow: time.Hour, MaxDeliveries: max,
		Now: func() time.Time { return *now },
	}, rec.onEvent)
	if err != nil {
		t.Fatalf("NewHandler: %v", err)
	}
	return h, rec
}

func TestReplayIgnored(t *testing.T) {
	file := filepath.Join(t.TempDir(), "webhook", "deliveries")
	now := time.Unix(1_700_000_000, 0)
	h, rec := replayHandler(t, file, &now, 0)
	body := readPayload(t, "github-push-tag.json")
	hdr := githubHeaders("push", testSecret, body)

	if w := post(t, h, "github", hdr, body); w.Code != http.StatusAccepted {
		t.Fatalf("first delivery = %d %s, want 202", w.Code, w.Body)
	}
	w := post(t, h, "github", hdr, body)
	checkBody(t, w)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "duplicate delivery, ignored") {
		t.Errorf("replayed delivery = %d %q, want 200 \"duplicate delivery, ignored\"", w.Code, w.Body)
	}

	// The delivery ID is a header outside the signature: a replay with
	// another ID, or none, is still the same signed body.
	other := githubHeaders("push", testSecret, body)
	other["X-GitHub-Delivery"] = "00000000-0000-0000-0000-000000000001"
	if w := post(t, h, "github", other, body); w.Code != http.StatusOK {
		t.Errorf("replay with a new delivery ID = %d %s, want 200", w.Code, w.Body)
	}
	delete(other, "X-GitHub-Delivery")
	if w := post(t, h, "github", other, body); w.Code != http.StatusOK {
		t.Errorf("replay without a delivery ID = %d %s, want 200", w.Code, w.Body)
	}

	// A restart reads the record: the replay is still ignored.
	h2, rec2 := replayHandler(t, file, &now, 0)
	if w := post(t, h2, "github", hdr, body); w.Code != http.StatusOK {
		t.Errorf("replay after a restart = %d %s, want 200", w.Code, w.Body)
	}

	// After the window, the same delivery is handled again.
	now = now.Add(time.Hour + time.Second)
	if w := post(t, h2, "github", hdr, body); w.Code != http.StatusAccepted {
		t.Errorf("delivery after the window = %d %s, want 202", w.Code, w.Body)
	}
	if n, n2 := len(rec.calls()), len(rec2.calls()); n != 1 || n2 != 1 {
		t.Errorf("onEvent calls = %d before the restart and %d after, want 1 and 1", n, n2)
	}
}

// TestReplaySameIDOtherBody: a delivery ID seen before refuses a body the
// provider never sent under it (a retry keeps its ID and body).
func TestReplaySameIDOtherBody(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	h, rec := replayHandler(t, "", &now, 0)
	body := readPayload(t, "gitlab-tag-push.json")
	hdr := gitlabHeaders("Tag Push Hook", testSecret)
	hdr["Idempotency-Key"] = "k-1"
	if w := post(t, h, "gitlab", hdr, body); w.Code != http.StatusAccepted {
		t.Fatalf("first delivery = %d %s, want 202", w.Code, w.Body)
	}
	changed := []byte(strings.Replace(string(body), `"ref"`, ` "ref"`, 1))
	if w := post(t, h, "gitlab", hdr, changed); w.Code != http.StatusOK {
		t.Errorf("same Idempotency-Key, other body = %d %s, want 200 (duplicate)", w.Code, w.Body)
	}
	hdr["Idempotency-Key"] = "k-2"
	if w := post(t, h, "gitlab", hdr, changed); w.Code != http.StatusAccepted {
		t.Errorf("new key and body = %d %s, want 202", w.Code, w.Body)
	}
	if n := len(rec.calls()); n != 2 {
		t.Errorf("onEvent calls = %d, want 2", n)
	}
}

// TestReplayRetryAfterFailure: a delivery whose handling failed is not
// remembered, so the provider's retry is handled.
func TestReplayRetryAfterFailure(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	h, rec := replayHandler(t, filepath.Join(t.TempDir(), "d"), &now, 0)
	rec.err = errors.New("git fetch failed")
	body := readPayload(t, "github-push-tag.json")
	hdr := githubHeaders("push", testSecret, body)
	if w := post(t, h, "github", hdr, body); w.Code != http.StatusInternalServerError {
		t.Fatalf("failing delivery = %d, want 500", w.Code)
	}
	rec.err = nil
	if w := post(t, h, "github", hdr, body); w.Code != http.StatusAccepted {
		t.Errorf("retry after a failure = %d %s, want 202", w.Code, w.Body)
	}
}

// TestReplayRecordBounded: many distinct deliveries keep the record (in
// memory and on disk) within its bound, the oldest dropped first.
func TestReplayRecordBounded(t *testing.T) {
	file := filepath.Join(t.TempDir(), "d")
	now := time.Unix(1_700_000_000, 0)
	const max = 10
	h, _ := replayHandler(t, file, &now, max)
	base := readPayload(t, "github-push-tag.json")
	for i := range 50 {
		now = now.Add(time.Second)
		body := []byte(strings.Replace(string(base), `"ref"`, strings.Repeat(" ", i+1)+`"ref"`, 1))
		hdr := githubHeaders("push", testSecret, body)
		hdr["X-GitHub-Delivery"] = "id-" + strings.Repeat("x", i)
		if w := post(t, h, "github", hdr, body); w.Code != http.StatusAccepted {
			t.Fatalf("delivery %d = %d %s", i, w.Code, w.Body)
		}
	}
	if n := len(h.seen.(*deliveries).seen); n > max {
		t.Errorf("%d deliveries remembered, want at most %d", n, max)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(string(data), "\n"); lines > 2*max+2 {
		t.Errorf("record file has %d lines, want at most %d", lines, 2*max+2)
	}
}

// TestReplayConcurrent: identical deliveries arriving together are handled
// once.
func TestReplayConcurrent(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	h, rec := replayHandler(t, "", &now, 0)
	body := readPayload(t, "github-push-tag.json")
	hdr := githubHeaders("push", testSecret, body)
	var wg sync.WaitGroup
	var accepted atomic.Int32
	for range 20 {
		wg.Go(func() {
			if w := post(t, h, "github", hdr, body); w.Code == http.StatusAccepted {
				accepted.Add(1)
			}
		})
	}
	wg.Wait()
	if n := len(rec.calls()); n != 1 || accepted.Load() != 1 {
		t.Errorf("20 identical deliveries at once: onEvent called %d times, %d accepted; want 1 and 1", n, accepted.Load())
	}
}

// TestCoalescer: while one run for a key is going, any number of callers
// cause one more run, not one each, and every caller gets a result that
// started after it asked.
func TestCoalescer(t *testing.T) {
	var c Coalescer[int]
	var runs atomic.Int32
	release := make(chan struct{})
	started := make(chan struct{}, 10)
	f := func(context.Context) (int, error) {
		n := int(runs.Add(1))
		started <- struct{}{}
		<-release
		return n, nil
	}
	ctx := t.Context()
	first := make(chan int, 1)
	go func() {
		v, _, _ := c.Do(ctx, "repo", f)
		first <- v
	}()
	<-started
	var wg sync.WaitGroup
	results := make(chan int, 10)
	for range 10 {
		wg.Go(func() {
			v, _, err := c.Do(ctx, "repo", f)
			if err != nil {
				t.Error(err)
			}
			results <- v
		})
	}
	// Another key is not held up.
	if v, _, err := c.Do(ctx, "other", func(context.Context) (int, error) { return 42, nil }); v != 42 || err != nil {
		t.Errorf("Do(other) = %d, %v", v, err)
	}
	waitQueued(t, &c, "repo", 10)
	close(release)
	wg.Wait()
	close(results)
	if v := <-first; v != 1 {
		t.Errorf("first caller got run %d, want 1", v)
	}
	for v := range results {
		if v != 2 {
			t.Errorf("a caller that arrived during run 1 got run %d, want 2", v)
		}
	}
	if n := runs.Load(); n != 2 {
		t.Errorf("%d runs for 11 callers, want 2", n)
	}
}

// waitQueued waits until a run is queued for key with n callers.
func waitQueued(t *testing.T, c *Coalescer[int], key string, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		c.mu.Lock()
		l := c.keys[key]
		queued := l != nil && l.queued != nil && l.queued.callers == n
		c.mu.Unlock()
		if queued {
			return
		}
	}
	t.Fatalf("no run queued with %d callers", n)
}
