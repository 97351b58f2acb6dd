-- The audit log's shared hash chain (package audit, audit.Chain): one row per
-- record, in one order for every replica. line holds the record exactly as a
-- log file would (the JSON line without "\n"), so audit verify recomputes each
-- hash over the stored bytes; seq, hash and replica repeat fields of the line
-- for lookups, and verify checks that they agree with it.
CREATE TABLE audit_records (
	seq     bigint PRIMARY KEY,
	replica text NOT NULL,
	hash    text NOT NULL,
	line    text NOT NULL
);

-- The chain head: one row, locked (SELECT ... FOR UPDATE) by every append and
-- checkpoint, so that appends from all replicas are serialised and each
-- batch links onto the record before it.
CREATE TABLE audit_head (
	id   boolean PRIMARY KEY DEFAULT true CHECK (id),
	seq  bigint NOT NULL,
	hash text NOT NULL
);
INSERT INTO audit_head (seq, hash) VALUES (0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Signed checkpoints of the chain head, in the order they were signed (under
-- the head's lock, so in chain order). line is the checkpoints-file line.
CREATE TABLE audit_checkpoints (
	id   bigserial PRIMARY KEY,
	seq  bigint NOT NULL,
	line text NOT NULL
);

-- How much of each replica's local spool file (records written while the
-- database was unreachable) is already in the chain, updated in the
-- transaction that appends them: a crash before the file is removed never
-- appends its records twice.
CREATE TABLE audit_spool_marks (
	file  text PRIMARY KEY,
	lines bigint NOT NULL
);
