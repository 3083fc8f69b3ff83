-- Rotation: the previous secret's hash stays valid until prev_expires_at.
ALTER TABLE api_keys ADD COLUMN prev_hash TEXT;
ALTER TABLE api_keys ADD COLUMN prev_expires_at TEXT;
