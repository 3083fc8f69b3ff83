-- Rows that decide who gets in carry a MAC by flm-keyd, under a key
-- derived from the master key (docs/DB_SCHEMA.md, "Row MACs"): a row
-- inserted or changed without it is refused.  Rows from before this
-- migration are sealed by keyd on its next start, once.
ALTER TABLE api_keys ADD COLUMN mac BLOB;
ALTER TABLE security_policies ADD COLUMN mac BLOB;

-- keyd's own notes about this database: rows_sealed_at, when the rows
-- above were first sealed.
CREATE TABLE keyd_state (
	name		TEXT PRIMARY KEY NOT NULL,
	value		TEXT NOT NULL
);
