-- Licence results (package policy), one per module version: a zip is
-- scanned once by one replica, never again by the others.
CREATE TABLE licenses (
	module  text NOT NULL,
	version text NOT NULL,
	result  jsonb NOT NULL,
	PRIMARY KEY (module, version)
);
