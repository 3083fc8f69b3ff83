-- TLS (issue 13): every key and certificate flm-keyd makes.  The old
-- certificates table (file paths, never used) is replaced.  A key is
-- stored sealed: XChaCha20-Poly1305 under a subkey of the master key,
-- with the row id as associated data (docs/DB_SCHEMA.md, "TLS keys").
-- Client certificates keep no key (it leaves with the client).
DROP TABLE certificates;
CREATE TABLE certificates (
	id		TEXT PRIMARY KEY NOT NULL,	-- 16 hex
	purpose		TEXT NOT NULL CHECK (purpose IN ('ca', 'server',
			    'client')),
	handle		TEXT,		-- server: flmd's ADDR:PORT
	mode		TEXT,		-- server: dev-selfsigned | packaged-ca
	label		TEXT,		-- client: its CN
	serial		TEXT NOT NULL UNIQUE,	-- 16 hex
	subject		TEXT NOT NULL,
	sans		TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(sans)),
	names		TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(names)),
	addrs		TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(addrs)),
	not_before	TEXT NOT NULL,
	not_after	TEXT NOT NULL,
	sha256		TEXT NOT NULL,
	cert_pem	TEXT NOT NULL,
	key_nonce	BLOB,
	key_sealed	BLOB,
	created_at	TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
	released_at	TEXT,
	replaced_at	TEXT,
	revoked_at	TEXT,
	mac		BLOB,	-- keyd's row MAC (docs/DB_SCHEMA.md)
	CHECK ((purpose = 'client') = (key_sealed IS NULL))
);
CREATE INDEX certificates_handle ON certificates (handle);

-- The client certificate a proxied request came with (audit v3).
ALTER TABLE audit_logs ADD COLUMN cert_serial TEXT;
ALTER TABLE audit_logs ADD COLUMN cert_label TEXT;
