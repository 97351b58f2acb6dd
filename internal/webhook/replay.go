package webhook

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Replays. A signature proves who made a delivery, not when: anyone who
// captured one signed delivery could send it again and again, and each
// copy would make modgate list and fetch from Git. So every accepted
// delivery is remembered for a retention window, by two keys:
//
//   - the provider's delivery ID (X-GitHub-Delivery, X-Gitea-Delivery or
//     X-Forgejo-Delivery, GitLab's Idempotency-Key or X-Gitlab-Event-UUID);
//     the providers keep it when they retry or redeliver;
//   - a digest of the provider name and the body: the delivery ID is a
//     header outside the signature, so a replay can change it at will, but
//     not the body.
//
// A delivery matching either key within the window is answered 200
// "duplicate delivery, ignored" and does nothing. A delivery without an ID
// is accepted (not every provider version sends one) and deduplicated by
// its body alone; what it triggers is bounded anyway, since refreshes are
// coalesced per repository (Coalescer). A genuine event whose body equals
// an earlier one's within the window (which the providers' payloads, with
// their commit hashes and timestamps, make unlikely) is skipped too: the
// new state is then seen within the list TTL, as without a webhook.
//
// The record is one small file ("{unix seconds} {key}" lines), appended
// to on every accepted delivery and rewritten without expired entries when
// it grows past twice its bound, so it survives restarts and stays small.

// Defaults for Config.ReplayWindow and Config.MaxDeliveries.
const (
	DefaultReplayWindow  = 7 * 24 * time.Hour
	DefaultMaxDeliveries = 10000
)

// deliveries remembers accepted deliveries. It is safe for concurrent use.
type deliveries struct {
	mu     sync.Mutex
	file   string // "" keeps the record in memory only
	window time.Duration
	max    int
	now    func() time.Time
	seen   map[string]time.Time
	lines  int // lines in file, for compaction
}

// openDeliveries reads the record in file (absent is empty).
func openDeliveries(file string, window time.Duration, max int, now func() time.Time) (*deliveries, error) {
	d := &deliveries{file: file, window: window, max: max, now: now, seen: make(map[string]time.Time)}
	if file == "" {
		return d, nil
	}
	f, err := os.Open(file)
	if errors.Is(err, fs.ErrNotExist) {
		return d, nil
	}
	if err != nil {
		return nil, fmt.Errorf("webhook deliveries: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		d.lines++
		secs, key, ok := strings.Cut(sc.Text(), " ")
		n, err := strconv.ParseInt(secs, 10, 64)
		if !ok || err != nil || key == "" {
			continue // a torn last line after a crash
		}
		d.seen[key] = time.Unix(n, 0)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("webhook deliveries: reading %s: %w", file, err)
	}
	d.expire()
	return d, nil
}

// deliveryKeys returns the keys a delivery is remembered by.
func deliveryKeys(provider, id string, body []byte) []string {
	sum := sha256.Sum256(append([]byte(provider+"\x00"), body...))
	keys := []string{"body:" + hex.EncodeToString(sum[:])}
	if id != "" {
		// IDs are the provider's, a header anyone can set: keep them short
		// and on one line.
		idSum := sha256.Sum256([]byte(id))
		keys = append(keys, "id:"+provider+":"+hex.EncodeToString(idSum[:16]))
	}
	return keys
}

// claim records keys as seen now, unless one of them was seen within the
// window: then it reports false and records nothing. A claimed delivery
// whose handling fails is released, so the provider's retry is handled.
func (d *deliveries) claim(keys []string) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	for _, k := range keys {
		if t, ok := d.seen[k]; ok && now.Sub(t) < d.window {
			return false, nil
		}
	}
	for _, k := range keys {
		d.seen[k] = now
	}
	if len(d.seen) > d.max {
		d.expire()
		d.evictOldest(len(d.seen) - d.max)
	}
	return true, d.persist(keys, now)
}

// release forgets keys a failed delivery claimed.
func (d *deliveries) release(keys []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, k := range keys {
		delete(d.seen, k)
	}
	// The file keeps the lines; they are dropped at the next rewrite. Until
	// then a restart would treat the retry as a duplicate, which costs only
	// the TTL's wait: rewrite now to avoid even that.
	if err := d.rewrite(); err != nil {
		d.lines = -1 // force a rewrite at the next claim
	}
}

// persist appends keys, or rewrites the file when it has grown past twice
// the bound.
func (d *deliveries) persist(keys []string, now time.Time) error {
	if d.file == "" {
		return nil
	}
	if d.lines < 0 || d.lines+len(keys) > 2*d.max {
		return d.rewrite()
	}
	f, err := os.OpenFile(d.file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("webhook deliveries: %w", err)
	}
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%d %s\n", now.Unix(), k)
	}
	_, err = f.WriteString(b.String())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("webhook deliveries: %w", err)
	}
	d.lines += len(keys)
	return nil
}

// rewrite replaces the file with the entries in memory, expired ones left
// out: a temporary file renamed over it.
func (d *deliveries) rewrite() error {
	if d.file == "" {
		return nil
	}
	d.expire()
	var b strings.Builder
	for k, t := range d.seen {
		fmt.Fprintf(&b, "%d %s\n", t.Unix(), k)
	}
	tmp := d.file + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("webhook deliveries: %w", err)
	}
	if err := os.Rename(tmp, d.file); err != nil {
		return fmt.Errorf("webhook deliveries: %w", err)
	}
	d.lines = len(d.seen)
	return nil
}

// expire drops entries older than the window.
func (d *deliveries) expire() {
	now := d.now()
	for k, t := range d.seen {
		if now.Sub(t) >= d.window {
			delete(d.seen, k)
		}
	}
}

// evictOldest drops the n oldest entries: a flood of distinct signed
// deliveries (which only the secret's holder can make) cannot grow the
// record without bound.
func (d *deliveries) evictOldest(n int) {
	for ; n > 0; n-- {
		var oldest string
		var ot time.Time
		for k, t := range d.seen {
			if oldest == "" || t.Before(ot) {
				oldest, ot = k, t
			}
		}
		delete(d.seen, oldest)
	}
}

// ensureDir creates the directory of file.
func ensureDir(file string) error {
	if file == "" {
		return nil
	}
	return os.MkdirAll(filepath.Dir(file), 0o700)
}
