-- rpaas control store, version 3: dashboard users (argon2 password hashes) and their sessions
-- (only a hash of the session token is kept).
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    partner TEXT,
    hash TEXT NOT NULL,
    created BIGINT NOT NULL
);
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created BIGINT NOT NULL,
    expires BIGINT NOT NULL
);
