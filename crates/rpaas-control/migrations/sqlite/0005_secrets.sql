-- rpaas control store, version 5: secrets every node of a fleet shares, by name (hex). The
-- first node that asks creates one; `tls_tickets` derives the TLS session ticket keys, so a
-- ticket one node issued resumes on the others.
CREATE TABLE node_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created BIGINT NOT NULL
);
