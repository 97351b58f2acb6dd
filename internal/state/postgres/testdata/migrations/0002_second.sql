CREATE TABLE second (n integer);
SELECT pg_sleep(0.05);
INSERT INTO first VALUES (2);
