-- security.db, owned by flm-keyd alone (mode 0600).
CREATE TABLE api_keys (
	id		TEXT PRIMARY KEY NOT NULL,
	label		TEXT NOT NULL UNIQUE,
	hash		TEXT NOT NULL UNIQUE,	-- Argon2id encoded hash only
	created_at	TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
	revoked_at	TEXT,
	last_used_at	TEXT,
	expires_at	TEXT
);

CREATE TABLE security_policies (
	id		TEXT PRIMARY KEY NOT NULL CHECK (id = 'default'),
	policy_json	TEXT NOT NULL CHECK (json_valid(policy_json)),
	updated_at	TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
INSERT INTO security_policies (id, policy_json) VALUES ('default', '{}');

-- Append-only: the chain column links each row to its predecessor.
CREATE TABLE audit_logs (
	id		INTEGER PRIMARY KEY AUTOINCREMENT,
	request_id	TEXT NOT NULL,
	api_key_id	TEXT,
	client_addr	TEXT,
	endpoint	TEXT NOT NULL,
	model		TEXT,
	status		INTEGER NOT NULL,
	latency_ms	INTEGER NOT NULL,
	prompt_tokens	INTEGER,
	completion_tokens INTEGER,
	created_at	TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
	chain		BLOB
);
CREATE INDEX audit_logs_created ON audit_logs (created_at);
CREATE INDEX audit_logs_key ON audit_logs (api_key_id, created_at);
CREATE TRIGGER audit_logs_no_update BEFORE UPDATE ON audit_logs
BEGIN
	SELECT RAISE(ABORT, 'audit_logs is append-only');
END;
CREATE TRIGGER audit_logs_no_delete BEFORE DELETE ON audit_logs
BEGIN
	SELECT RAISE(ABORT, 'audit_logs is append-only');
END;

CREATE TABLE rate_limit_states (
	subject		TEXT PRIMARY KEY NOT NULL,	-- "key:<id>" or "ip:<addr>"
	tokens		REAL NOT NULL,
	updated_at	TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE certificates (
	id		TEXT PRIMARY KEY NOT NULL,
	mode		TEXT NOT NULL,
	cert_path	TEXT NOT NULL,
	key_path	TEXT NOT NULL,
	not_after	TEXT NOT NULL,
	renewed_at	TEXT
);

-- Upstream engine credentials, XChaCha20-Poly1305 under a master key id.
CREATE TABLE secrets (
	name		TEXT PRIMARY KEY NOT NULL,
	key_id		TEXT NOT NULL,
	nonce		BLOB NOT NULL,
	ciphertext	BLOB NOT NULL,
	created_at	TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
	rotated_at	TEXT
);
