-- The signing key of the shared audit chain's checkpoints when audit.key_file
-- is not set: created by the first replica that needs it, used by all (every
-- checkpoint must verify against one public key). Like {data_dir}/audit.key
-- for a single node, it sits next to what it signs; audit.key_file (the same
-- file on every replica) and anchors keep it out of reach instead.
CREATE TABLE audit_signing_key (
	id      boolean PRIMARY KEY DEFAULT true CHECK (id),
	private text NOT NULL,
	public  text NOT NULL
);
