-- Access tokens (package auth): the hash of each secret, never the secret.
-- scopes are the scope strings ("read:corp.example.com/*").
CREATE TABLE tokens (
	id          text PRIMARY KEY,
	name        text NOT NULL UNIQUE,
	scopes      text[] NOT NULL,
	secret_hash text NOT NULL,
	created_at  timestamptz NOT NULL,
	expires_at  timestamptz
);
