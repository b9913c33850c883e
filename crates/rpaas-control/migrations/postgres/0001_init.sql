-- rpaas control store, version 1 (PostgreSQL). Times are milliseconds since the Unix epoch.
CREATE TABLE meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL);
INSERT INTO meta (key, value) VALUES ('revision', 0);
CREATE TABLE partners (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created BIGINT NOT NULL
);
CREATE TABLE instances (
    id TEXT PRIMARY KEY,
    partner TEXT NOT NULL REFERENCES partners (id),
    spec TEXT NOT NULL,
    revision BIGINT NOT NULL,
    created BIGINT NOT NULL,
    updated BIGINT NOT NULL
);
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    scope TEXT NOT NULL,
    partner TEXT,
    prefix TEXT NOT NULL UNIQUE,
    hash TEXT NOT NULL,
    created BIGINT NOT NULL,
    expires BIGINT,
    revoked BIGINT,
    last_used BIGINT
);
CREATE TABLE audit (
    id BIGSERIAL PRIMARY KEY,
    time BIGINT NOT NULL,
    actor TEXT NOT NULL,
    source_ip TEXT NOT NULL,
    action TEXT NOT NULL,
    instance TEXT,
    partner TEXT,
    before TEXT,
    after TEXT,
    revision BIGINT NOT NULL
);
CREATE INDEX audit_instance ON audit (instance, id);
CREATE TABLE decisions (
    id BIGSERIAL PRIMARY KEY,
    time BIGINT NOT NULL,
    instance TEXT NOT NULL,
    node TEXT NOT NULL,
    ip TEXT NOT NULL,
    country TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    class TEXT NOT NULL,
    reason TEXT NOT NULL,
    status BIGINT NOT NULL,
    request_id TEXT NOT NULL
);
CREATE INDEX decisions_instance ON decisions (instance, time);
CREATE INDEX decisions_ip ON decisions (instance, ip, time);
CREATE TABLE traffic (
    instance TEXT NOT NULL,
    node TEXT NOT NULL,
    minute BIGINT NOT NULL,
    requests BIGINT NOT NULL,
    refusals BIGINT NOT NULL,
    PRIMARY KEY (instance, node, minute)
);
CREATE TABLE traffic_counts (
    instance TEXT NOT NULL,
    node TEXT NOT NULL,
    minute BIGINT NOT NULL,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (instance, node, minute, kind, key)
);
