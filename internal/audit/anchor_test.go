package audit_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/audit"
	"github.com/modgate/modgate/internal/testenv"
)

// checkpointsLines returns the lines of the checkpoints file in dir.
func checkpointsLines(t *testing.T, dir string) []string {
	t.Helper()
	return readLines(t, filepath.Join(dir, audit.CheckpointsFile))
}

// seqOf returns the seq field of a record or checkpoint line.
func seqOf(t *testing.T, line string) int64 {
	t.Helper()
	var seq int64
	if _, err := fmt.Sscanf(line[strings.Index(line, `{"seq":`):], `{"seq":%d,`, &seq); err != nil {
		t.Fatalf("no seq in %q: %v", line, err)
	}
	return seq
}

// cutLog keeps the records up to seq keep and the checkpoints up to it
// (up to cpKeep, when not zero), as someone without the key would cut a
// log.
func cutLog(t *testing.T, dir string, keep int64, cpKeep ...int64) {
	t.Helper()
	for _, f := range logFiles(t, dir) {
		var kept []string
		for _, line := range readLines(t, f) {
			if seqOf(t, line) <= keep {
				kept = append(kept, line)
			}
		}
		if len(kept) == 0 {
			os.Remove(f)
			continue
		}
		writeLines(t, f, kept)
	}
	if len(cpKeep) > 0 {
		keep = cpKeep[0]
	}
	var kept []string
	for _, line := range checkpointsLines(t, dir) {
		if seqOf(t, line) <= keep {
			kept = append(kept, line)
		}
	}
	writeLines(t, filepath.Join(dir, audit.CheckpointsFile), kept)
}

// batches writes three batches of 10 records, the first two each followed
// by gap passing (and a checkpoint), then pause passing.
func batches(t *testing.T, dir string, l *audit.Log, clk *clock, gap, pause time.Duration) {
	t.Helper()
	for b := range 3 {
		before := len(checkpointsLinesOrNone(dir))
		writeRecords(l, b*10, b*10+10)
		waitFor(t, "the records to be written", func() bool { return len(query(t, dir, audit.Filter{})) == b*10+10 })
		if b < 2 {
			clk.Add(gap)
			waitFor(t, "a checkpoint", func() bool { return len(checkpointsLinesOrNone(dir)) > before })
			clk.Add(pause)
		}
	}
}

func checkpointsLinesOrNone(dir string) []string {
	data, err := os.ReadFile(filepath.Join(dir, audit.CheckpointsFile))
	if err != nil {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

// TestVerifyDetectsCutWithoutKey cuts a log and the checkpoints after the
// cut, which needs no key, and checks that Verify fails unless the log
// was closed cleanly there or is being written now.
func TestVerifyDetectsCutWithoutKey(t *testing.T) {
	key := testKey(t)
	tests := []struct {
		name   string
		gap    time.Duration // clock advance after each of the first two batches
		pause  time.Duration // then this, before the next batch
		keep   int64         // records (and checkpoints) kept
		cpKeep int64         // checkpoints kept, if not keep
		age    time.Duration // Verify runs this long after the end of writing
		msg    string        // in the problem; "" means the log verifies
	}{
		{name: "closed cleanly, verified a year later", gap: 2 * time.Minute, keep: 30, age: 365 * 24 * time.Hour},
		{name: "cut inside a batch", gap: 2 * time.Minute, keep: 15, age: time.Hour, msg: "records 11 to 15 are not covered by a checkpoint, and the last checkpoint (seq 10"},
		{name: "cut inside a batch written long after the checkpoint", gap: 2 * time.Minute, pause: 5 * time.Minute, keep: 15, cpKeep: 10, age: 0, msg: "records 11 to 15 are not covered by a checkpoint, and seq 15 was written at 2026-11-21T15:07:00Z, 5m0s after the last checkpoint (seq 10"},
		{name: "cut at a checkpoint", gap: 2 * time.Minute, keep: 20, age: time.Hour, msg: "not the final checkpoint of a clean shutdown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "audit")
			clk := newClock()
			l := openLog(t, dir, key, func(c *audit.Config) {
				c.Now = clk.Now
				c.CheckpointInterval = time.Minute
			})
			batches(t, dir, l, clk, tt.gap, tt.pause)
			closeLog(t, l)
			verifyOK(t, dir, pubOf(key))

			if tt.cpKeep == 0 {
				tt.cpKeep = tt.keep
			}
			// A writer may have signed part of the batch after the pause
			// (its tick is not the test's): cut the checkpoints at cpKeep.
			cutLog(t, dir, tt.keep, tt.cpKeep)
			now := clk.Now().Add(tt.age)
			rep, err := audit.VerifyWith(dir, pubOf(key), audit.VerifyOptions{Now: now})
			if tt.msg == "" {
				if err != nil {
					t.Fatalf("Verify = %v\n%s", err, rep)
				}
				return
			}
			if !errors.Is(err, audit.ErrTampered) {
				t.Fatalf("Verify after a cut at seq %d = %v, want ErrTampered\n%s", tt.keep, err, rep)
			}
			found := false
			for _, p := range rep.Problems {
				if p.Kind == audit.ProblemUnsignedTail && p.Seq == tt.keep && strings.Contains(p.Msg, tt.msg) {
					found = true
				}
			}
			if !found {
				t.Errorf("Verify problems:\n%s\nwant %q at seq %d containing %q", rep, audit.ProblemUnsignedTail, tt.keep, tt.msg)
			}
		})
	}
}

// TestVerifyOpenLog checks that a log still being written is not taken
// for a cut one, and that the last checkpoint of a clean shutdown is final.
func TestVerifyOpenLog(t *testing.T) {
	key := testKey(t)
	dir := filepath.Join(t.TempDir(), "audit")
	clk := newClock()
	l := openLog(t, dir, key, func(c *audit.Config) {
		c.Now = clk.Now
		c.CheckpointInterval = time.Minute
	})
	batches(t, dir, l, clk, 2*time.Minute, 0)
	// Records 21 to 30 are written, not signed yet: fine while young.
	rep, err := audit.VerifyWith(dir, pubOf(key), audit.VerifyOptions{Now: clk.Now().Add(30 * time.Second)})
	if err != nil || !strings.Contains(rep.String(), "the last 10 records are not covered by a checkpoint yet") {
		t.Fatalf("Verify of an open log = %v\n%s", err, rep)
	}
	// An idle writer signs its head again: the open log stays verifiable.
	clk.Add(2 * time.Minute)
	waitFor(t, "the tail to be signed", func() bool {
		lines := checkpointsLinesOrNone(dir)
		return seqOf(t, lines[len(lines)-1]) == 30
	})
	n := len(checkpointsLinesOrNone(dir))
	clk.Add(audit.IdleCheckpoints * time.Minute)
	waitFor(t, "an idle checkpoint", func() bool { return len(checkpointsLinesOrNone(dir)) > n })
	if rep, err := audit.VerifyWith(dir, pubOf(key), audit.VerifyOptions{Now: clk.Now().Add(time.Minute)}); err != nil {
		t.Fatalf("Verify of an idle open log = %v\n%s", err, rep)
	}
	// A crash (no Close) left long enough is reported.
	crashed := clk.Now().Add(audit.IdleCheckpoints*time.Minute + time.Hour)
	if rep, err := audit.VerifyWith(dir, pubOf(key), audit.VerifyOptions{Now: crashed}); !errors.Is(err, audit.ErrTampered) || !strings.Contains(rep.String(), "or the server crashed and was not restarted") {
		t.Errorf("Verify of a log left open = %v\n%s", err, rep)
	}
	closeLog(t, l)
	rep, err = audit.VerifyWith(dir, pubOf(key), audit.VerifyOptions{Now: crashed})
	if err != nil || !rep.Final {
		t.Fatalf("Verify after Close = %v, final %v\n%s", err, rep.Final, rep)
	}
	if last := checkpointsLines(t, dir); !strings.Contains(last[len(last)-1], `"final":true`) || !strings.Contains(last[len(last)-1], `"interval_ns":60000000000`) {
		t.Errorf("last checkpoint %s, want final with the interval", last[len(last)-1])
	}
}

// TestVerifyOutsideCheckpoints rewrites a log consistently with the key
// kept next to it (a record dropped, the chain rebuilt and re-signed): the
// log alone verifies, the anchor's copy of the checkpoints does not.
func TestVerifyOutsideCheckpoints(t *testing.T) {
	data := t.TempDir()
	dir := filepath.Join(data, "audit")
	keyPath := audit.KeyPath(dir)
	key, err := audit.LoadOrCreateKey(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "other-mount", "checkpoints")
	if err := os.MkdirAll(filepath.Dir(outside), 0o755); err != nil {
		t.Fatal(err)
	}
	// One record per run: every record is signed, outside too.
	for i := range 6 {
		l := openLog(t, dir, key, func(c *audit.Config) { c.Anchors = []audit.Anchor{audit.FileAnchor{Path: outside}} })
		writeRecords(l, i, i+1)
		closeLog(t, l)
	}
	opts := audit.VerifyOptions{Checkpoints: outside}
	if rep, err := audit.VerifyWith(dir, pubOf(key), opts); err != nil || !strings.Contains(rep.String(), "agrees with 11 outside checkpoints in "+outside) {
		t.Fatalf("Verify against the outside copy = %v\n%s", err, rep)
	}

	// Drop record 4, renumber and re-chain the rest, re-sign the head.
	files := logFiles(t, dir)
	lines := readLines(t, files[0])
	lines = append(lines[:3], lines[4:]...)
	prev := hashOf(lines[2])
	for i := 3; i < len(lines); i++ {
		lines[i] = strings.Replace(lines[i], fmt.Sprintf(`{"seq":%d,`, i+2), fmt.Sprintf(`{"seq":%d,`, i+1), 1)
		lines[i] = strings.Replace(lines[i], `"prev":"`+prevOf(lines[i]), `"prev":"`+prev, 1)
		lines[i] = rehash(lines[i])
		prev = hashOf(lines[i])
	}
	writeLines(t, files[0], lines)
	os.Remove(filepath.Join(dir, audit.CheckpointsFile))
	l := openLog(t, dir, key, nil) // signs the forged head with the key in the data directory
	closeLog(t, l)

	verifyOK(t, dir, pubOf(key)) // as before: the log alone cannot tell

	pub, err := audit.LoadPublicKey(keyPath + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.VerifyWith(dir, pub, opts)
	if !errors.Is(err, audit.ErrTampered) {
		t.Fatalf("Verify of the rewritten log against the outside copy = %v, want ErrTampered\n%s", err, rep)
	}
	want := audit.Problem{File: filepath.Base(files[0]), Line: 4, Seq: 4, Kind: audit.ProblemDisagrees}
	p := rep.Problems[0]
	if p.File != want.File || p.Line != want.Line || p.Seq != want.Seq || p.Kind != want.Kind || !strings.Contains(p.Msg, "the first record that disagrees: records up to seq 3 match") {
		t.Errorf("first problem = %s, want %s:%d seq %d %q", p, want.File, want.Line, want.Seq, want.Kind)
	}

	// A copy without any checkpoint proves nothing, and says so.
	empty := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(empty, []byte("Dec  4 13:00:00 host sshd[1]: unrelated\n"), 0o644)
	if rep, err := audit.VerifyWith(dir, pub, audit.VerifyOptions{Checkpoints: empty}); !errors.Is(err, audit.ErrTampered) || !strings.Contains(rep.String(), "no valid checkpoint in "+empty) {
		t.Errorf("Verify against a copy without checkpoints = %v\n%s", err, rep)
	}

	// A log cut after the last outside checkpoint's seq also disagrees.
	cutDir := filepath.Join(t.TempDir(), "audit")
	for i := range 3 {
		l := openLog(t, cutDir, key, func(c *audit.Config) { c.Anchors = []audit.Anchor{audit.FileAnchor{Path: outside + "2"}} })
		writeRecords(l, i, i+1)
		closeLog(t, l)
	}
	cutLog(t, cutDir, 2)
	rep, err = audit.VerifyWith(cutDir, pubOf(key), audit.VerifyOptions{Checkpoints: outside + "2"})
	if !errors.Is(err, audit.ErrTampered) || !strings.Contains(rep.String(), "records after seq 2 were deleted") {
		t.Errorf("Verify of a cut log against the outside copy = %v\n%s", err, rep)
	}
}

// hangingAnchor blocks until release is closed, whatever its context
// says: a system call that never returns.
type hangingAnchor struct {
	calls   atomic.Int64
	release chan struct{}
}

func (a *hangingAnchor) Send(ctx context.Context, line []byte) error {
	a.calls.Add(1)
	<-a.release
	return errors.New("released")
}
func (a *hangingAnchor) String() string { return "hanging" }

// TestAnchorFailureDoesNotBlock checks that an anchor that fails or hangs
// costs the writer nothing: records are written and signed, the failures
// are counted and logged.
func TestAnchorFailureDoesNotBlock(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	key := testKey(t)
	clk := newClock()
	var logBuf testenv.LogBuffer
	var failures atomic.Int64
	hang := &hangingAnchor{release: make(chan struct{})}
	t.Cleanup(func() { close(hang.release) })
	l := openLog(t, dir, key, func(c *audit.Config) {
		c.Now = clk.Now
		c.Logger = slog.New(slog.NewTextHandler(&logBuf, nil))
		c.Anchors = []audit.Anchor{hang, audit.FileAnchor{Path: filepath.Join(t.TempDir(), "missing", "dir", "checkpoints")}}
		c.OnAnchorError = func(string, error) { failures.Add(1) }
		c.AnchorTimeout = 100 * time.Millisecond
	})
	for i := range 100 {
		writeRecords(l, i, i+1)
		clk.Add(2 * time.Minute) // a checkpoint at every tick
		if i%10 == 9 {
			waitFor(t, "the records to be written", func() bool { return len(query(t, dir, audit.Filter{})) == i+1 })
		}
	}
	waitFor(t, "the checkpoints to be signed", func() bool {
		clk.Add(2 * time.Minute) // the writer may have taken a tick before the last record
		lines := checkpointsLinesOrNone(dir)
		return len(lines) > 0 && seqOf(t, lines[len(lines)-1]) == 100
	})
	if hang.calls.Load() != 1 {
		t.Errorf("the hanging anchor was called %d times, want once (the rest queued or dropped)", hang.calls.Load())
	}
	if failures.Load() == 0 {
		t.Errorf("anchor failures not reported")
	}
	if !strings.Contains(logBuf.String(), "audit checkpoint not copied to its anchor") {
		t.Errorf("anchor failure not logged:\n%s", logBuf.String())
	}
	// Close does not wait for the hanging anchor beyond its timeout.
	start := time.Now()
	closeLog(t, l)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close with a hanging anchor took %v", d)
	}
	if n := strings.Count(logBuf.String(), `not copied to its anchor" component=audit dir=`+dir+` anchor="file `); n != 1 {
		t.Errorf("failing file anchor logged %d times, want once per episode", n)
	}
}

// TestSyslogAnchor checks that checkpoints reach a syslog daemon over UDP
// and that its lines serve as the outside copy.
func TestSyslogAnchor(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	got := make(chan string, 16)
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				close(got)
				return
			}
			got <- string(buf[:n])
		}
	}()
	anchor, err := audit.NewSyslogAnchor("udp://" + pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "audit")
	key := testKey(t)
	l := openLog(t, dir, key, func(c *audit.Config) { c.Anchors = []audit.Anchor{anchor} })
	writeRecords(l, 0, 3)
	closeLog(t, l)

	var msg string
	select {
	case msg = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("no syslog message")
	}
	if !strings.Contains(msg, "modgate-audit") || !strings.Contains(msg, `audit checkpoint {"seq":3,`) {
		t.Fatalf("syslog message %q, want the tag and the checkpoint", msg)
	}
	copyFile := filepath.Join(t.TempDir(), "syslog")
	os.WriteFile(copyFile, []byte("Dec  4 13:00:00 host unrelated: line\n"+strings.TrimSpace(msg)+"\n"), 0o644)
	if rep, err := audit.VerifyWith(dir, pubOf(key), audit.VerifyOptions{Checkpoints: copyFile}); err != nil || rep.Outside != 1 {
		t.Errorf("Verify against the syslog copy = %v, %d outside checkpoints\n%s", err, rep.Outside, rep)
	}

	for _, bad := range []string{"udp://127.0.0.1", "http://127.0.0.1:514", "unix://host/dev/log", "tcp://:514/x"} {
		if _, err := audit.NewSyslogAnchor(bad); err == nil {
			t.Errorf("NewSyslogAnchor(%q) = nil error", bad)
		}
	}
}
