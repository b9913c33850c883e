-- rpaas control store, version 2 (SQLite): the fleet's nodes and the bans they share.
CREATE TABLE nodes (
    id TEXT PRIMARY KEY,
    version TEXT NOT NULL,
    revision BIGINT NOT NULL,
    started BIGINT NOT NULL,
    heartbeat BIGINT NOT NULL
);
CREATE TABLE bans (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ip TEXT NOT NULL,
    until BIGINT NOT NULL,
    node TEXT NOT NULL,
    time BIGINT NOT NULL
);
CREATE INDEX bans_until ON bans (until);
