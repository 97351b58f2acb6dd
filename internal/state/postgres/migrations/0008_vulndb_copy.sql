-- The vulnerability database copy one replica synced (package vulndb), for
-- the others to load: one row, a gzipped archive, and a version that grows
-- with every save.
CREATE TABLE vulndb_copy (
	id       integer PRIMARY KEY CHECK (id = 1),
	version  bigint NOT NULL,
	data     bytea NOT NULL,
	saved_at timestamptz NOT NULL DEFAULT now()
);
