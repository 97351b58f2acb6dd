package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/audit"
)

// auditLines reads a file's lines without "\n".
func auditLines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

func writeAuditLines(t *testing.T, path string, lines []string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o640); err != nil {
		t.Fatal(err)
	}
}

// lineSeq returns the seq of a record or checkpoint line.
func lineSeq(t *testing.T, line string) int64 {
	t.Helper()
	var seq int64
	if _, err := fmt.Sscanf(line, `{"seq":%d,`, &seq); err != nil {
		t.Fatalf("no seq in %q: %v", line, err)
	}
	return seq
}

// auditRuns writes one record per run of the log (each run signs a
// checkpoint when it opens and a final one when it closes), with the
// clock of run i at auditTestTime + i hours.
func auditRuns(t *testing.T, dir string, anchor string, records []audit.Record) {
	t.Helper()
	for i, r := range records {
		at := auditTestTime.Add(time.Duration(i) * time.Hour)
		writeAuditLog(t, dir, func(c *audit.Config) {
			c.Now = func() time.Time { return at }
			if anchor != "" {
				c.Anchors = []audit.Anchor{audit.FileAnchor{Path: anchor}}
			}
		}, r)
	}
}

// TestAuditVerifyCut cuts the log and the checkpoints after the cut, which
// needs no key: verify fails with exit status 1 and says so.
func TestAuditVerifyCut(t *testing.T) {
	data := t.TempDir()
	dir := filepath.Join(data, "audit")
	auditRuns(t, dir, "", auditRecords())
	env := map[string]string{"MODGATE_DATA_DIR": data}
	if code, stdout, stderr := auditRun(t, env, "verify"); code != 0 {
		t.Fatalf("audit verify of the whole log = %d, %q, %q", code, stdout, stderr)
	}

	files, _ := filepath.Glob(filepath.Join(dir, "audit-*.jsonl"))
	var kept []string
	for _, line := range auditLines(t, files[0]) {
		if lineSeq(t, line) <= 3 {
			kept = append(kept, line)
		}
	}
	writeAuditLines(t, files[0], kept)
	cps := filepath.Join(dir, audit.CheckpointsFile)
	kept = nil
	for _, line := range auditLines(t, cps) {
		if lineSeq(t, line) <= 2 {
			kept = append(kept, line)
		}
	}
	writeAuditLines(t, cps, kept)

	code, stdout, _ := auditRun(t, env, "verify")
	if code != 1 || !strings.HasPrefix(stdout, "FAILED: 1 problem") || !strings.Contains(stdout, "seq 3: cut off: records 3 to 3 are not covered by a checkpoint") {
		t.Errorf("audit verify of a cut log = %d, %q; want 1 and the cut named", code, stdout)
	}
	// Judged as of when it was written (a copy taken then), the tail is
	// young: a running server had not signed it yet.
	code, stdout, _ = auditRun(t, env, "verify", "--as-of", auditTestTime.Add(2*time.Hour+30*time.Second).Format(time.RFC3339))
	if code != 0 || !strings.Contains(stdout, "the last 1 records are not covered by a checkpoint yet") {
		t.Errorf("audit verify --as-of = %d, %q; want 0", code, stdout)
	}
}

// TestAuditVerifyOutsideCheckpoints rewrites the log consistently with the
// key in the data directory: plain verify passes, verify against the
// anchor's copy and a public key kept outside fails naming the first
// record that disagrees.
func TestAuditVerifyOutsideCheckpoints(t *testing.T) {
	data := t.TempDir()
	dir := filepath.Join(data, "audit")
	outside := t.TempDir()
	anchor := filepath.Join(outside, "checkpoints")
	auditRuns(t, dir, anchor, auditRecords())
	pub := filepath.Join(outside, "audit.key.pub")
	key, _ := os.ReadFile(audit.KeyPath(dir) + ".pub")
	os.WriteFile(pub, key, 0o644)
	env := map[string]string{"MODGATE_DATA_DIR": data}
	if code, stdout, stderr := auditRun(t, env, "verify", "--checkpoints", anchor, "--public-key", pub); code != 0 || !strings.Contains(stdout, "agrees with 7 outside checkpoints") {
		t.Fatalf("audit verify --checkpoints of the whole log = %d, %q, %q", code, stdout, stderr)
	}

	// Drop record 2, renumber and re-chain, re-sign with the key next to
	// the log.
	files, _ := filepath.Glob(filepath.Join(dir, "audit-*.jsonl"))
	lines := auditLines(t, files[0])
	lines = append(lines[:1], lines[2:]...)
	prev := lineHash(lines[0])
	for i := 1; i < len(lines); i++ {
		line := strings.Replace(lines[i], fmt.Sprintf(`{"seq":%d,"prev":"%s"`, i+2, linePrev(lines[i])), fmt.Sprintf(`{"seq":%d,"prev":"%s"`, i+1, prev), 1)
		lines[i] = rehashLine(line)
		prev = lineHash(lines[i])
	}
	writeAuditLines(t, files[0], lines)
	os.Remove(filepath.Join(dir, audit.CheckpointsFile))
	writeAuditLog(t, dir, func(c *audit.Config) { c.Now = func() time.Time { return auditTestTime.Add(5 * time.Hour) } })

	if code, stdout, stderr := auditRun(t, env, "verify"); code != 0 {
		t.Fatalf("plain audit verify of the re-signed log = %d, %q, %q; want 0 (it cannot tell)", code, stdout, stderr)
	}
	code, stdout, _ := auditRun(t, env, "verify", "--checkpoints", anchor, "--public-key", pub)
	want := filepath.Base(files[0]) + ":2: seq 2: disagrees with outside checkpoints: the first record that disagrees: records up to seq 1 match"
	if code != 1 || !strings.Contains(stdout, want) {
		t.Errorf("audit verify --checkpoints of the rewritten log = %d, %q; want 1 and %q", code, stdout, want)
	}

	// audit.anchor_file is the default copy; -config and --data-dir as for
	// every other subcommand.
	cfgFile := auditConfigFile(t, "audit:\n  anchor_file: "+anchor+"\n")
	code, stdout, stderr := auditRun(t, nil, "verify", "-config", cfgFile, "--data-dir", data)
	if code != 1 || !strings.Contains(stdout, want) {
		t.Errorf("audit verify with audit.anchor_file = %d, %q, %q; want 1 and %q", code, stdout, stderr, want)
	}
	if code, _, stderr := auditRun(t, nil, "verify", "--data-dir", data, "--checkpoints", filepath.Join(outside, "missing")); code != 1 || !strings.Contains(stderr, "outside checkpoints: ") {
		t.Errorf("audit verify with a missing copy = %d, %q; want 1", code, stderr)
	}
	if code, stdout, _ := auditRun(t, nil, "verify", "-config", cfgFile, "--data-dir", data, "--checkpoints", "none"); code != 0 {
		t.Errorf("audit verify --checkpoints none = %d, %q; want 0", code, stdout)
	}
}

// TestAuditDataDirFlag checks that verify and query take --data-dir and
// -config like the other subcommands.
func TestAuditDataDirFlag(t *testing.T) {
	data := t.TempDir()
	writeAuditLog(t, filepath.Join(data, "audit"), nil, auditRecords()...)
	if code, stdout, stderr := auditRun(t, nil, "verify", "--data-dir", data); code != 0 || !strings.HasPrefix(stdout, "ok: 4 records") {
		t.Errorf("audit verify --data-dir = %d, %q, %q", code, stdout, stderr)
	}
	if code, stdout, stderr := auditRun(t, nil, "query", "-data-dir", data, "--json", "--result", "blocked"); code != 0 || strings.Count(stdout, "\n") != 1 {
		t.Errorf("audit query -data-dir = %d, %q, %q", code, stdout, stderr)
	}
	// The flag wins over the environment and the file.
	cfgFile := auditConfigFile(t, "data_dir: /nonexistent\n")
	env := map[string]string{"MODGATE_DATA_DIR": "/nonexistent"}
	if code, stdout, stderr := auditRun(t, env, "verify", "-config", cfgFile, "-data-dir", data); code != 0 || !strings.HasPrefix(stdout, "ok: 4 records") {
		t.Errorf("audit verify -config -data-dir = %d, %q, %q", code, stdout, stderr)
	}
	if code, _, stderr := auditRun(t, nil, "verify", "--data-dir", "relative"); code != 2 || !strings.Contains(stderr, "data_dir") {
		t.Errorf("audit verify --data-dir relative = %d, %q; want 2 naming data_dir", code, stderr)
	}
}

func lineHash(line string) string {
	i := strings.LastIndex(line, `,"hash":"`)
	return strings.TrimSuffix(line[i+len(`,"hash":"`):], `"}`)
}

func linePrev(line string) string {
	_, rest, _ := strings.Cut(line, `"prev":"`)
	p, _, _ := strings.Cut(rest, `"`)
	return p
}

// rehashLine recomputes a record line's hash as the file format says.
func rehashLine(line string) string {
	i := strings.LastIndex(line, `,"hash":"`)
	sum := sha256.Sum256([]byte(line[:i] + "}"))
	return line[:i] + `,"hash":"` + hex.EncodeToString(sum[:]) + `"}`
}
