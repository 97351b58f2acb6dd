package audit_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/audit"
)

// A clock is a settable time source for Config.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock {
	return &clock{t: time.Date(2026, 11, 21, 15, 0, 0, 0, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Millisecond) // every reading is distinct
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testKey returns a signing key created with LoadOrCreateKey.
func testKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	key, err := audit.LoadOrCreateKey(filepath.Join(t.TempDir(), "audit.key"))
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func pubOf(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }

// openLog opens a log with fast ticks, applying edit to the config, and
// closes it at the end of the test if the test has not.
func openLog(t *testing.T, dir string, key ed25519.PrivateKey, edit func(*audit.Config)) *audit.Log {
	t.Helper()
	cfg := audit.Config{
		Dir:          dir,
		SigningKey:   key,
		SyncInterval: 5 * time.Millisecond,
	}
	if edit != nil {
		edit(&cfg)
	}
	l, err := audit.Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// record returns the i-th test record.
func record(i int) audit.Record {
	results := []audit.Result{audit.ResultHit, audit.ResultMiss, audit.ResultBlocked, audit.ResultError}
	return audit.Record{
		RequestID: fmt.Sprintf("req-%d", i),
		Identity:  fmt.Sprintf("user%d", i%3),
		ClientIP:  fmt.Sprintf("192.0.2.%d", i%5),
		UserAgent: "Go-http-client/1.1",
		Module:    fmt.Sprintf("example.com/m%d", i),
		Version:   "v1.0.0",
		File:      "zip",
		Result:    results[i%len(results)],
		Bytes:     int64(100 * i),
		Duration:  time.Duration(i) * time.Millisecond,
	}
}

// writeRecords writes records from..to-1 and returns their request ids.
func writeRecords(l *audit.Log, from, to int) {
	for i := from; i < to; i++ {
		l.Write(record(i))
	}
}

// closeLog closes l and fails the test on an error.
func closeLog(t *testing.T, l *audit.Log) {
	t.Helper()
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// verifyOK runs Verify and fails the test unless the log verifies.
func verifyOK(t *testing.T, dir string, pub ed25519.PublicKey) audit.Report {
	t.Helper()
	rep, err := audit.Verify(dir, pub)
	if err != nil {
		t.Fatalf("Verify = %v\n%s", err, rep)
	}
	if !rep.OK() {
		t.Fatalf("Verify: report not OK but no error:\n%s", rep)
	}
	return rep
}

// logFiles returns the log files of dir in chain order.
func logFiles(t *testing.T, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "audit-*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	return names
}

// readLines returns the lines of a file, without "\n".
func readLines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

func writeLines(t *testing.T, path string, lines []string) {
	t.Helper()
	data := strings.Join(lines, "\n")
	if len(lines) > 0 {
		data += "\n"
	}
	if err := os.WriteFile(path, []byte(data), 0o640); err != nil {
		t.Fatal(err)
	}
}

// rehash recomputes the hash of a record line as the documented format
// says: SHA-256 over the line without its trailing hash field.
func rehash(line string) string {
	i := strings.LastIndex(line, `,"hash":"`)
	body := line[:i] + "}"
	sum := sha256.Sum256([]byte(body))
	return line[:i] + `,"hash":"` + hex.EncodeToString(sum[:]) + `"}`
}

// hashOf returns the hash field of a record line.
func hashOf(line string) string {
	i := strings.LastIndex(line, `,"hash":"`)
	return strings.TrimSuffix(line[i+len(`,"hash":"`):], `"}`)
}

// prevOf returns the prev field of a record line.
func prevOf(line string) string {
	_, rest, _ := strings.Cut(line, `"prev":"`)
	p, _, _ := strings.Cut(rest, `"`)
	return p
}

// query returns every record Query selects with f.
func query(t *testing.T, dir string, f audit.Filter) []audit.Record {
	t.Helper()
	var out []audit.Record
	if err := audit.Query(dir, f, func(r audit.Record) error {
		out = append(out, r)
		return nil
	}); err != nil {
		t.Fatalf("Query: %v", err)
	}
	return out
}

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// dirContains reports whether any log file in dir contains s.
func dirContains(t *testing.T, dir, s string) bool {
	t.Helper()
	for _, f := range logFiles(t, dir) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(data, []byte(s)) {
			return true
		}
	}
	return false
}

// hasRecord reports whether the log in dir holds record(i).
func hasRecord(t *testing.T, dir string, i int) bool {
	t.Helper()
	want := record(i).RequestID
	found := false
	if err := audit.Query(dir, audit.Filter{}, func(r audit.Record) error {
		if r.RequestID == want {
			found = true
			return audit.ErrStop
		}
		return nil
	}); err != nil {
		t.Fatalf("Query: %v", err)
	}
	return found
}
