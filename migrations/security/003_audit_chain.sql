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

-- A batch re-sent after a keyd restart is not written twice.
CREATE UNIQUE INDEX audit_logs_request ON audit_logs (request_id);

-- Rows leave only through the archive path, which first moves the
-- head's archived_through past them.
DROP TRIGGER audit_logs_no_delete;
CREATE TRIGGER audit_logs_no_delete BEFORE DELETE ON audit_logs
WHEN old.id > coalesce((SELECT archived_through FROM audit_head), 0)
BEGIN
	SELECT RAISE(ABORT, 'audit_logs is append-only');
END;
