-- rpaas control store, version 4: ACME state shared by a fleet's nodes. Values are the JSON
-- forms of rpaas-acme's types; certificate keys are secrets (the store is the operator's).
CREATE TABLE acme_accounts (
    directory TEXT PRIMARY KEY,
    credentials TEXT NOT NULL
);
CREATE TABLE acme_certs (
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (name, kind)
);
CREATE TABLE acme_issue (
    name TEXT PRIMARY KEY,
    data TEXT NOT NULL
);
-- Challenge responses any node answers while the CA validates (tls-alpn-01 by name, http-01
-- by token); rows past `expires` (seconds) are ignored and removed.
CREATE TABLE acme_challenges (
    slot TEXT NOT NULL,
    key TEXT NOT NULL,
    data TEXT NOT NULL,
    expires BIGINT NOT NULL,
    PRIMARY KEY (slot, key)
);
-- One issuer per certificate name: a lease that frees itself at `expires` (ms) if its
-- holder dies.
CREATE TABLE acme_locks (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires BIGINT NOT NULL
);
