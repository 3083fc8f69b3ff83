-- Legacy API keys (issue 19, flm migrate legacy): keys another gateway
-- issued, without the flm_<id>_ prefix.  legacy says where a row came
-- from: 'plain' (a plain key, stored as Argon2id), 'bcrypt' (the old
-- bcrypt hash kept in hash until the key's first good use) or
-- 'bcrypt-rehashed' (that use happened: hash is Argon2id now); NULL
-- for keys flm-keyd made.  digest is the hex BLAKE2b of the whole
-- token keyed with a subkey of the master key: a presented token is
-- found by one indexed lookup, not a scan.  A 'bcrypt' row has none
-- until its first good use.  The row MAC covers both when set
-- (docs/DB_SCHEMA.md, "Row MACs"), so older rows keep their MACs.
ALTER TABLE api_keys ADD COLUMN legacy TEXT
	CHECK (legacy IN ('plain', 'bcrypt', 'bcrypt-rehashed'));
ALTER TABLE api_keys ADD COLUMN digest TEXT;
CREATE UNIQUE INDEX api_keys_digest ON api_keys (digest);
CREATE INDEX api_keys_bcrypt ON api_keys (id) WHERE legacy = 'bcrypt';
