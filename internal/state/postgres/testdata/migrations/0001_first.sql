-- Not idempotent on purpose: applying it twice fails.
CREATE TABLE first (n integer);
INSERT INTO first VALUES (1);
