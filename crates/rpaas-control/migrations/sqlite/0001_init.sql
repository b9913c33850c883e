-- rpaas control store, version 1 (SQLite). Times are milliseconds since the Unix epoch.
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT INTO meta (key, value) VALUES ('revision', 0);
CREATE TABLE partners (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created INTEGER NOT NULL
);
CREATE TABLE instances (
    id TEXT PRIMARY KEY,
    partner TEXT NOT NULL REFERENCES partners (id),
    spec TEXT NOT NULL,
    revision INTEGER NOT NULL,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL
);
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    scope TEXT NOT NULL,
    partner TEXT,
    prefix TEXT NOT NULL UNIQUE,
    hash TEXT NOT NULL,
    created INTEGER NOT NULL,
    expires INTEGER,
    revoked INTEGER,
    last_used INTEGER
);
CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time INTEGER NOT NULL,
    actor TEXT NOT NULL,
    source_ip TEXT NOT NULL,
    action TEXT NOT NULL,
    instance TEXT,
    partner TEXT,
    before TEXT,
    after TEXT,
    revision INTEGER NOT NULL
);
CREATE INDEX audit_instance ON audit (instance, id);
CREATE TABLE decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time INTEGER NOT NULL,
    instance TEXT NOT NULL,
    node TEXT NOT NULL,
    ip TEXT NOT NULL,
    country TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    class TEXT NOT NULL,
    reason TEXT NOT NULL,
    status INTEGER NOT NULL,
    request_id TEXT NOT NULL
);
CREATE INDEX decisions_instance ON decisions (instance, time);
CREATE INDEX decisions_ip ON decisions (instance, ip, time);
CREATE TABLE traffic (
    instance TEXT NOT NULL,
    node TEXT NOT NULL,
    minute INTEGER NOT NULL,
    requests INTEGER NOT NULL,
    refusals INTEGER NOT NULL,
    PRIMARY KEY (instance, node, minute)
);
CREATE TABLE traffic_counts (
    instance TEXT NOT NULL,
    node TEXT NOT NULL,
    minute INTEGER NOT NULL,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (instance, node, minute, kind, key)
);
