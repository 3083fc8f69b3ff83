-- Master-key rotation (issue 19): the audit chain's rows first_id..
-- last_id were linked under the audit key of an earlier master key,
-- kept here sealed (XChaCha20-Poly1305) under the current master key's
-- wrap key, the row range as associated data (docs/DB_SCHEMA.md,
-- "audit_keys").  Rows after the last segment are the current key's.
-- keyd_state's master_key_id names the master key the sealed rows are
-- under (a keyed hash of it).
CREATE TABLE audit_keys (
	id		INTEGER PRIMARY KEY,
	first_id	INTEGER NOT NULL,
	last_id		INTEGER NOT NULL,
	nonce		BLOB NOT NULL,
	sealed		BLOB NOT NULL,
	created_at	TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
	CHECK (last_id >= first_id)
);
