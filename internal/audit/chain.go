package audit

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// A Chain stores one hash chain that several Logs (one per replica) append
// to at once, in a database all replicas share: Config.Chain. The file log
// in Config.Dir is the default when it is nil. A Chain only stores and
// serialises; the chaining, hashing, signing and verifying stay in this
// package, so every backend produces and checks the same bytes as the file
// log. Its methods are safe for concurrent use, from several processes.
// See the package comment ("Shared chain") for the design.
type Chain interface {
	// Append locks the chain head against every other writer, calls link
	// with it (seq 0 and Genesis for an empty chain) and stores the rows
	// link returns, together with mark if mark.File is set, all or
	// nothing, in one transaction. An error from link is returned as is.
	Append(ctx context.Context, mark SpoolMark, link func(ChainHead) ([]ChainRow, error)) error

	// Has reports whether the chain holds a row with h's seq and hash:
	// whether an append whose commit was not confirmed took place.
	Has(ctx context.Context, h ChainHead) (bool, error)

	// SpoolProgress returns how many lines of the spool file named file
	// were appended (the Lines of the last mark stored for it), 0 if none.
	SpoolProgress(ctx context.Context, file string) (int64, error)

	// Checkpoint locks the chain head, calls sign with it and stores the
	// line sign returns (nothing when it returns nil), so checkpoints are
	// stored in chain order.
	Checkpoint(ctx context.Context, sign func(ChainHead) ([]byte, error)) error

	// Rows calls fn for every stored row in seq order.
	Rows(ctx context.Context, fn func(ChainRow) error) error

	// Checkpoints calls fn for every stored checkpoint line in the order
	// they were stored.
	Checkpoints(ctx context.Context, fn func(line []byte) error) error

	// Name says where the chain is stored, for messages ("PostgreSQL
	// table audit_records").
	Name() string
}

// A ChainHead is the last record of a chain: what the next one links to.
type ChainHead struct {
	Seq  int64
	Hash string
}

// A ChainRow is one record of a shared chain as stored: the line exactly as
// a log file would hold it (without "\n"), and, as separate columns for
// lookups, its seq, hash and replica. Verify checks the columns against the
// line.
type ChainRow struct {
	Seq     int64
	Replica string
	Hash    string
	Line    []byte
}

// A SpoolMark records, in the transaction that appends them, that the
// first Lines lines of the spool file File are in the chain, so a crash
// between the append and the file's removal never appends them twice.
type SpoolMark struct {
	File  string
	Lines int64
}

// ErrSpoolFull matches the error of a record dropped because the spool
// (records waiting for an unreachable shared chain) reached its bound.
var ErrSpoolFull = errors.New("audit spool is full")

// linkRecords chains recs onto h and returns their rows.
func linkRecords(h ChainHead, recs []Record) ([]ChainRow, error) {
	rows := make([]ChainRow, 0, len(recs))
	for _, r := range recs {
		e := entry{Seq: h.Seq + 1, Prev: h.Hash, Record: r}
		if e.Prev == "" {
			e.Prev = Genesis
		}
		line, hash, err := encodeLine(e)
		if err != nil {
			return nil, err
		}
		rows = append(rows, ChainRow{Seq: e.Seq, Replica: r.Replica, Hash: hash, Line: line[:len(line)-1]})
		h = ChainHead{Seq: e.Seq, Hash: hash}
	}
	return rows, nil
}

// maxBatch is how many records one transaction appends at most, and
// maxPending how many wait for the committer at most.
var (
	maxBatch   = 4096 // a variable for tests only
	maxPending = 4096
)

// sharedWriter is the state of the writer goroutine of a Log on a Chain.
type sharedWriter struct {
	chain          Chain
	spool          *spool
	appended       bool // since the last checkpoint
	lastCheckpoint time.Time
	// The spool is drained from retryAt on; after a failure retryAt moves
	// back by backoff, doubled up to maxDrainBackoff.
	retryAt time.Time
	backoff time.Duration
}

// chainTimeout bounds one database call of the writer.
func (l *Log) chainTimeout() time.Duration {
	return max(5*time.Second, 5*l.cfg.SyncInterval)
}

// openShared finishes Open for a Log on a Chain.
func (l *Log) openShared() (*Log, error) {
	sp, err := openSpool(l.cfg.spoolDir(), l.cfg.SpoolMaxBytes)
	if err != nil {
		return nil, fmt.Errorf("opening audit log: %w", err)
	}
	l.sw = &sharedWriter{chain: l.cfg.Chain, spool: sp, lastCheckpoint: l.cfg.Now()}
	l.anchors = startAnchors(l.cfg.Anchors, l.cfg.AnchorTimeout, l.log, l.cfg.OnAnchorError)
	if sp.pending() {
		l.log.Warn("audit records spooled by an earlier run wait for the shared chain", "spool", sp.dir)
		l.drainDue(drainPerTick)
	}
	go l.runShared()
	return l, nil
}

// runShared is the writer goroutine of a Log on a Chain. It only
// collects: whatever is queued while the committer (see commitLoop) is
// busy with a transaction becomes the next batch, so batches grow with the
// load, one transaction carries many records, and requests do not wait for
// the database round trips. At most maxPending records wait here; beyond
// that the queue fills and Write drops after MaxWait, as with files.
func (l *Log) runShared() {
	defer close(l.done)
	batches := make(chan []Record)
	committed := make(chan struct{})
	go l.commitLoop(batches, committed)
	var cur []Record
	for open := true; open; {
		var out chan []Record
		if len(cur) > 0 {
			out = batches
		}
		in := l.ch
		if len(cur) >= maxPending {
			in = nil
		}
		select {
		case r, ok := <-in:
			if !ok {
				open = false
				break
			}
			cur = append(cur, r)
		case out <- cur:
			cur = nil
		case <-l.closing:
			open = false
		}
	}
	// Close closes l.ch right after l.closing: take what is left.
	for r := range l.ch {
		cur = append(cur, r)
	}
	if len(cur) > 0 {
		batches <- cur
	}
	close(batches)
	<-committed
}

// commitLoop appends each batch in one transaction (or spools it), and on
// every tick drains the spool, records drops and signs checkpoints. It
// owns the sharedWriter. When batches is closed it signs the final
// checkpoint.
func (l *Log) commitLoop(batches <-chan []Record, done chan<- struct{}) {
	defer close(done)
	tick := time.NewTicker(l.cfg.SyncInterval)
	defer tick.Stop()
	for {
		select {
		case b, ok := <-batches:
			if !ok {
				l.maintainShared(true)
				l.sw.spool.close()
				return
			}
			for len(b) > 0 {
				n := min(len(b), maxBatch)
				l.commit(b[:n:n])
				b = b[n:]
			}
			// Under load, drain a little after every batch too, so the
			// spool empties while new records keep coming.
			l.drainDue(1)
		case <-tick.C:
			l.maintainShared(false)
		}
	}
}

// commit appends recs (and a drop notice, if records were dropped) to the
// chain, or to the spool.
func (l *Log) commit(recs []Record) {
	w := l.sw
	note, noted := l.dropNote()
	if noted > 0 {
		recs = append(recs, note)
	}
	var tried *ChainHead // the last row of a failed append, if it was linked
	if !w.spool.pending() {
		ctx, cancel := context.WithTimeout(context.Background(), l.chainTimeout())
		err := w.chain.Append(ctx, SpoolMark{}, func(h ChainHead) ([]ChainRow, error) {
			rows, err := linkRecords(h, recs)
			if err == nil && len(rows) > 0 {
				last := rows[len(rows)-1]
				tried = &ChainHead{Seq: last.Seq, Hash: last.Hash}
			}
			return rows, err
		})
		cancel()
		if err == nil {
			w.appended = true
			l.noted(noted)
			l.recovered()
			return
		}
		l.fail(fmt.Errorf("appending to the shared audit chain (%s): %w", w.chain.Name(), err))
	}
	file, end, err := w.spool.write(recs)
	if err == nil && tried != nil {
		// The connection may have failed after the commit: the drain asks
		// the chain whether this batch's last row is there before it
		// appends these lines again.
		w.spool.uncertain = append(w.spool.uncertain, uncertainBatch{file: file, end: end, last: *tried})
	}
	if err != nil {
		// Give the notice's count back: it is written with a later batch.
		if noted > 0 {
			recs = recs[:len(recs)-1]
		}
		l.fail(err)
		for range recs {
			l.drop(fmt.Errorf("%w: %w", ErrDropped, err))
		}
		return
	}
	l.noted(noted)
}

// dropNote returns an ActionDropped record when records were dropped since
// the last one, and how many it reports.
func (l *Log) dropNote() (Record, int64) {
	l.state.Lock()
	n, since := l.unnoted, l.dropSince
	l.state.Unlock()
	if n == 0 {
		return Record{}, 0
	}
	return Record{
		Time:    l.cfg.Now().UTC(),
		Result:  ResultAdmin,
		Action:  ActionDropped,
		Detail:  fmt.Sprintf("%d audit records dropped since %s", n, since.Format(time.RFC3339Nano)),
		Replica: l.cfg.Replica,
	}, n
}

// noted takes n dropped records as reported by a notice now stored.
func (l *Log) noted(n int64) {
	if n == 0 {
		return
	}
	l.state.Lock()
	l.unnoted -= n
	if l.unnoted == 0 {
		l.dropLogged = false
	}
	l.state.Unlock()
	l.log.Warn("audit records were dropped; the count is recorded in the log", "dropped", n)
}

// maintainShared runs on every tick: drain the spool, record drops, and
// sign a checkpoint when due (always when final).
func (l *Log) maintainShared(final bool) {
	w := l.sw
	if final {
		// Close: all that can be drained now, whatever the backoff.
		for w.spool.pending() && l.drainSpool(drainPerTick) {
		}
	} else {
		l.drainDue(drainPerTick)
	}
	if !w.spool.pending() {
		if _, n := l.dropNote(); n > 0 {
			l.commit(nil)
		}
	}
	now := l.cfg.Now()
	since := now.Sub(w.lastCheckpoint)
	if final || w.appended && since >= l.cfg.CheckpointInterval || since >= IdleCheckpoints*l.cfg.CheckpointInterval {
		l.checkpointShared(final)
	}
}

// How much of the spool one drain appends (in transactions of at most
// maxBatch records) on a tick, and the longest wait between attempts while
// the chain cannot be reached. Draining in bounded steps keeps the
// committer taking new batches (into the spool, behind the old records)
// while a large spool empties.
const (
	drainPerTick    = 16
	maxDrainBackoff = 5 * time.Second
)

// drainDue drains up to budget transactions' worth of the spool if it
// holds records and the backoff allows.
func (l *Log) drainDue(budget int) {
	w := l.sw
	now := l.cfg.Now()
	if !w.spool.pending() || now.Before(w.retryAt) {
		return
	}
	if l.drainSpool(budget) {
		w.backoff = 0
		return
	}
	w.backoff = min(max(l.cfg.SyncInterval, 2*w.backoff), maxDrainBackoff)
	w.retryAt = now.Add(w.backoff)
}

// drainSpool appends the spooled records to the chain, oldest first, in
// at most budget transactions, each with its spool mark; a file is removed
// once all of it is in the chain. It stops at the first failure and
// reports whether it had none.
func (l *Log) drainSpool(budget int) bool {
	w := l.sw
	err := w.spool.drain(budget, func(file string, done int64, recs []Record) error {
		ctx, cancel := context.WithTimeout(context.Background(), l.chainTimeout())
		defer cancel()
		return w.chain.Append(ctx, SpoolMark{File: file, Lines: done}, func(h ChainHead) ([]ChainRow, error) { return linkRecords(h, recs) })
	}, func(file string) (int64, error) {
		ctx, cancel := context.WithTimeout(context.Background(), l.chainTimeout())
		defer cancel()
		done, err := w.chain.SpoolProgress(ctx, file)
		if err != nil {
			return 0, err
		}
		for _, u := range w.spool.uncertain {
			if u.file != file || u.end <= done {
				continue
			}
			in, err := w.chain.Has(ctx, u.last)
			if err != nil {
				return 0, err
			}
			if in {
				l.log.Warn("an append reported as failed had committed; its spooled copy is skipped", "file", file, "seq", u.last.Seq)
				done = u.end
			}
		}
		return done, nil
	})
	if err != nil {
		l.fail(fmt.Errorf("appending spooled records to the shared audit chain (%s): %w", w.chain.Name(), err))
		return false
	}
	w.appended = true
	if !w.spool.pending() {
		l.recovered()
		l.log.Info("spooled audit records appended to the shared chain", "chain", w.chain.Name())
	}
	return true
}

// checkpointShared signs the chain head, under the chain's lock so that
// checkpoints are stored in chain order, and sends it to the anchors.
func (l *Log) checkpointShared(final bool) {
	w := l.sw
	w.lastCheckpoint = l.cfg.Now()
	var line []byte
	var c checkpoint
	ctx, cancel := context.WithTimeout(context.Background(), l.chainTimeout())
	defer cancel()
	err := w.chain.Checkpoint(ctx, func(h ChainHead) ([]byte, error) {
		line = nil
		if h.Seq == 0 {
			return nil, nil
		}
		var err error
		c, err = signCheckpoint(l.signer, checkpointHead{head: head{seq: h.Seq, hash: h.Hash}, time: l.cfg.Now(), interval: l.cfg.CheckpointInterval, final: final})
		if err != nil {
			return nil, err
		}
		line, err = marshalCheckpoint(c)
		return line, err
	})
	if err != nil {
		l.log.Error("audit checkpoint not written", "chain", w.chain.Name(), "err", err)
		if l.cfg.OnError != nil {
			l.cfg.OnError(fmt.Errorf("%w: %w", ErrUnwritable, err))
		}
		return
	}
	w.appended = false
	if line == nil {
		return
	}
	l.anchors.send(line)
	l.log.Info("audit checkpoint", "seq", c.Seq, "hash", c.Hash, "time", c.Time, "final", final, "signature", c.signature())
}
