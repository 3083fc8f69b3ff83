-- ACME (issue 16): the account flm-keyd holds at each ACME directory.
-- Its key is sealed as the TLS keys are (docs/DB_SCHEMA.md, "TLS
-- keys"), the row id "acme:ID" as associated data.  Certificates from
-- ACME are rows of certificates with mode 'https-acme' and the whole
-- chain (leaf first) in cert_pem.
CREATE TABLE acme_accounts (
	id		TEXT PRIMARY KEY NOT NULL,	-- 16 hex
	directory	TEXT NOT NULL UNIQUE,		-- the directory URL
	email		TEXT,
	kid		TEXT,		-- the account URL, once the CA said it
	key_nonce	BLOB NOT NULL,
	key_sealed	BLOB NOT NULL,
	created_at	TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- The directory an https-acme certificate came from: one from another
-- CA (staging, say) is never served for this one.
ALTER TABLE certificates ADD COLUMN directory TEXT;
