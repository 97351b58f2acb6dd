-- Leases on fills: while a replica fetches a module file from upstream it
-- holds the lease on the file's storage key, so that the other replicas wait
-- for the stored file instead of fetching it too. A lease whose holder
-- crashed expires at expires_at and may then be taken over.
CREATE TABLE fill_leases (
	key        text PRIMARY KEY,
	holder     text NOT NULL,
	expires_at timestamptz NOT NULL
);
