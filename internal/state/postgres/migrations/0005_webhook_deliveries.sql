-- Webhook deliveries accepted recently (package webhook), by key (a digest
-- of the body, the provider's delivery ID), so that a replayed delivery is
-- ignored whichever replica it reaches.
CREATE TABLE webhook_deliveries (
	key     text PRIMARY KEY,
	seen_at timestamptz NOT NULL
);
CREATE INDEX webhook_deliveries_seen_at ON webhook_deliveries (seen_at);
