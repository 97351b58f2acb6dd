package audit

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// ErrTampered matches Verify's error when the log does not verify.
var ErrTampered = errors.New("audit log does not verify")

// A ProblemKind names what Verify found wrong.
type ProblemKind string

// Problem kinds.
const (
	// ProblemEdited: a record's bytes do not match its hash.
	ProblemEdited ProblemKind = "edited record"
	// ProblemBrokenLink: a record's prev is not the previous record's
	// hash: the previous record was edited and rehashed, or replaced.
	ProblemBrokenLink ProblemKind = "broken chain"
	// ProblemMissing: a gap in seq: records or whole files deleted.
	ProblemMissing ProblemKind = "deleted records"
	// ProblemReordered: seq goes backwards.
	ProblemReordered ProblemKind = "reordered records"
	// ProblemTruncated: the chain ends before the last checkpoint.
	ProblemTruncated ProblemKind = "truncated"
	// ProblemRewritten: a checkpointed seq holds another hash than the one
	// signed: records up to it were changed and their hashes recomputed.
	ProblemRewritten ProblemKind = "rewritten records"
	// ProblemSignature: a checkpoint's signature does not verify.
	ProblemSignature ProblemKind = "bad signature"
	// ProblemMalformed: a line that is not a record or checkpoint, or a
	// file whose name does not match its first record.
	ProblemMalformed ProblemKind = "malformed"
	// ProblemUnanchored: the log does not start at seq 1 and no signed
	// retention record explains where the earlier records went.
	ProblemUnanchored ProblemKind = "unanchored start"
	// ProblemUnsigned: records but no valid checkpoint at all.
	ProblemUnsigned ProblemKind = "no checkpoint"
	// ProblemUnsignedTail: the log ends in records, or a checkpoint, that
	// a running writer would have signed (again) by now, and no clean
	// shutdown closed it: the log was cut, or its writer crashed.
	ProblemUnsignedTail ProblemKind = "cut off"
	// ProblemDisagrees: the log is not the one an outside copy of the
	// checkpoints signed (VerifyOptions.Checkpoints).
	ProblemDisagrees ProblemKind = "disagrees with outside checkpoints"
)

// VerifyOptions are Verify's optional inputs.
type VerifyOptions struct {
	// Now is when the log is judged: a tail that a running writer would
	// have signed by Now is cut off. Zero means time.Now; a copy of a log
	// is judged as of the time it was copied.
	Now time.Time

	// Interval is the checkpoint interval assumed for checkpoints that do
	// not record theirs (written by older versions). Zero means
	// DefaultCheckpointInterval.
	Interval time.Duration

	// Checkpoints is an outside copy of the checkpoints (an Anchor's
	// file, or syslog lines: only lines holding `{"seq":` count, and
	// anything before the "{" is ignored). Every signed checkpoint in it
	// must match the log; the first record that does not is named. Empty
	// means none.
	Checkpoints string
}

// A Problem is one thing Verify found wrong, and where.
type Problem struct {
	File string // base name of the log file or of the checkpoints file, "replica <name>" for a row of a shared chain; "" for the whole log
	Line int    // 1-based line in File; 0 if none
	Seq  int64  // the record concerned; 0 if none
	Kind ProblemKind
	Msg  string
}

// String formats p as "file:line: seq N: kind: message".
func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d", p.Line)
		}
		b.WriteString(": ")
	}
	if p.Seq > 0 {
		fmt.Fprintf(&b, "seq %d: ", p.Seq)
	}
	b.WriteString(string(p.Kind) + ": " + p.Msg)
	return b.String()
}

// A Report is what Verify found.
type Report struct {
	Dir           string
	Files         int   // log files read
	Records       int64 // records read
	FirstSeq      int64 // seq of the first record, 0 if none
	LastSeq       int64 // seq of the last record, 0 if none
	Anchor        string
	Checkpoints   int   // valid checkpoints
	CheckpointSeq int64 // seq of the last valid checkpoint, 0 if none
	Final         bool  // the last checkpoint was signed by a clean shutdown
	Outside       int   // valid checkpoints in VerifyOptions.Checkpoints
	OutsideFile   string
	Problems      []Problem

	// Chain names the shared chain verified (VerifyChain), "" for files;
	// Replicas lists the replicas whose records it holds, sorted.
	Chain    string
	Replicas []string
}

// where says what the records were read from: "N files", or a shared
// chain's name.
func (r Report) where() string {
	if r.Chain != "" {
		return r.Chain
	}
	return fmt.Sprintf("%d files", r.Files)
}

// OK reports whether the log verified.
func (r Report) OK() bool { return len(r.Problems) == 0 }

// String is the human-readable verdict: one "ok: ..." line, or a summary
// followed by one line per problem.
func (r Report) String() string {
	var b strings.Builder
	if r.OK() {
		fmt.Fprintf(&b, "ok: %d records in %s, chain intact up to checkpoint seq %d", r.Records, r.where(), r.CheckpointSeq)
		if len(r.Replicas) > 0 {
			fmt.Fprintf(&b, "; written by %s", strings.Join(r.Replicas, ", "))
		}
		if r.Records == 0 {
			b.Reset()
			fmt.Fprintf(&b, "ok: no records in %s", r.Dir)
		}
		if r.FirstSeq > 1 {
			fmt.Fprintf(&b, "; starts at seq %d, anchored by %s", r.FirstSeq, r.Anchor)
		}
		if n := r.LastSeq - r.CheckpointSeq; r.Records > 0 && n > 0 {
			fmt.Fprintf(&b, "; the last %d records are not covered by a checkpoint yet", n)
		}
		if r.OutsideFile != "" {
			fmt.Fprintf(&b, "; agrees with %s in %s", plural(r.Outside, "outside checkpoint"), r.OutsideFile)
		}
		b.WriteString("\n")
		return b.String()
	}
	fmt.Fprintf(&b, "FAILED: %s in %s (%d records in %s, %d valid checkpoints):\n", plural(len(r.Problems), "problem"), r.Dir, r.Records, r.where(), r.Checkpoints)
	for _, p := range r.Problems {
		b.WriteString("  " + p.String() + "\n")
	}
	return b.String()
}

// span names the records from a to b: "record 5 is", "records 5 to 9 are".
func span(a, b int64) string {
	if a == b {
		return fmt.Sprintf("record %d is", a)
	}
	return fmt.Sprintf("records %d to %d are", a, b)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// A location is where a record was read.
type location struct {
	file string
	line int
	hash string
}

// Verify is VerifyWith with the zero options: judged now, no outside copy.
func Verify(dir string, pub ed25519.PublicKey) (Report, error) {
	return VerifyWith(dir, pub, VerifyOptions{})
}

// VerifyWith checks the log in dir against the checkpoints signed with the
// key whose public half is pub (see the package comment for what it can and
// cannot detect), and against opts.Checkpoints if set. The Report lists
// every problem found. The error matches ErrTampered, naming the first
// problem, when there are problems, and is another error when the log or
// the outside checkpoints could not be read at all.
func VerifyWith(dir string, pub ed25519.PublicKey, opts VerifyOptions) (Report, error) {
	rep := Report{Dir: dir}
	segs, err := listSegments(dir)
	if err != nil {
		return rep, fmt.Errorf("verifying audit log: %w", err)
	}
	rep.Files = len(segs)
	lines, err := readCheckpoints(dir)
	if err != nil {
		return rep, err
	}
	walk := func(visit visitFunc, add addFunc) error {
		for fi, s := range segs {
			path := filepath.Join(dir, s.name)
			f, err := os.Open(path)
			if err != nil {
				return fmt.Errorf("verifying audit log: %w", err)
			}
			r := bufio.NewReader(f)
			for n := 1; ; n++ {
				line, err := r.ReadBytes('\n')
				if errors.Is(err, io.EOF) {
					if len(line) > 0 && fi < len(segs)-1 {
						add(s.name, n, 0, ProblemMalformed, "incomplete last line in a file that is not the last one")
					}
					// In the last file an incomplete line is a record being
					// written now (or torn by a crash, and cut off at the
					// next start): not part of the chain yet.
					break
				}
				if err != nil {
					f.Close()
					return fmt.Errorf("verifying audit log: reading %s: %w", path, err)
				}
				e, hashOK, err := decodeLine(line[:len(line)-1])
				if err != nil {
					add(s.name, n, 0, ProblemMalformed, "%v", err)
					continue
				}
				if n == 1 && e.Seq != s.firstSeq {
					add(s.name, n, e.Seq, ProblemMalformed, "the file name says its first record is seq %d (file renamed?)", s.firstSeq)
				}
				visit(location{file: s.name, line: n, hash: e.Hash}, e, hashOK)
			}
			f.Close()
		}
		return nil
	}
	return verify(rep, lines, walk, pub, opts)
}

// An addFunc reports a problem.
type addFunc func(file string, line int, seq int64, kind ProblemKind, format string, args ...any)

// A visitFunc takes the next decoded record of the walk, read at loc.
type visitFunc func(loc location, e entry, hashOK bool)

// verify checks the records walk visits, in storage order, against the
// checkpoint lines.
func verify(rep Report, lines [][]byte, walk func(visitFunc, addFunc) error, pub ed25519.PublicKey, opts VerifyOptions) (Report, error) {
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultCheckpointInterval
	}
	verifier, err := newVerifier(pub)
	if err != nil {
		return rep, err
	}
	add := func(file string, line int, seq int64, kind ProblemKind, format string, args ...any) {
		rep.Problems = append(rep.Problems, Problem{File: file, Line: line, Seq: seq, Kind: kind, Msg: fmt.Sprintf(format, args...)})
	}

	// The checkpoints first: the walk notes the hash at each signed seq.
	type signed struct {
		checkpoint
		line int
	}
	var cps []signed
	wanted := make(map[int64]bool)
	for i, line := range lines {
		c, err := parseCheckpoint(line, verifier)
		switch {
		case errors.Is(err, errBadSignature):
			add(CheckpointsFile, i+1, 0, ProblemSignature, "%s", strings.TrimPrefix(err.Error(), errBadSignature.Error()+": "))
			continue
		case err != nil:
			add(CheckpointsFile, i+1, 0, ProblemMalformed, "%v", err)
			continue
		}
		if n := len(cps); n > 0 && c.Seq < cps[n-1].Seq {
			add(CheckpointsFile, i+1, c.Seq, ProblemRewritten, "checkpoint goes back from seq %d to %d: the log was truncated and written again", cps[n-1].Seq, c.Seq)
		}
		cps = append(cps, signed{c, i + 1})
		wanted[c.Seq] = true
	}
	rep.Checkpoints = len(cps)

	// The outside copy: every line holding a checkpoint counts.
	var outside []signed
	if opts.Checkpoints != "" {
		rep.OutsideFile = opts.Checkpoints
		lines, err := readLines(opts.Checkpoints)
		if err != nil {
			return rep, err
		}
		name := filepath.Base(opts.Checkpoints)
		wanted[1] = true
		for i, line := range lines {
			if !bytes.Contains(line, []byte(`{"seq":`)) {
				continue
			}
			c, err := parseCheckpoint(line, verifier)
			switch {
			case errors.Is(err, errBadSignature):
				add(name, i+1, 0, ProblemSignature, "%s", strings.TrimPrefix(err.Error(), errBadSignature.Error()+": "))
				continue
			case err != nil:
				add(name, i+1, 0, ProblemMalformed, "%v", err)
				continue
			}
			outside = append(outside, signed{c, i + 1})
			wanted[c.Seq] = true
			wanted[c.Seq+1] = true // where a disagreement after it starts
		}
		rep.Outside = len(outside)
		slices.SortStableFunc(outside, func(a, b signed) int { return cmp.Compare(a.Seq, b.Seq) })
	}

	// The walk.
	found := make(map[int64]location) // at checkpointed seqs
	recent := make(map[int64]string)  // seq -> hash of the last few records, to follow reordering
	var (
		expected  int64 // next seq; 0 before the first record
		prevHash  string
		last      location
		lastTime  time.Time // of the last record
		retention []entry
		start     *entry // the first record, when it is not seq 1
		startAt   location
	)
	visit := func(loc location, e entry, hashOK bool) {
		switch {
		case expected == 0:
			rep.FirstSeq = e.Seq
			if e.Seq == 1 {
				rep.Anchor = "genesis"
				if e.Prev != Genesis {
					add(loc.file, loc.line, e.Seq, ProblemBrokenLink, "the first record does not link to the genesis value")
				}
			} else {
				start, startAt = &e, loc
			}
		case e.Seq == expected:
			want := prevHash
			if h, ok := recent[e.Seq-1]; ok {
				want = h
			}
			if e.Prev != want {
				add(loc.file, loc.line, e.Seq, ProblemBrokenLink, "prev does not match the hash of seq %d: that record was changed and rehashed, or this one replaced", e.Seq-1)
			}
		case e.Seq > expected:
			where := ""
			if loc.line == 1 {
				where = fmt.Sprintf(" (a whole file after %s deleted?)", last.file)
			}
			add(loc.file, loc.line, e.Seq, ProblemMissing, "seq %d where %d was expected: %s missing%s", e.Seq, expected, span(expected, e.Seq-1), where)
		default:
			add(loc.file, loc.line, e.Seq, ProblemReordered, "seq %d comes after seq %d", e.Seq, expected-1)
			if h, ok := recent[e.Seq-1]; ok && e.Prev != h {
				add(loc.file, loc.line, e.Seq, ProblemBrokenLink, "prev does not match the hash of seq %d", e.Seq-1)
			}
		}
		if !hashOK {
			add(loc.file, loc.line, e.Seq, ProblemEdited, "the record does not match its hash: it was changed after it was written")
		}
		if wanted[e.Seq] {
			found[e.Seq] = loc
		}
		if e.Retention != nil {
			retention = append(retention, e)
		}
		recent[e.Seq] = e.Hash
		delete(recent, e.Seq-64)
		prevHash = e.Hash
		expected = max(expected, e.Seq+1)
		rep.Records++
		rep.LastSeq = max(rep.LastSeq, e.Seq)
		last, lastTime = loc, e.Time
	}
	if err := walk(visit, add); err != nil {
		return rep, err
	}

	var lastValid *signed
	if len(cps) > 0 {
		lastValid = &cps[len(cps)-1]
		rep.CheckpointSeq = lastValid.Seq
		rep.Final = lastValid.Final
	}

	// Each checkpoint's seq must hold the signed hash.
	for _, c := range cps {
		switch loc, ok := found[c.Seq]; {
		case c.Seq > rep.LastSeq:
			// Reported once below, against the last checkpoint.
		case ok && loc.hash != c.Hash:
			add(loc.file, loc.line, c.Seq, ProblemRewritten, "not the record signed in checkpoints line %d at %s: records up to seq %d were changed and rehashed", c.line, c.Time.Format("2006-01-02T15:04:05Z"), c.Seq)
		case !ok && start != nil && c.Seq == start.Seq-1 && c.Hash != start.Prev:
			add(startAt.file, startAt.line, start.Seq, ProblemBrokenLink, "prev does not match seq %d as signed in checkpoints line %d", c.Seq, c.line)
		}
	}
	if lastValid != nil && lastValid.Seq > rep.LastSeq {
		if rep.Records == 0 {
			add("", 0, lastValid.Seq, ProblemTruncated, "no records, but checkpoints line %d signed seq %d at %s: every record was deleted", lastValid.line, lastValid.Seq, lastValid.Time.Format("2006-01-02T15:04:05Z"))
		} else {
			add(last.file, last.line, rep.LastSeq, ProblemTruncated, "the log ends at seq %d, but checkpoints line %d signed seq %d at %s: records after seq %d were deleted", rep.LastSeq, lastValid.line, lastValid.Seq, lastValid.Time.Format("2006-01-02T15:04:05Z"), rep.LastSeq)
		}
	}

	// A log that starts after seq 1 needs a signed retention record that
	// deleted exactly the records before its first one.
	if start != nil {
		anchored := false
		for _, r := range retention {
			if r.Retention.LastSeq != start.Seq-1 || r.Retention.LastHash != start.Prev {
				continue
			}
			if lastValid == nil || r.Seq > lastValid.Seq {
				add(startAt.file, startAt.line, start.Seq, ProblemUnanchored, "retention record seq %d, which deleted records %d to %d, is not covered by a signed checkpoint", r.Seq, r.Retention.FirstSeq, r.Retention.LastSeq)
				anchored = true // reported; do not report twice
				break
			}
			rep.Anchor = fmt.Sprintf("retention record seq %d (records %d to %d deleted)", r.Seq, r.Retention.FirstSeq, r.Retention.LastSeq)
			anchored = true
			break
		}
		if !anchored {
			add(startAt.file, startAt.line, start.Seq, ProblemUnanchored, "the log starts at seq %d and no retention record deleted records 1 to %d: leading files were deleted", start.Seq, start.Seq-1)
		}
	}
	if rep.Records > 0 && lastValid == nil {
		add(CheckpointsFile, 0, 0, ProblemUnsigned, "no valid signed checkpoint: nothing proves the records were not all rewritten")
	}

	// The outside copy: the first signed seq whose record differs, and
	// everything signed beyond the end of the log.
	if opts.Checkpoints != "" && len(outside) == 0 && rep.Records > 0 {
		add(filepath.Base(opts.Checkpoints), 0, 0, ProblemDisagrees, "no valid checkpoint in %s: the anchor never received one, or this is not its copy", opts.Checkpoints)
	}
	agreed := int64(0) // the last outside seq that matched
	for _, c := range outside {
		loc, ok := found[c.Seq]
		if c.Seq > rep.LastSeq {
			add(last.file, last.line, rep.LastSeq, ProblemDisagrees, "the log ends at seq %d, but %s line %d signed seq %d at %s: records after seq %d were deleted",
				rep.LastSeq, rep.OutsideFile, c.line, c.Seq, c.Time.Format("2006-01-02T15:04:05Z"), rep.LastSeq)
			break
		}
		if !ok {
			continue // before the first record: deleted by retention, which the log's own checks cover
		}
		if loc.hash == c.Hash {
			agreed = c.Seq
			continue
		}
		first := agreed + 1
		at, ok := found[first]
		if !ok {
			first, at = c.Seq, loc
		}
		add(at.file, at.line, first, ProblemDisagrees, "the first record that disagrees: records up to seq %d match the outside checkpoints, but seq %d is not the record %s line %d signed at %s: records %d to %d were changed, deleted or inserted and the chain rebuilt",
			agreed, c.Seq, rep.OutsideFile, c.line, c.Time.Format("2006-01-02T15:04:05Z"), first, c.Seq)
		break
	}

	// The tail: a running writer signs a moved head within its interval
	// and an idle one every IdleCheckpoints intervals; a clean shutdown
	// signs a final checkpoint. What is left older than that was cut off
	// (the checkpoints after the cut deleted with it), or the writer
	// crashed and was never restarted.
	last2 := lastValid
	for i := range outside {
		if c := &outside[i]; last2 == nil || c.Seq > last2.Seq || c.Seq == last2.Seq && c.Time.After(last2.Time) {
			last2 = c
		}
	}
	if last2 != nil && rep.Records > 0 && last2.Seq <= rep.LastSeq {
		interval, recorded := last2.Interval, last2.Interval > 0
		if !recorded {
			interval = opts.Interval
		}
		grace := max(5*time.Second, interval/10)
		age := opts.Now.Sub(last2.Time)
		signedAt := fmt.Sprintf("the last checkpoint (seq %d, %s)", last2.Seq, last2.Time.Format(time.RFC3339))
		switch {
		case last2.Seq < rep.LastSeq && lastTime.Sub(last2.Time) > interval+grace:
			add(last.file, last.line, rep.LastSeq, ProblemUnsignedTail, "records %d to %d are not covered by a checkpoint, and seq %d was written at %s, %v after %s: a writer signs within its checkpoint interval (%v), so the checkpoints after seq %d were deleted (or the server crashed right after writing it and was not restarted)",
				last2.Seq+1, rep.LastSeq, rep.LastSeq, lastTime.Format(time.RFC3339), lastTime.Sub(last2.Time).Round(time.Second), signedAt, interval, last2.Seq)
		case last2.Seq < rep.LastSeq && age > interval+grace:
			add(last.file, last.line, rep.LastSeq, ProblemUnsignedTail, "records %d to %d are not covered by a checkpoint, and %s is %v old: a running writer signs within its checkpoint interval (%v) and a clean shutdown signs the end, so the log was cut after seq %d (its later checkpoints deleted), or the server crashed and was not restarted",
				last2.Seq+1, rep.LastSeq, signedAt, age.Round(time.Second), interval, rep.LastSeq)
		case recorded && !last2.Final && age > IdleCheckpoints*interval+grace:
			add(last.file, last.line, rep.LastSeq, ProblemUnsignedTail, "%s is %v old and not the final checkpoint of a clean shutdown: a running writer signs again at least every %v, so the log was cut after seq %d (its later checkpoints deleted), or the server crashed and was not restarted",
				signedAt, age.Round(time.Second), IdleCheckpoints*interval, rep.LastSeq)
		}
	}

	if len(rep.Problems) > 0 {
		return rep, fmt.Errorf("%w: %s", ErrTampered, rep.Problems[0])
	}
	return rep, nil
}
