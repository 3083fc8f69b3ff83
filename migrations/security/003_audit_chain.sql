-- The audit trail's keyed hash chain: one head row, MAC'd by flm-keyd,
-- records the newest row and how far archiving has gone.
CREATE TABLE audit_head (
	id		INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
	last_id		INTEGER NOT NULL,
	last_chain	BLOB NOT NULL,
	archived_through INTEGER NOT NULL,
	archived_chain	BLOB NOT NULL,
	mac		BLOB NOT NULL,
	updated_at	TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- Each archive file, as keyd made it: verify walks them in order, from
-- row 1 to the head's archived_through.
CREATE TABLE audit_archives (
	file		TEXT PRIMARY KEY NOT NULL,
	first_id	INTEGER NOT NULL,
	last_id		INTEGER NOT NULL,
	last_chain	BLOB NOT NULL,
	created_at	TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- Every row is written once, in a batch; an index is paid for by each
-- request, and tail, usage and archive read few or read all.
DROP INDEX audit_logs_created;
DROP INDEX audit_logs_key;

-- Rows leave only through the archive path, which first moves the
-- head's archived_through past them.
DROP TRIGGER audit_logs_no_delete;
CREATE TRIGGER audit_logs_no_delete BEFORE DELETE ON audit_logs
WHEN old.id > coalesce((SELECT archived_through FROM audit_head), 0)
BEGIN
	SELECT RAISE(ABORT, 'audit_logs is append-only');
END;
