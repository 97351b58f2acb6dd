-- The private-module ledger (package ledger): the first h1: hash seen of
-- every private .mod and .zip. key is "path version" or
-- "path version/go.mod", as in go.sum. The primary key makes the first
-- replica to record a file win; the others compare against its hash.
CREATE TABLE ledger (
	key         text PRIMARY KEY,
	hash        text NOT NULL,
	recorded_at timestamptz NOT NULL
);
