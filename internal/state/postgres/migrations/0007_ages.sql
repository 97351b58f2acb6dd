-- First-seen facts of module versions for the cooldown rule (package
-- policy). A module is watched from its first list on; a version that
-- appears in a later list gets that time as first_seen. Every time is
-- written once: the first replica to learn it wins.
CREATE TABLE age_modules (
	module     text PRIMARY KEY,
	watched_at timestamptz NOT NULL
);
CREATE TABLE age_versions (
	module        text NOT NULL,
	version       text NOT NULL,
	listed        boolean NOT NULL DEFAULT false,
	first_seen    timestamptz,
	first_request timestamptz,
	info_time     timestamptz,
	PRIMARY KEY (module, version)
);
