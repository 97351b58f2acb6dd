package audit_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/modgate/modgate/internal/audit"
)

func TestVerifyUntouched(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	key := testKey(t)
	clk := newClock()
	l := openLog(t, dir, key, func(c *audit.Config) { c.Now = clk.Now })
	writeRecords(l, 0, 50)
	closeLog(t, l)

	rep := verifyOK(t, dir, pubOf(key))
	if rep.Records != 50 || rep.FirstSeq != 1 || rep.LastSeq != 50 || rep.CheckpointSeq != 50 || rep.Files != 1 {
		t.Errorf("Verify report = %+v, want 50 records (seq 1 to 50) in 1 file, checkpoint at 50", rep)
	}
	if want := "ok: 50 records in 1 files, chain intact up to checkpoint seq 50\n"; rep.String() != want {
		t.Errorf("Report.String() = %q, want %q", rep.String(), want)
	}

	// The records read back are the records written.
	got := query(t, dir, audit.Filter{})
	var want []audit.Record
	for i := range 50 {
		want = append(want, record(i))
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(audit.Record{}, "Time")); diff != "" {
		t.Errorf("records read back (-want +got):\n%s", diff)
	}
	for i, r := range got {
		if r.Time.IsZero() || (i > 0 && r.Time.Before(got[i-1].Time)) {
			t.Errorf("record %d: time %v not stamped in order", i, r.Time)
		}
	}
}

// TestVerifyDetectsTampering changes a closed log in each way an attacker
// (or an accident) might, and checks that Verify fails naming the place.
func TestVerifyDetectsTampering(t *testing.T) {
	key := testKey(t)
	tests := []struct {
		name   string
		tamper func(t *testing.T, dir string, files []string)
		file   int // index of the log file named, -1 for the checkpoints file
		line   int // -1: the last line of the checkpoints file
		seq    int64
		kind   audit.ProblemKind
	}{
		{
			name: "edited field",
			tamper: func(t *testing.T, dir string, files []string) {
				lines := readLines(t, files[0])
				lines[4] = strings.Replace(lines[4], `"result":"hit"`, `"result":"miss"`, 1)
				writeLines(t, files[0], lines)
			},
			file: 0, line: 5, seq: 5, kind: audit.ProblemEdited,
		},
		{
			name: "edited and rehashed",
			tamper: func(t *testing.T, dir string, files []string) {
				lines := readLines(t, files[0])
				lines[4] = rehash(strings.Replace(lines[4], `"identity":"user1"`, `"identity":"user2"`, 1))
				writeLines(t, files[0], lines)
			},
			file: 0, line: 6, seq: 6, kind: audit.ProblemBrokenLink,
		},
		{
			name: "edited and the rest of the chain rehashed",
			tamper: func(t *testing.T, dir string, files []string) {
				prev := ""
				for fi, f := range files {
					lines := readLines(t, f)
					for i := range lines {
						if fi == 0 && i < 4 {
							continue
						}
						if fi == 0 && i == 4 {
							lines[i] = strings.Replace(lines[i], `"identity":"user1"`, `"identity":"user2"`, 1)
						} else {
							lines[i] = strings.Replace(lines[i], `"prev":"`+prevOf(lines[i]), `"prev":"`+prev, 1)
						}
						lines[i] = rehash(lines[i])
						prev = hashOf(lines[i])
					}
					writeLines(t, f, lines)
				}
			},
			file: 0, line: 10, seq: 10, kind: audit.ProblemRewritten,
		},
		{
			name: "deleted line",
			tamper: func(t *testing.T, dir string, files []string) {
				lines := readLines(t, files[1])
				writeLines(t, files[1], append(lines[:2], lines[3:]...))
			},
			file: 1, line: 3, seq: 14, kind: audit.ProblemMissing,
		},
		{
			name: "two lines swapped",
			tamper: func(t *testing.T, dir string, files []string) {
				lines := readLines(t, files[0])
				lines[2], lines[3] = lines[3], lines[2]
				writeLines(t, files[0], lines)
			},
			file: 0, line: 4, seq: 3, kind: audit.ProblemReordered,
		},
		{
			name: "truncated tail",
			tamper: func(t *testing.T, dir string, files []string) {
				lines := readLines(t, files[2])
				writeLines(t, files[2], lines[:7])
			},
			file: 2, line: 7, seq: 27, kind: audit.ProblemTruncated,
		},
		{
			name: "deleted last file",
			tamper: func(t *testing.T, dir string, files []string) {
				if err := os.Remove(files[2]); err != nil {
					t.Fatal(err)
				}
			},
			file: 1, line: 10, seq: 20, kind: audit.ProblemTruncated,
		},
		{
			name: "deleted middle file",
			tamper: func(t *testing.T, dir string, files []string) {
				if err := os.Remove(files[1]); err != nil {
					t.Fatal(err)
				}
			},
			file: 2, line: 1, seq: 21, kind: audit.ProblemMissing,
		},
		{
			name: "deleted first file without a retention record",
			tamper: func(t *testing.T, dir string, files []string) {
				if err := os.Remove(files[0]); err != nil {
					t.Fatal(err)
				}
			},
			file: 1, line: 1, seq: 11, kind: audit.ProblemUnanchored,
		},
		{
			name: "checkpoint altered",
			tamper: func(t *testing.T, dir string, files []string) {
				path := filepath.Join(dir, audit.CheckpointsFile)
				lines := readLines(t, path)
				last := len(lines) - 1
				lines[last] = strings.Replace(lines[last], `seq 30\n`, `seq 31\n`, 1)
				writeLines(t, path, lines)
			},
			file: -1, line: -1, kind: audit.ProblemSignature,
		},
		{
			name: "checkpoints file deleted",
			tamper: func(t *testing.T, dir string, files []string) {
				if err := os.Remove(filepath.Join(dir, audit.CheckpointsFile)); err != nil {
					t.Fatal(err)
				}
			},
			file: -1, line: 0, kind: audit.ProblemUnsigned,
		},
		{
			name: "file renamed",
			tamper: func(t *testing.T, dir string, files []string) {
				to := strings.Replace(files[1], "audit-00000000000000000011-", "audit-00000000000000000012-", 1)
				if err := os.Rename(files[1], to); err != nil {
					t.Fatal(err)
				}
				files[1] = to
			},
			file: 1, line: 1, seq: 11, kind: audit.ProblemMalformed,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "audit")
			clk := newClock()
			// Three files of 10 records, three checkpoints (at each
			// rotation and on Close).
			l := openLog(t, dir, key, func(c *audit.Config) {
				c.Now = clk.Now
				c.MaxAge = time.Hour
			})
			for file := range 3 {
				writeRecords(l, file*10, file*10+10)
				if file < 2 {
					waitFor(t, "the records to be written", func() bool { return len(query(t, dir, audit.Filter{})) == file*10+10 })
					clk.Add(2 * time.Hour) // the next record rotates
				}
			}
			closeLog(t, l)
			files := logFiles(t, dir)
			if len(files) != 3 {
				t.Fatalf("setup: %d log files, want 3", len(files))
			}
			verifyOK(t, dir, pubOf(key))
			checkpoints := len(readLines(t, filepath.Join(dir, audit.CheckpointsFile)))

			tt.tamper(t, dir, files)
			rep, err := audit.Verify(dir, pubOf(key))
			if !errors.Is(err, audit.ErrTampered) {
				t.Fatalf("Verify after tampering = %v, want ErrTampered\n%s", err, rep)
			}
			want := audit.Problem{File: audit.CheckpointsFile, Line: tt.line, Seq: tt.seq, Kind: tt.kind}
			if tt.file >= 0 {
				want.File = filepath.Base(files[tt.file])
			}
			if tt.line == -1 {
				want.Line = checkpoints
			}
			found := false
			for _, p := range rep.Problems {
				if p.File == want.File && p.Line == want.Line && p.Seq == want.Seq && p.Kind == want.Kind {
					found = true
				}
			}
			if !found {
				t.Errorf("Verify problems:\n%s\nwant one at %s line %d seq %d of kind %q", rep, want.File, want.Line, want.Seq, want.Kind)
			}
			if s := rep.String(); !strings.HasPrefix(s, "FAILED: ") || !strings.Contains(s, string(tt.kind)) {
				t.Errorf("Report.String() = %q, want FAILED naming %q", s, tt.kind)
			}
		})
	}
}

func TestVerifyWrongKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	key := testKey(t)
	l := openLog(t, dir, key, nil)
	writeRecords(l, 0, 3)
	closeLog(t, l)

	other, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(dir, other)
	if !errors.Is(err, audit.ErrTampered) {
		t.Fatalf("Verify with another key = %v, want ErrTampered\n%s", err, rep)
	}
	if rep.Checkpoints != 0 || rep.Problems[0].Kind != audit.ProblemSignature {
		t.Errorf("Verify with another key:\n%s\nwant bad signatures only", rep)
	}
}

func TestVerifyEmptyAndMissing(t *testing.T) {
	key := testKey(t)
	dir := filepath.Join(t.TempDir(), "audit")
	l := openLog(t, dir, key, nil)
	closeLog(t, l)
	rep := verifyOK(t, dir, pubOf(key))
	if rep.Records != 0 || !strings.HasPrefix(rep.String(), "ok: no records") {
		t.Errorf("Verify of an empty log = %+v (%q)", rep, rep.String())
	}
	if _, err := audit.Verify(filepath.Join(t.TempDir(), "nothing"), pubOf(key)); err == nil || errors.Is(err, audit.ErrTampered) {
		t.Errorf("Verify of a missing directory = %v, want an I/O error", err)
	}
}
