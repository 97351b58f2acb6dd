package audit

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// applyRetention deletes the oldest closed files whose records are all
// older than Retention. It first appends an ActionRetention record naming
// them and signs a checkpoint covering it, so that Verify can anchor the
// first remaining record; if either fails, nothing is deleted and the next
// pass tries again.
func (l *Log) applyRetention(now time.Time) {
	w := &l.w
	w.lastRetention, w.retentionDue = now, false
	segs, err := listSegments(l.cfg.Dir)
	if err != nil {
		l.log.Error("audit retention skipped", "err", err)
		return
	}
	// A file's records are all older than the next file's creation. The
	// last file is the one being written and is never deleted.
	cutoff := now.Add(-l.cfg.Retention)
	k := 0
	for k+1 < len(segs) && !segs[k+1].created.After(cutoff) {
		k++
	}
	if k == 0 {
		return
	}
	first, err := firstEntry(filepath.Join(l.cfg.Dir, segs[k].name))
	if err != nil {
		l.log.Error("audit retention skipped", "err", err)
		return
	}
	ret := &Retention{FirstSeq: segs[0].firstSeq, LastSeq: first.Seq - 1, LastHash: first.Prev}
	for _, s := range segs[:k] {
		ret.Files = append(ret.Files, s.name)
	}
	e := entry{
		Record: Record{
			Time:   now.UTC(),
			Result: ResultAdmin,
			Action: ActionRetention,
			Detail: fmt.Sprintf("deleting %d files with records %d to %d, older than the retention of %v", k, ret.FirstSeq, ret.LastSeq, l.cfg.Retention),
		},
		Retention: ret,
	}
	if err := l.append(e); err != nil {
		return // reported by append
	}
	l.checkpoint(false)
	if w.signed != w.head {
		return // no signed checkpoint covers the record yet: keep the files
	}
	for _, name := range ret.Files {
		if err := os.Remove(filepath.Join(l.cfg.Dir, name)); err != nil {
			l.log.Error("audit retention: cannot delete file", "file", name, "err", err)
			return
		}
	}
	if err := syncDir(l.cfg.Dir); err != nil {
		l.log.Error("audit retention: cannot sync the directory", "err", err)
	}
	l.log.Info("audit log files deleted by retention", "files", len(ret.Files), "first_seq", ret.FirstSeq, "last_seq", ret.LastSeq)
}
