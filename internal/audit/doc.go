// Package audit owns modgate's tamper-evident audit log: the Record of who
// was served, refused or failed what (and of every admin action), a
// hash-chained append-only sink on local disk (or, for replicas, in a
// shared database: see "Shared chain"), signed checkpoints of the
// chain head, and the Verify and Query readers behind `modgate audit`.
//
// It is separate from the process log (package reqlog, log/slog): the
// process log is for operators debugging, may be sampled, filtered or lost;
// the audit log is evidence, written once per request and checkable.
//
// What it deliberately does not do: decide what a request's result was
// (the server fills the Record), authenticate anyone (package auth), or keep
// the signing key safe (the operator's file permissions; LoadOrCreateKey
// writes it with mode 0600).
//
// # Data flow
//
//	handler ends → server builds one Record → (*Log).Write
//	  → pseudonymise ClientIP/Identity (if configured), stamp Time
//	  → bounded channel (Config.Buffer records)
//	  → one writer goroutine: chain (seq, prev, hash) → encode into a
//	    buffer → append to the current file (O_APPEND, one write(2) per
//	    burst: 2 ms after a record woke the writer, with every record sent
//	    meanwhile, or when 64 KiB are waiting) →
//	    fsync every SyncInterval → signed checkpoint every CheckpointInterval
//
// One write per burst rather than per record matters on the hot path: the
// system call, and waking the writer for each record, were most of a
// record's cost (measured with the server's BenchmarkCacheHit profile). The
// 2 ms are far below SyncInterval, which bounds what a crash loses anyway. A write that fails gives up the whole burst
// in fail-open mode (the records count as dropped and the chain continues
// from the last record written) and keeps it in fail-closed mode, retried
// every SyncInterval, like a held record.
//
// Write never blocks the request for long: when the buffer is full it waits
// at most Config.MaxWait, then drops the record, counts it (Dropped), calls
// OnError with an error matching ErrDropped and logs the first drop of an
// episode. Dropped records are not silent in the chain either: as soon as
// the writer can write again it appends an "audit.dropped" record saying how
// many records were lost and since when.
//
// # Files
//
// The log is a directory of files named
//
//	audit-<seq, 20 digits>-<UTC creation time, 20060102T150405.000Z>.jsonl
//
// where seq is the number of the file's first record, so names sort in chain
// order. Each line is one JSON object (a Record's fields plus the chain
// fields) ending in "\n":
//
//	{"seq":7,"prev":"<64 hex>","time":"...","result":"hit",...,"hash":"<64 hex>"}
//
// seq is the global record number (1, 2, 3, ... across all files); prev is
// the hash of record seq-1 (for seq 1: Genesis, 64 zeros); hash is the
// SHA-256, in lower-case hex, of the exact line bytes without the hash:
// the line with its trailing `,"hash":"..."` removed, i.e. the JSON object
// as written up to and including the field before hash, closed by "}".
// Verify recomputes it over the bytes on disk, so no canonical re-encoding
// of JSON is involved and any changed byte is an edited record.
//
// A file is rotated when the next line would make it larger than MaxSize or
// when it is older than MaxAge; the next record opens the next file, and its
// prev is the last hash of the previous file, so the chain runs across files.
// Files are created lazily, by the record that needs them, so no file is
// ever empty for long.
//
// # Checkpoints
//
// Every CheckpointInterval (when the head moved), every IdleCheckpoints
// intervals when it did not, at Open, at each rotation, after a retention
// deletion and on Close, the writer fsyncs the current file and signs the
// chain head {seq, hash, time}, its checkpoint interval and, on Close, the
// word "final", with the server's ed25519 key as a
// golang.org/x/mod/sumdb/note signed note (key name KeyName):
//
//	modgate audit checkpoint
//	seq 1234
//	hash <64 hex>
//	time 2026-11-21T15:02:24.123Z
//	interval 1m0s
//	final
//
//	— modgate-audit <base64 signature>
//
// (Checkpoints of older versions lack the last two lines.) The note is
// appended, as one JSON line {"seq","hash","time","interval_ns","final",
// "note"}, to {dir}/checkpoints (a separate file, never rotated or
// deleted), and logged through Config.Logger as "audit checkpoint" with
// seq, hash and signature, so a second copy lives in the operator's log
// pipeline.
//
// # Anchors
//
// The key usually lives next to the log, so whoever can rewrite the data
// directory can also drop a record, rebuild the chain and re-sign it (or
// swap the key). Config.Anchors copy every checkpoint line out of their
// reach: FileAnchor appends it to a file on another mount, SyslogAnchor
// sends it to a syslog daemon. Each anchor has its own goroutine and a
// bounded queue, so a failing or hanging anchor never holds up the writer
// (let alone a request): a copy it does not get is logged (once per
// failure episode) and reported to OnAnchorError. VerifyWith with
// VerifyOptions.Checkpoints checks the log against such a copy, with a
// public key from outside, and names the first record that disagrees.
//
// # Retention
//
// With Retention set, a closed file whose records are all older than
// Retention (the next file was created before now-Retention) is deleted,
// oldest first; the current file never is. Before deleting, the writer
// appends an "audit.retention" record naming the files and the first seq,
// last seq and last hash they held, fsyncs and writes a checkpoint covering
// that record. Verify then accepts a log that starts at seq N > 1 only when
// the chain holds such a record with last seq N-1 and last hash equal to the
// first remaining record's prev, at or before a signed checkpoint. A crash
// between the record and the deletion leaves files the record says are
// gone; nothing breaks, and the next pass deletes them with a new record.
//
// # Failure modes
//
//   - Sink cannot write (disk full, directory removed or unwritable): the
//     first failure of an episode is logged at Error, every failure calls
//     OnError, and Healthy returns an error matching ErrUnwritable until a
//     write succeeds. A partly written line is truncated away before
//     anything else is written (a file never holds half a line); while that
//     truncation fails nothing is appended.
//   - Fail-open (Config.FailClosed false): the failing record is dropped
//     and counted; every new record, and the drop notice every
//     SyncInterval, retries the disk.
//   - Fail-closed: the writer keeps the failing record and retries it every
//     SyncInterval, so nothing accepted is lost; meanwhile the buffer fills
//     and Write drops after MaxWait. Admit returns Healthy's error, and the
//     server answers 503 instead of serving until the record is written.
//   - A failed fsync is retried every SyncInterval and also makes Healthy
//     fail until it succeeds. A checkpoint that cannot be written is logged
//     at Error, reported to OnError and retried at the next interval; it
//     does not make Healthy fail while records are still being written.
//   - Crash: records still in the buffer, and records written but not yet
//     fsynced (at most SyncInterval's worth), are lost. Open finds the chain
//     head in the last file, cutting off a final line without its "\n" (a
//     write torn by the crash). Checkpoints are signed only after fsync, so
//     a crash never loses a checkpointed record.
//
// # Shared chain (replicas)
//
// Several modgate processes behind a load balancer keep one audit log: a
// Config.Chain, the backend that stores one hash chain for all of them
// (package internal/state/postgres implements it in PostgreSQL; the
// in-memory audittest.MemChain serves tests). The file log above stays the
// default when Chain is nil. The split of the work:
//
//   - this package does everything that defines the log's bytes: it
//     chains (seq, prev, hash), encodes the lines exactly as a file would
//     hold them, signs checkpoints and verifies;
//   - the Chain only stores and serialises: Append locks the chain head
//     (PostgreSQL: SELECT ... FOR UPDATE on the one audit_head row), hands
//     it to the Log's link function, and stores the linked rows (COPY)
//     and the new head in the same transaction, all or nothing. Rows are
//     {seq, replica, hash, line}; line is the record's file line, so
//     Verify recomputes every hash over the stored bytes.
//
// Every record names its writer in Record.Replica (Config.Replica:
// server.replica_name, else hostname:pid), inside the hashed line. The
// data flow of a Log on a Chain:
//
//	(*Log).Write → bounded channel (Config.Buffer)
//	  → collector goroutine: takes records while a transaction is in
//	    flight, at most maxPending → one batch
//	  → committer goroutine: one transaction per batch (chunks of
//	    maxBatch), or the spool; every SyncInterval: drain the spool,
//	    record drops, checkpoint when due
//
// so batches grow with the load: a busy replica appends thousands of
// records per transaction, and a request never waits for a database round
// trip (only, as with files, for a full queue, at most MaxWait).
//
// Checkpoints are signed as in the file log, by whichever replica's
// interval is due (each replica signs the head when it appended since its
// last checkpoint, and every IdleCheckpoints intervals anyway), inside a
// transaction that holds the head's lock, so the stored checkpoints are in
// chain order; Close signs a final one. All replicas sign with one key,
// since Verify checks every checkpoint against one public key: the server
// keeps it in the database (created by the first replica) unless
// audit.key_file names a file, the same on every replica. Anchors get every checkpoint
// line a replica signs, as today. Retention, MaxSize and MaxAge do not
// apply to a shared chain (the database's own tools archive it).
//
// The spool. When an append fails (the database is unreachable), the
// batch is written to the replica's spool, {Dir}/spool (Config.SpoolDir):
// files spool-<time>-<random>.jsonl of unchained records, one JSON Record
// per line, fsynced before they count. While the spool holds anything,
// new records go there too, so the replica's order is kept. Every
// SyncInterval (backing off to maxDrainBackoff while it keeps failing),
// and a little after every new batch, the committer appends spooled
// records, oldest first, in bounded steps (files of at most 4 MiB,
// drainPerTick transactions a tick) so new batches keep being taken,
// each transaction also storing a spool mark (file, lines done) — so a
// crash between the append and the file's removal never appends a record
// twice — and removes the files it finished. An append that failed after
// linking (the connection may have broken after the commit) is remembered
// with its last row's seq and hash; before its spooled copy is appended,
// the chain is asked whether that row is there (Chain.Has), and if so the
// copy is skipped. (That memory does not survive a restart in the middle
// of an outage: the one batch may then be appended twice, never lost.)
// Spooled records survive a
// restart: Open drains what an earlier run left. They are chained when
// appended, so their seq is later than records other replicas appended
// meanwhile, and their Time is when the request ended. The spool is
// bounded (Config.SpoolMaxBytes, audit.spool_max_mb): when full, records
// are dropped with an error matching ErrSpoolFull and ErrDropped, counted,
// and an "audit.dropped" record is written when the chain is back. While
// appends fail, Healthy returns an error matching ErrUnwritable, so with
// FailClosed the server answers 503 until the database is back (the few
// records accepted meanwhile are spooled, not lost).
//
// VerifyChain and QueryChain read a Chain the way VerifyWith and Query
// read files. VerifyChain also checks each row's seq, hash and replica
// columns against its line, and names a problem by the row's replica and
// seq ("replica web-2: seq 1234: edited record: ..."): an UPDATE of any
// field is an edited record, a DELETE a gap in seq, an UPDATE that
// recomputed the hash a broken link or a checkpoint mismatch.
//
// # What Verify can and cannot detect
//
// Verify (the `modgate audit verify` command) recomputes every hash and
// checks seq continuity, prev links within and across files, file names,
// every checkpoint's signature, and that every checkpoint's {seq, hash} is
// in the chain. It names the file, line and seq of each problem:
//
//   - an edited record (its hash no longer matches its bytes);
//   - an edited record whose hash was recomputed (the next record's prev no
//     longer matches, or, if the whole rest of the chain was recomputed, a
//     checkpoint no longer matches);
//   - a deleted record or deleted file (a gap in seq);
//   - reordered records (seq going backwards);
//   - a truncated tail, against the last checkpoint;
//   - a tail cut off together with the checkpoints after it (no key
//     needed): records signed by no checkpoint although written more than
//     the checkpoint interval after the last one, or a last checkpoint
//     older than the interval (IdleCheckpoints intervals if no record
//     follows it) that is not final, judged at VerifyOptions.Now. A live
//     log passes: its unsigned tail is younger than the interval. The
//     grace is a tenth of the interval, at least 5 seconds. A writer that
//     crashed and was never restarted reads the same way;
//   - with an outside copy of the checkpoints, a consistent rewrite by
//     someone holding the key, and a cut below an outside checkpoint;
//   - a forged or altered checkpoint (bad signature);
//   - deleted leading files without a retention record.
//
// It cannot detect changes to records after the last checkpoint by someone
// who recomputes their hashes (sign more often to shrink that window), nor,
// without an outside copy, the replacement of the whole directory
// including the checkpoints file by someone able to rewrite everything, or
// a cut back to an earlier clean shutdown: configure an anchor for that. It proves integrity, not
// truth: a compromised server can write false records.
package audit
