package audit_test

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/audit"

	"github.com/modgate/modgate/internal/testenv"
)

func TestRotationKeepsChain(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	key := testKey(t)
	clk := newClock()
	l := openLog(t, dir, key, func(c *audit.Config) {
		c.Now = clk.Now
		c.MaxSize = 1000 // about four records a file
		c.MaxAge = time.Hour
	})
	writeRecords(l, 0, 40)
	waitFor(t, "40 records", func() bool { return len(query(t, dir, audit.Filter{})) == 40 })
	before := len(logFiles(t, dir))
	clk.Add(time.Hour)
	writeRecords(l, 40, 41) // rotates by age, though the file is small
	closeLog(t, l)

	files := logFiles(t, dir)
	if before < 8 || len(files) != before+1 {
		t.Fatalf("%d files after 40 records of about 250 bytes with max size 1000, then %d after an hour; want at least 8, then one more", before, len(files))
	}
	// Each file's first record links to the last record of the one before.
	for i := 1; i < len(files); i++ {
		prev := readLines(t, files[i-1])
		if got, want := prevOf(readLines(t, files[i])[0]), hashOf(prev[len(prev)-1]); got != want {
			t.Errorf("%s starts with prev %s, want the last hash of %s, %s", filepath.Base(files[i]), got, filepath.Base(files[i-1]), want)
		}
	}
	rep := verifyOK(t, dir, pubOf(key))
	if rep.Records != 41 || rep.Files != len(files) || rep.CheckpointSeq != 41 {
		t.Errorf("Verify = %+v, want 41 records in %d files, checkpoint at 41", rep, len(files))
	}
}

func TestReopenContinuesChain(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	key := testKey(t)
	l := openLog(t, dir, key, nil)
	writeRecords(l, 0, 5)
	closeLog(t, l)

	// A crash tore the last line: Open cuts it off and goes on.
	files := logFiles(t, dir)
	f, err := os.OpenFile(files[len(files)-1], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"seq":6,"prev":"abc`); err != nil {
		t.Fatal(err)
	}
	f.Close()

	l = openLog(t, dir, key, nil)
	writeRecords(l, 5, 10)
	closeLog(t, l)
	rep := verifyOK(t, dir, pubOf(key))
	if rep.Records != 10 || rep.LastSeq != 10 {
		t.Errorf("Verify after reopening = %+v, want records 1 to 10", rep)
	}
	if got := query(t, dir, audit.Filter{}); len(got) != 10 || got[9].RequestID != "req-9" {
		t.Errorf("Query after reopening: %d records, want 10 ending in req-9", len(got))
	}
}

func TestRetentionKeepsVerifyPassing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	key := testKey(t)
	clk := newClock()
	cfg := func(c *audit.Config) {
		c.Now = clk.Now
		c.MaxAge = time.Hour
		c.Retention = 48 * time.Hour
		c.CheckpointInterval = time.Hour
	}
	l := openLog(t, dir, key, cfg)
	// Five files two hours apart, the first three days before the rest.
	for i := range 5 {
		writeRecords(l, i*3, i*3+3)
		waitFor(t, "the records to be written", func() bool { return hasRecord(t, dir, i*3+2) })
		if i == 2 {
			clk.Add(72 * time.Hour)
		} else {
			clk.Add(2 * time.Hour)
		}
	}
	// Files 0 and 1 were followed by a file created more than 48 hours
	// ago; a pass (after a rotation or an interval) deletes them.
	waitFor(t, "retention to delete two files", func() bool { return len(logFiles(t, dir)) == 3 })
	closeLog(t, l)

	rep := verifyOK(t, dir, pubOf(key))
	if rep.FirstSeq != 7 || !strings.Contains(rep.Anchor, "retention record") || !strings.Contains(rep.String(), "anchored by retention record") {
		t.Errorf("Verify after retention = %+v\n%s\nwant a start at seq 7 anchored by the retention record", rep, rep)
	}
	recs := query(t, dir, audit.Filter{Result: audit.ResultAdmin})
	if len(recs) != 1 || recs[0].Action != audit.ActionRetention || !strings.Contains(recs[0].Detail, "records 1 to 6") {
		t.Errorf("admin records after retention = %+v, want one %s record for records 1 to 6", recs, audit.ActionRetention)
	}

	// The log still opens, goes on and verifies.
	l = openLog(t, dir, key, cfg)
	writeRecords(l, 15, 16)
	closeLog(t, l)
	verifyOK(t, dir, pubOf(key))

	// Deleting the next file by hand is not retention.
	if err := os.Remove(logFiles(t, dir)[0]); err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(dir, pubOf(key))
	if !errors.Is(err, audit.ErrTampered) || rep.Problems[0].Kind != audit.ProblemUnanchored {
		t.Errorf("Verify after deleting a file by hand = %v\n%s\nwant an unanchored start", err, rep)
	}
}

func TestConcurrentWriters(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	key := testKey(t)
	l := openLog(t, dir, key, func(c *audit.Config) {
		c.MaxSize = 64 << 10 // rotate while writing
		c.MaxWait = time.Minute
	})
	const writers, each = 16, 200
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() { writeRecords(l, w*each, (w+1)*each) })
	}
	wg.Wait()
	closeLog(t, l)
	if n := l.Dropped(); n != 0 {
		t.Errorf("Dropped() = %d, want 0", n)
	}
	rep := verifyOK(t, dir, pubOf(key))
	if rep.Records != writers*each || rep.Files < 2 {
		t.Errorf("Verify = %+v, want %d records in several files", rep, writers*each)
	}
	seen := make(map[string]bool)
	for _, r := range query(t, dir, audit.Filter{}) {
		seen[r.RequestID] = true
	}
	if len(seen) != writers*each {
		t.Errorf("%d distinct records, want %d", len(seen), writers*each)
	}
}

// breakDir makes dir unusable (a regular file stands in its place) and
// returns the function that repairs it. Permissions cannot be used: tests
// may run as root.
func breakDir(t *testing.T, dir string) (repair func()) {
	t.Helper()
	aside := dir + ".aside"
	if err := os.Rename(dir, aside); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, []byte("not a directory\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return func() {
		t.Helper()
		if err := os.Remove(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(aside, dir); err != nil {
			t.Fatal(err)
		}
	}
}

// errorCounter is an OnError hook.
type errorCounter struct {
	unwritable, dropped atomic.Int64
}

func (c *errorCounter) onError(err error) {
	switch {
	case errors.Is(err, audit.ErrDropped):
		c.dropped.Add(1)
	case errors.Is(err, audit.ErrUnwritable):
		c.unwritable.Add(1)
	}
}

func TestUnwritableDirectory(t *testing.T) {
	tests := []struct {
		name       string
		failClosed bool
	}{
		{"fail-open", false},
		{"fail-closed", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "audit")
			key := testKey(t)
			var logBuf testenv.LogBuffer
			var errs errorCounter
			l := openLog(t, dir, key, func(c *audit.Config) {
				c.MaxSize = 1 // every record opens a new file
				c.FailClosed = tt.failClosed
				c.OnError = errs.onError
				c.Logger = slog.New(slog.NewTextHandler(&logBuf, nil))
			})
			writeRecords(l, 0, 2)
			waitFor(t, "two records", func() bool { return len(query(t, dir, audit.Filter{})) == 2 })
			if err := l.Healthy(); err != nil {
				t.Fatalf("Healthy() before the failure = %v", err)
			}

			repair := breakDir(t, dir)
			l.Write(record(2))
			waitFor(t, "Healthy to report the failure", func() bool { return l.Healthy() != nil })
			if err := l.Healthy(); !errors.Is(err, audit.ErrUnwritable) || !strings.Contains(err.Error(), "not a directory") {
				t.Errorf("Healthy() = %v, want ErrUnwritable saying why", err)
			}
			err := l.Admit()
			if tt.failClosed != (err != nil) {
				t.Errorf("Admit() with fail_closed %v = %v", tt.failClosed, err)
			}
			if errs.unwritable.Load() == 0 {
				t.Error("OnError was not called with ErrUnwritable")
			}
			if n := strings.Count(logBuf.String(), `msg="audit log cannot be written"`); n != 1 {
				t.Errorf("the failure was logged %d times, want once per episode:\n%s", n, logBuf.String())
			}

			repair()
			waitFor(t, "Healthy to recover", func() bool { return l.Healthy() == nil })
			if err := l.Admit(); err != nil {
				t.Errorf("Admit() after recovery = %v", err)
			}
			writeRecords(l, 3, 4)
			closeLog(t, l)
			if !strings.Contains(logBuf.String(), "audit log writable again") {
				t.Errorf("recovery not logged:\n%s", logBuf.String())
			}

			verifyOK(t, dir, pubOf(key))
			var ids []string
			for _, r := range query(t, dir, audit.Filter{}) {
				ids = append(ids, r.RequestID+r.Action)
			}
			got := strings.Join(ids, " ")
			want := "req-0 req-1 req-2 req-3" // fail-closed: the record was kept and retried
			if !tt.failClosed {
				want = "req-0 req-1 audit.dropped req-3" // fail-open: dropped, and the drop is recorded
			}
			if got != want {
				t.Errorf("records after recovery: %s, want %s", got, want)
			}
			wantDropped := int64(0)
			if !tt.failClosed {
				wantDropped = 1
			}
			if l.Dropped() != wantDropped || errs.dropped.Load() != wantDropped {
				t.Errorf("Dropped() = %d, OnError saw %d drops; want %d", l.Dropped(), errs.dropped.Load(), wantDropped)
			}
		})
	}
}

// TestBufferFullDropsAndNeverBlocks stalls the writer (fail-closed, with
// the disk gone, it holds one record and takes no more), fills the buffer,
// and checks that Write returns after MaxWait and counts the drop.
func TestBufferFullDropsAndNeverBlocks(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	key := testKey(t)
	var errs errorCounter
	const maxWait = 20 * time.Millisecond
	l := openLog(t, dir, key, func(c *audit.Config) {
		c.MaxSize = 1
		c.FailClosed = true
		c.Buffer = 2
		c.MaxWait = maxWait
		c.OnError = errs.onError
	})
	repair := breakDir(t, dir)
	l.Write(record(0))
	waitFor(t, "the writer to hold the failing record", func() bool { return l.Healthy() != nil })
	l.Write(record(1)) // the buffer holds two
	l.Write(record(2))
	for i := 3; i < 8; i++ {
		start := time.Now()
		l.Write(record(i))
		// The bound is MaxWait; a second is a margin no scheduler needs.
		if d := time.Since(start); d > maxWait+time.Second {
			t.Errorf("Write with a full buffer took %v, want about %v", d, maxWait)
		}
	}
	if n := l.Dropped(); n != 5 {
		t.Errorf("Dropped() = %d, want 5", n)
	}
	if n := errs.dropped.Load(); n != 5 {
		t.Errorf("OnError saw %d drops, want 5", n)
	}

	repair()
	closeLog(t, l)
	verifyOK(t, dir, pubOf(key))
	// The drop record comes when the disk is back: before or after the
	// records that waited in the buffer.
	var ids []string
	for _, r := range query(t, dir, audit.Filter{}) {
		if r.Action == audit.ActionDropped {
			if !strings.HasPrefix(r.Detail, "5 audit records dropped since ") {
				t.Errorf("drop record detail = %q, want it to count 5", r.Detail)
			}
			continue
		}
		ids = append(ids, r.RequestID)
	}
	if got, want := strings.Join(ids, " "), "req-0 req-1 req-2"; got != want {
		t.Errorf("records: %s, want %s and a drop record", got, want)
	}
	if n := len(query(t, dir, audit.Filter{Result: audit.ResultAdmin})); n != 1 {
		t.Errorf("%d admin records, want one drop record", n)
	}
}

func TestWriteAfterClose(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	key := testKey(t)
	l := openLog(t, dir, key, nil)
	closeLog(t, l)
	l.Write(record(0))
	if n := l.Dropped(); n != 1 {
		t.Errorf("Dropped() after a Write after Close = %d, want 1", n)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

// TestDiskFull fills a small tmpfs under the log: writes fail (some
// partly), fail-open drops and counts them, and once there is room the
// chain goes on without half lines.
func TestDiskFull(t *testing.T) {
	disk := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", disk).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs to fill (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", disk).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", disk, err, out)
		}
	})
	dir := filepath.Join(disk, "audit")
	key := testKey(t)
	l := openLog(t, dir, key, func(c *audit.Config) {
		c.MaxWait = time.Minute // count only drops caused by the disk
		c.Buffer = 16           // few records left to write once there is room
	})
	writeRecords(l, 0, 1)
	waitFor(t, "the first record", func() bool { return len(query(t, dir, audit.Filter{})) == 1 })

	// Fill the disk.
	filler, err := os.Create(filepath.Join(disk, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(filler, zeros{}); err == nil {
		t.Fatal("filling the tmpfs did not fail")
	}
	filler.Close()

	const total = 2000 // about 500 KB: more than the disk had left
	writeRecords(l, 1, total)
	waitFor(t, "Healthy to report the full disk", func() bool { return l.Healthy() != nil })
	if err := l.Healthy(); !errors.Is(err, audit.ErrUnwritable) {
		t.Errorf("Healthy() = %v, want ErrUnwritable", err)
	}

	if err := os.Remove(filepath.Join(disk, "filler")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "Healthy to recover", func() bool { return l.Healthy() == nil })
	closeLog(t, l)

	rep := verifyOK(t, dir, pubOf(key))
	recs := query(t, dir, audit.Filter{})
	written := 0
	var noted int64
	for _, r := range recs {
		if r.Action == audit.ActionDropped {
			var n int64
			fmt.Sscanf(r.Detail, "%d", &n)
			noted += n
			continue
		}
		written++
	}
	if written == total || written+int(l.Dropped()) != total || noted != l.Dropped() {
		t.Errorf("%d records written, %d dropped, %d recorded as dropped; want some dropped, %d in all", written, l.Dropped(), noted, total)
	}
	t.Logf("%s", rep)
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestCheckpointIsLogged(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	key := testKey(t)
	var logBuf testenv.LogBuffer
	l := openLog(t, dir, key, func(c *audit.Config) {
		c.Logger = slog.New(slog.NewJSONHandler(&logBuf, nil))
	})
	writeRecords(l, 0, 3)
	closeLog(t, l)
	lines := readLines(t, filepath.Join(dir, audit.CheckpointsFile))
	last := lines[len(lines)-1]
	hash := hashOf(readLines(t, logFiles(t, dir)[0])[2])
	if !strings.Contains(last, `"seq":3`) || !strings.Contains(last, hash) {
		t.Errorf("last checkpoint %s, want seq 3 and hash %s", last, hash)
	}
	out := logBuf.String()
	if !strings.Contains(out, `"msg":"audit checkpoint"`) || !strings.Contains(out, `"seq":3`) ||
		!strings.Contains(out, hash) || !strings.Contains(out, `"signature":"— modgate-audit `) {
		t.Errorf("log output lacks the checkpoint with seq, hash and signature:\n%s", out)
	}
}

func TestOpenErrors(t *testing.T) {
	key := testKey(t)
	dir := filepath.Join(t.TempDir(), "audit")
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  audit.Config
		want string
	}{
		{"no directory", audit.Config{SigningKey: key}, "no directory"},
		{"no key", audit.Config{Dir: dir}, "signing key"},
		{"pseudonyms without a key", audit.Config{Dir: dir, SigningKey: key, Pseudonymize: true}, "pseudonymisation needs a key"},
		{"directory is a file", audit.Config{Dir: file, SigningKey: key}, "not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := audit.Open(tt.cfg)
			if err == nil {
				l.Close()
				t.Fatalf("Open(%+v) = nil error, want one saying %q", tt.cfg, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Open error = %q, want it to say %q", err, tt.want)
			}
		})
	}
}
