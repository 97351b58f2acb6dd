-- The latest verified tree head of each checksum database (package sumdb),
-- shared by the replicas. tree_size is the head's size, so that the swap
-- can refuse in SQL a head that would move the tree backwards.
CREATE TABLE sumdb_heads (
	name      text PRIMARY KEY,
	head      bytea NOT NULL,
	tree_size bigint NOT NULL CHECK (tree_size >= 0)
);
