-- config.db, owned by flmd: settings, engine detection cache, proxy profiles.
CREATE TABLE settings (
	key		TEXT PRIMARY KEY NOT NULL,
	value		TEXT NOT NULL,
	updated_at	TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE engines_cache (
	engine_id	TEXT PRIMARY KEY NOT NULL,
	state_json	TEXT NOT NULL CHECK (json_valid(state_json)),
	cached_at	TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE proxy_profiles (
	id		TEXT PRIMARY KEY NOT NULL,
	config_json	TEXT NOT NULL CHECK (json_valid(config_json)),
	created_at	TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
