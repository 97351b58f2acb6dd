package audit

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
)

var (
	// ErrDropped matches the error OnError receives for a record that was
	// not written: the buffer stayed full for MaxWait, the sink failed in
	// fail-open mode, or the Log was closed.
	ErrDropped = errors.New("audit record dropped")

	// ErrUnwritable matches Healthy's error, and the error OnError
	// receives, while the log's files cannot be written.
	ErrUnwritable = errors.New("audit log cannot be written")
)

// Defaults used for zero Config fields.
const (
	DefaultMaxSize            = 100 << 20
	DefaultCheckpointInterval = time.Minute
	DefaultSyncInterval       = time.Second
	DefaultBuffer             = 1024
	DefaultMaxWait            = 50 * time.Millisecond

	// IdleCheckpoints is how many checkpoint intervals an idle writer
	// waits before it signs its unchanged head again.
	IdleCheckpoints = 10
)

// Config configures a Log. Only Dir and SigningKey are required.
type Config struct {
	// Dir holds the log files and the checkpoints file; it is created
	// (mode 0750) if missing.
	Dir string

	// MaxSize is the size in bytes above which a file is rotated.
	// Zero means DefaultMaxSize.
	MaxSize int64

	// MaxAge rotates a file when it is older than this at the next write.
	// Zero means no rotation by age.
	MaxAge time.Duration

	// Retention deletes closed files whose records are all older than
	// this, recording the deletion in the chain (see the package comment).
	// Zero keeps every file.
	Retention time.Duration

	// CheckpointInterval is how often the chain head is signed (when it
	// moved) and retention is applied. Zero means DefaultCheckpointInterval.
	CheckpointInterval time.Duration

	// SyncInterval is how often written records are fsynced and a failing
	// sink is retried. A crash loses at most this much. Zero means
	// DefaultSyncInterval.
	SyncInterval time.Duration

	// FailClosed keeps a record the sink failed to write and retries it
	// (instead of dropping it), and makes Admit report the failure so the
	// server refuses requests until the disk is writable again.
	FailClosed bool

	// Buffer is how many records wait for the writer. Zero means
	// DefaultBuffer.
	Buffer int

	// MaxWait is how long Write waits for room in a full buffer before it
	// drops the record. Zero means DefaultMaxWait.
	MaxWait time.Duration

	// Pseudonymize replaces ClientIP and Identity with their Pseudonym
	// under PseudonymKey (at least 16 bytes; see LoadOrCreateSecret).
	Pseudonymize bool
	PseudonymKey []byte

	// SigningKey signs the checkpoints (see LoadOrCreateKey).
	SigningKey ed25519.PrivateKey

	// Anchors receive a copy of every checkpoint line, outside the log
	// directory (see anchor.go). Delivery runs in its own goroutine and
	// never holds up the writer: a copy that cannot be queued or sent is
	// logged and reported to OnAnchorError.
	Anchors []Anchor

	// OnAnchorError, if set, is called for every checkpoint an anchor did
	// not receive: the hook for a metric.
	OnAnchorError func(anchor string, err error)

	// AnchorTimeout bounds one delivery to an anchor, and how long Close
	// waits for the copies still queued. Zero means DefaultAnchorTimeout.
	AnchorTimeout time.Duration

	// Logger receives the log's own events: failures, drops, checkpoints.
	// Nil discards them.
	Logger *slog.Logger

	// OnError, if set, is called (from any goroutine) for every failed
	// write (an error matching ErrUnwritable) and every dropped record (an
	// error matching ErrDropped): the hook for a metric.
	OnError func(error)

	// Now returns the current time. Nil means time.Now.
	Now func() time.Time

	// Chain, if set, is a hash chain shared with other replicas (see
	// chain.go and the package comment, "Shared chain"): records are
	// appended to it in batches instead of to files in Dir, and spooled
	// in SpoolDir while it cannot be reached. MaxSize, MaxAge and
	// Retention do not apply to it.
	Chain Chain

	// Replica names this process in the records it writes (Record.Replica),
	// e.g. hostname:pid; empty leaves the field out.
	Replica string

	// SpoolDir is where a Log on a Chain keeps records while the chain
	// cannot be reached; empty means Dir/spool. SpoolMaxBytes bounds it;
	// zero means DefaultSpoolMaxBytes.
	SpoolDir      string
	SpoolMaxBytes int64
}

// A Log is the audit sink: an append-only, hash-chained set of files in
// one directory, written by one goroutine. Only one Log (one process) may
// write a directory at a time. Its methods are safe for concurrent use.
type Log struct {
	cfg    Config
	log    *slog.Logger
	signer note.Signer

	mu      sync.RWMutex // held shared by Write while sending, exclusively by Close
	closed  bool
	ch      chan Record
	closing chan struct{} // closed by Close
	done    chan struct{} // closed when the writer has finished

	anchors anchorQueues

	state sync.Mutex // guards the fields below
	// health is nil while the sink can write, else an error matching
	// ErrUnwritable.
	health error
	// dropped counts every dropped record; unnoted those not yet reported
	// in an ActionDropped record, the first of them at dropSince.
	dropped, unnoted int64
	dropSince        time.Time
	dropLogged       bool

	w  writer        // owned by the writer goroutine
	sw *sharedWriter // the writer goroutine's state on a Chain, else nil
}

// writer is the state of the writer goroutine.
type writer struct {
	f      *os.File // current file; nil until the next record opens one
	seg    segment
	size   int64
	cut    int64 // >= 0: a torn line must be cut back to this size first
	dirty  bool  // written since the last fsync
	rotate bool  // the next record opens a new file
	head   head

	// held is, in fail-closed mode, a record the disk refused, retried
	// every tick; no other record is taken meanwhile.
	held       *Record
	syncFailed bool // the last fsync failed; retried every tick

	// Records are encoded into buf and written with one write(2) when the
	// queue runs empty (or buf is large, or before an fsync, a rotation or
	// a checkpoint): one system call per burst instead of per record.
	// durable is the head and durableSize the file size up to the last
	// record actually written. When a write of buf fails, fail-open mode
	// drops the buffered records (the chain continues from durable);
	// fail-closed mode keeps them and takes nothing new until a retry
	// (every tick) succeeds, like a held record.
	buf         []byte
	bufRecords  int
	bufNotes    int   // of them, ActionDropped records
	bufNoted    int64 // the drops those records count
	durable     head
	durableSize int64
	flushFailed bool

	signed         head // the last head signed in a checkpoint
	lastCheckpoint time.Time
	lastRetention  time.Time
	retentionDue   bool
}

// Open opens (or creates) the log in cfg.Dir, recovers the chain head
// (see the package comment for what a crash leaves), signs a checkpoint of
// it, and starts the writer. It fails when the configuration is unusable or
// the directory cannot be created or read; a directory that cannot be
// written shows in Healthy once a write fails. Close must be called.
func Open(cfg Config) (*Log, error) {
	if cfg.Dir == "" {
		return nil, errors.New("opening audit log: no directory")
	}
	signer, err := newSigner(cfg.SigningKey)
	if err != nil {
		return nil, fmt.Errorf("opening audit log: %w", err)
	}
	if cfg.Pseudonymize && len(cfg.PseudonymKey) < 16 {
		return nil, errors.New("opening audit log: pseudonymisation needs a key of at least 16 bytes")
	}
	if cfg.MaxSize <= 0 {
		cfg.MaxSize = DefaultMaxSize
	}
	if cfg.CheckpointInterval <= 0 {
		cfg.CheckpointInterval = DefaultCheckpointInterval
	}
	if cfg.SyncInterval <= 0 {
		cfg.SyncInterval = DefaultSyncInterval
	}
	if cfg.Buffer <= 0 {
		cfg.Buffer = DefaultBuffer
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = DefaultMaxWait
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	l := &Log{
		cfg:     cfg,
		log:     logger.With("component", "audit", "dir", cfg.Dir),
		signer:  signer,
		ch:      make(chan Record, cfg.Buffer),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
	}
	if cfg.AnchorTimeout <= 0 {
		cfg.AnchorTimeout = DefaultAnchorTimeout
	}
	if cfg.Chain != nil {
		l.cfg = cfg
		return l.openShared()
	}
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("opening audit log: %w", err)
	}
	h, seg, size, err := recoverHead(cfg.Dir, l.log.Warn)
	if err != nil {
		return nil, fmt.Errorf("opening audit log: %w", err)
	}
	if cfg.AnchorTimeout <= 0 {
		cfg.AnchorTimeout = DefaultAnchorTimeout
	}
	l.anchors = startAnchors(cfg.Anchors, cfg.AnchorTimeout, l.log, cfg.OnAnchorError)
	w := &l.w
	w.head, w.cut = h, -1
	w.lastCheckpoint = cfg.Now()
	w.retentionDue = cfg.Retention > 0
	if seg != nil {
		f, err := os.OpenFile(filepath.Join(cfg.Dir, seg.name), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			// Not fatal: the next record opens a new file, or reports
			// the failure.
			l.log.Warn("cannot append to the last audit log file; the next record starts a new one", "file", seg.name, "err", err)
			w.rotate = true
		} else {
			w.f, w.seg, w.size = f, *seg, size
		}
	}
	if h.seq > 0 {
		l.checkpoint(false)
	}
	go l.run()
	return l, nil
}

// Write queues r to be appended. It stamps a zero Time with the current
// time and pseudonymises ClientIP and Identity if configured. It never
// blocks for longer than MaxWait: when the buffer stays full that long, or
// after Close, the record is dropped and counted (see Dropped and
// Config.OnError).
func (l *Log) Write(r Record) {
	if r.Time.IsZero() {
		r.Time = l.cfg.Now()
	}
	r.Time = r.Time.UTC()
	if l.cfg.Pseudonymize {
		r.ClientIP = Pseudonym(l.cfg.PseudonymKey, r.ClientIP)
		r.Identity = Pseudonym(l.cfg.PseudonymKey, r.Identity)
		if r.Subject != "" {
			// An OIDC subject or an LDAP DN names a person as much as
			// the identity does.
			r.Subject = Pseudonym(l.cfg.PseudonymKey, r.Subject)
		}
	}
	r.UserAgent = clip(r.UserAgent, maxUserAgent)
	r.Detail = clip(r.Detail, maxDetail)
	if l.cfg.Replica != "" {
		r.Replica = l.cfg.Replica
	}

	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		l.drop(fmt.Errorf("%w: the audit log is closed", ErrDropped))
		return
	}
	select {
	case l.ch <- r:
		return
	default:
	}
	t := time.NewTimer(l.cfg.MaxWait)
	defer t.Stop()
	select {
	case l.ch <- r:
	case <-t.C:
		l.drop(fmt.Errorf("%w: the buffer of %d records stayed full for %v", ErrDropped, cap(l.ch), l.cfg.MaxWait))
	}
}

// Healthy returns nil while the log can write, and an error matching
// ErrUnwritable, saying why, from the first failed write until a write
// succeeds again. It reports the sink in both fail-open and fail-closed
// mode; a server should refuse requests based on Admit.
func (l *Log) Healthy() error {
	l.state.Lock()
	defer l.state.Unlock()
	return l.health
}

// Admit returns the error a server must refuse requests with before
// serving them: Healthy's error in fail-closed mode, nil in fail-open mode.
func (l *Log) Admit() error {
	if !l.cfg.FailClosed {
		return nil
	}
	return l.Healthy()
}

// Dropped returns how many records have been dropped since Open.
func (l *Log) Dropped() int64 {
	l.state.Lock()
	defer l.state.Unlock()
	return l.dropped
}

// Close writes the queued records, fsyncs, signs a final checkpoint and
// stops the writer. Records it cannot write (a failing sink) are dropped
// and counted rather than waited for. It returns Healthy's error at the
// end, and nil when called again.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		<-l.done
		return nil
	}
	l.closed = true
	close(l.closing)
	close(l.ch)
	l.mu.Unlock()
	<-l.done
	l.anchors.close()
	return l.Healthy()
}

// drop counts a dropped record and reports it.
func (l *Log) drop(err error) {
	l.state.Lock()
	l.dropped++
	l.unnoted++
	if l.unnoted == 1 {
		l.dropSince = l.cfg.Now().UTC()
	}
	first := !l.dropLogged
	l.dropLogged = true
	l.state.Unlock()
	if first {
		l.log.Error("audit records are being dropped", "err", err)
	}
	if l.cfg.OnError != nil {
		l.cfg.OnError(err)
	}
}

// run is the writer goroutine.
func (l *Log) run() {
	defer close(l.done)
	tick := time.NewTicker(l.cfg.SyncInterval)
	defer tick.Stop()
	gatherTimer := time.NewTimer(time.Hour)
	gatherTimer.Stop()
	w := &l.w
	for {
		in := l.ch
		if w.held != nil || w.flushFailed {
			in = nil // take nothing new until the held records are written
		}
		select {
		case r, ok := <-in:
			if !ok {
				l.finish()
				return
			}
			w.held = l.accept(r)
			switch {
			case len(w.buf) >= maxBuffered || w.held != nil:
				l.flush()
			case len(l.ch) == 0:
				l.gather(gatherTimer)
			}
		case <-tick.C:
			if w.flushFailed {
				l.flush()
			}
			if w.held != nil && !w.flushFailed {
				w.held = l.accept(*w.held)
				l.flush()
			}
			l.maintain()
		case <-l.closing:
			l.finish()
			return
		}
	}
}

// accept appends r. When that fails it returns r in fail-closed mode (to
// be retried) and drops it in fail-open mode.
func (l *Log) accept(r Record) (held *Record) {
	err := l.append(entry{Record: r})
	if err == nil {
		l.noteDrops()
		return nil
	}
	if l.cfg.FailClosed {
		return &r
	}
	l.drop(fmt.Errorf("%w: %w", ErrDropped, err))
	return nil
}

// noteDrops appends an ActionDropped record when records were dropped
// since the last one. It is also what retries a failing sink in fail-open
// mode.
func (l *Log) noteDrops() {
	l.state.Lock()
	n, since := l.unnoted, l.dropSince
	l.state.Unlock()
	if n == 0 {
		return
	}
	r := Record{
		Time:   l.cfg.Now().UTC(),
		Result: ResultAdmin,
		Action: ActionDropped,
		Detail: fmt.Sprintf("%d audit records dropped since %s", n, since.Format(time.RFC3339Nano)),
	}
	if l.append(entry{Record: r}) != nil {
		return
	}
	l.w.bufNotes++
	l.w.bufNoted += n
	l.state.Lock()
	l.unnoted -= n
	if l.unnoted == 0 {
		l.dropLogged = false
	}
	l.state.Unlock()
	l.log.Warn("audit records were dropped; the count is recorded in the log", "dropped", n)
}

// maintain runs on every tick: fsync, retry a failing sink, checkpoint and
// retention when due.
func (l *Log) maintain() {
	w := &l.w
	holding := w.held != nil || w.flushFailed
	if !holding {
		l.noteDrops() // also retries a failing sink in fail-open mode
	}
	l.sync()
	now := l.cfg.Now()
	since := now.Sub(w.lastCheckpoint)
	if w.head != w.signed && since >= l.cfg.CheckpointInterval ||
		w.head.seq > 0 && since >= IdleCheckpoints*l.cfg.CheckpointInterval {
		// An idle writer signs its unchanged head too, now and then, so
		// that Verify can tell a log still open from one cut off at a
		// checkpoint.
		l.checkpoint(false)
	}
	if l.cfg.Retention > 0 && !holding && (w.retentionDue || now.Sub(w.lastRetention) >= l.cfg.CheckpointInterval) {
		l.applyRetention(now)
	}
}

// finish drains the queue on Close: the held and the queued records are
// written once or dropped, then the final checkpoint is signed. Close
// closes l.ch right after l.closing, so the range ends.
func (l *Log) finish() {
	w := &l.w
	if w.held != nil {
		if err := l.append(entry{Record: *w.held}); err != nil {
			l.drop(fmt.Errorf("%w: %w", ErrDropped, err))
		}
		w.held = nil
	}
	for r := range l.ch {
		if err := l.append(entry{Record: r}); err != nil {
			l.drop(fmt.Errorf("%w: %w", ErrDropped, err))
		}
	}
	l.noteDrops()
	l.sync()
	if w.bufRecords > 0 {
		// The disk refused them to the end (fail-closed mode).
		l.dropBuffered(l.fail(errors.New("audit log closed with records that could not be written")))
	}
	// The final checkpoint says the log was closed cleanly here: a log
	// whose last checkpoint is not final and old was cut off (or its
	// writer crashed); see Verify.
	l.checkpoint(true)
	if w.f != nil {
		w.f.Close()
		w.f = nil
	}
}

// append chains e to the head and writes it, rotating first if due. A
// failure leaves no partial line behind (or, while cutting it back fails,
// blocks every append until it succeeds) and is reported through fail.
func (l *Log) append(e entry) error {
	w := &l.w
	if w.cut >= 0 && len(w.buf) == 0 {
		if err := w.f.Truncate(w.cut); err != nil {
			return l.fail(fmt.Errorf("cutting back a partly written record: %w", err))
		}
		w.size, w.cut = w.cut, -1
	}
	e.Seq, e.Prev = w.head.seq+1, w.head.hash
	line, hash, err := encodeLine(e)
	if err != nil {
		return err // cannot happen for these types; not a sink failure
	}
	now := l.cfg.Now()
	if w.f != nil && w.size > 0 && (w.rotate ||
		w.size+int64(len(line)) > l.cfg.MaxSize ||
		(l.cfg.MaxAge > 0 && now.Sub(w.seg.created) >= l.cfg.MaxAge)) {
		l.closeFile()
		if w.head != w.signed {
			l.checkpoint(false)
		}
		w.retentionDue = l.cfg.Retention > 0
		if e.Seq != w.head.seq+1 {
			// Writing the buffer before the rotation failed and dropped
			// its records: chain onto the head actually written.
			e.Seq, e.Prev = w.head.seq+1, w.head.hash
			if line, hash, err = encodeLine(e); err != nil {
				return err
			}
		}
	}
	if w.f == nil {
		if err := l.openFile(e.Seq, now); err != nil {
			return l.fail(err)
		}
	}
	if len(w.buf) == 0 {
		w.durable, w.durableSize = w.head, w.size
	}
	w.buf = append(w.buf, line...)
	w.bufRecords++
	w.size += int64(len(line))
	w.head = head{seq: e.Seq, hash: hash}
	w.dirty = true
	return nil
}

// maxBuffered is how many bytes of encoded records wait for one write.
const maxBuffered = 64 << 10

// gatherDelay is how long the writer, woken by a record, waits for more
// before writing: the records of requests answered meanwhile go out in the
// same write(2), and their senders do not wake the writer one by one (a
// wakeup and a system call per record were, together, most of what the
// audit log added to a cache hit). It is far below SyncInterval, which
// bounds what a crash loses, and far below DefaultMaxWait, so the buffer
// cannot fill while the writer waits.
const gatherDelay = 2 * time.Millisecond

// gather waits gatherDelay (or until Close), takes every record sent
// meanwhile and writes them all.
func (l *Log) gather(t *time.Timer) {
	t.Reset(gatherDelay)
	select {
	case <-t.C:
	case <-l.closing:
		t.Stop()
	}
	w := &l.w
	for w.held == nil && !w.flushFailed {
		select {
		case r, ok := <-l.ch:
			if !ok {
				// Closed: the run loop's next receive sees it too.
				l.flush()
				return
			}
			w.held = l.accept(r)
			if len(w.buf) >= maxBuffered {
				l.flush()
			}
			continue
		default:
		}
		break
	}
	l.flush()
}

// flush writes the buffered records. A failure leaves no partial line
// behind (or, while cutting it back fails, blocks every append until it
// succeeds) and is reported through fail; see writer.buf for what happens
// to the records.
func (l *Log) flush() error {
	w := &l.w
	if len(w.buf) == 0 {
		return nil
	}
	if w.cut >= 0 {
		if err := w.f.Truncate(w.cut); err != nil {
			return l.fail(fmt.Errorf("cutting back a partly written record: %w", err))
		}
		w.cut = -1
	}
	n, err := w.f.Write(w.buf)
	if err == nil {
		w.buf, w.bufRecords, w.flushFailed = w.buf[:0], 0, false
		w.bufNotes, w.bufNoted = 0, 0
		if w.held == nil && !w.syncFailed {
			l.recovered()
		}
		return nil
	}
	if n > 0 {
		// Cut the torn line off now, or before the next write.
		if terr := w.f.Truncate(w.durableSize); terr != nil {
			w.cut = w.durableSize
		}
	}
	err = l.fail(fmt.Errorf("writing %s: %w", w.seg.name, err))
	if l.cfg.FailClosed {
		w.flushFailed = true
		return err
	}
	l.dropBuffered(err)
	return err
}

// dropBuffered gives up the buffered records after a failed write: the
// chain goes back to the last written head, the records count as dropped
// (and the drop records among them give their counts back, to be written
// again later).
func (l *Log) dropBuffered(err error) {
	w := &l.w
	dropped, notes, noted := w.bufRecords-w.bufNotes, w.bufNotes, w.bufNoted
	w.head, w.size = w.durable, w.durableSize
	w.buf, w.bufRecords, w.bufNotes, w.bufNoted = w.buf[:0], 0, 0, 0
	if notes > 0 {
		l.state.Lock()
		l.unnoted += noted
		l.state.Unlock()
	}
	for range dropped {
		l.drop(fmt.Errorf("%w: %w", ErrDropped, err))
	}
}

// openFile creates the file whose first record is seq.
func (l *Log) openFile(seq int64, now time.Time) error {
	name := segmentName(seq, now)
	f, err := os.OpenFile(filepath.Join(l.cfg.Dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("creating audit log file: %w", err)
	}
	if err := syncDir(l.cfg.Dir); err != nil {
		f.Close()
		os.Remove(f.Name())
		return fmt.Errorf("creating audit log file: %w", err)
	}
	seg, _ := parseSegmentName(name)
	l.w.f, l.w.seg, l.w.size, l.w.rotate, l.w.dirty = f, seg, 0, false, false
	return nil
}

// closeFile fsyncs and closes the current file.
func (l *Log) closeFile() {
	w := &l.w
	l.sync()
	if err := w.f.Close(); err != nil {
		l.fail(fmt.Errorf("closing %s: %w", w.seg.name, err))
	}
	w.f = nil
}

// sync fsyncs the current file if anything was written since the last
// fsync. A failed fsync is retried every tick; when one succeeds and no
// write is failing (no held record, no drops to record), the failure
// episode ends.
func (l *Log) sync() {
	w := &l.w
	if w.f == nil || !w.dirty {
		return
	}
	if l.flush() != nil {
		return
	}
	if err := w.f.Sync(); err != nil {
		w.syncFailed = true
		l.fail(fmt.Errorf("syncing %s: %w", w.seg.name, err))
		return
	}
	w.dirty = false
	if w.syncFailed {
		w.syncFailed = false
		l.state.Lock()
		pending := l.unnoted
		l.state.Unlock()
		if w.held == nil && pending == 0 {
			l.recovered()
		}
	}
}

// checkpoint fsyncs and signs the chain head, appends the checkpoint to
// the checkpoints file, queues it for the anchors and logs it. final marks
// the checkpoint of a clean shutdown. A failure is logged and retried at
// the next interval.
func (l *Log) checkpoint(final bool) {
	w := &l.w
	now := l.cfg.Now()
	w.lastCheckpoint = now
	if w.head.seq == 0 {
		return
	}
	l.sync()
	if len(w.buf) > 0 {
		return // not written: sign it once it is
	}
	c, err := signCheckpoint(l.signer, checkpointHead{head: w.head, time: now, interval: l.cfg.CheckpointInterval, final: final})
	var line []byte
	if err == nil {
		line, err = marshalCheckpoint(c)
	}
	if err == nil {
		err = appendCheckpoint(l.cfg.Dir, line)
	}
	if err != nil {
		l.log.Error("audit checkpoint not written", "seq", w.head.seq, "err", err)
		if l.cfg.OnError != nil {
			l.cfg.OnError(fmt.Errorf("%w: %w", ErrUnwritable, err))
		}
		return
	}
	w.signed = w.head
	l.anchors.send(line)
	l.log.Info("audit checkpoint", "seq", c.Seq, "hash", c.Hash, "time", c.Time, "final", final, "signature", c.signature())
}

// fail records a sink failure: Healthy reports it, the first of an
// episode is logged, OnError hears of each. It returns the error, matching
// ErrUnwritable.
func (l *Log) fail(err error) error {
	err = fmt.Errorf("%w: %w", ErrUnwritable, err)
	l.state.Lock()
	first := l.health == nil
	l.health = err
	l.state.Unlock()
	if first {
		l.log.Error("audit log cannot be written", "fail_closed", l.cfg.FailClosed, "err", err)
	}
	if l.cfg.OnError != nil {
		l.cfg.OnError(err)
	}
	return err
}

// recovered ends a failure episode after a successful write.
func (l *Log) recovered() {
	l.state.Lock()
	was := l.health
	l.health = nil
	l.state.Unlock()
	if was != nil {
		l.log.Info("audit log writable again", "after", was)
	}
}
