-- Scoped keys (issue 18): what a key may use, as JSON checked by keyd
-- (lib/keyscope.c); NULL for a key with no limits of its own.  The
-- row's MAC covers it when it is set (docs/DB_SCHEMA.md, "Row MACs"),
-- so rows from before keep their MACs and a scope cannot be added,
-- changed or dropped without the master key.
ALTER TABLE api_keys ADD COLUMN scope TEXT;
-- What a scoped key's request was judged (audit v4): allowed, or
-- denied and by what; NULL for keys without a scope.  In the chain's
-- hash when set, so older rows keep theirs.
ALTER TABLE audit_logs ADD COLUMN scope TEXT;
