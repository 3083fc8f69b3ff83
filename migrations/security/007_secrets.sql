-- Upstream credentials (issue 17): an engine's API key, the SOCKS5
-- password.  Each is sealed with XChaCha20-Poly1305 under a data key
-- derived from the master key for the row's key_id, its name and key id
-- as associated data (docs/DB_SCHEMA.md, "secrets").  flm secrets rotate
-- adds a key id and seals every row again under it.  The secrets table
-- of 001_init was never written: it is replaced.
DROP TABLE secrets;
CREATE TABLE secret_keys (
	id		INTEGER PRIMARY KEY,		-- 1, 2, …
	created_at	TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
INSERT INTO secret_keys (id) VALUES (1);
CREATE TABLE secrets (
	name		TEXT PRIMARY KEY NOT NULL,	-- engine:ID
	key_id		INTEGER NOT NULL REFERENCES secret_keys (id),
	nonce		BLOB NOT NULL,
	sealed		BLOB NOT NULL,
	created_at	TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
	updated_at	TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
