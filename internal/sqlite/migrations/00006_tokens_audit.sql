-- +goose Up
-- Named API tokens with roles (issue 9), kept as their hashes
-- (kycd.TokenHash), never in the clear. A token is deleted when it is
-- revoked; the audit trail keeps what it did.
CREATE TABLE tokens (
    name         TEXT PRIMARY KEY,
    role         TEXT NOT NULL,        -- admin | operator | viewer
    hash         TEXT NOT NULL UNIQUE, -- sha256:<hex>
    created_at   TEXT NOT NULL,
    last_used_at TEXT                  -- written at most once a minute
);
-- The one admin token of earlier versions becomes the admin token named
-- admin. A token an old kycd kept in plain text is hashed by the next
-- kycd serve.
INSERT INTO tokens (name, role, hash, created_at)
SELECT 'admin', 'admin', value, strftime('%Y-%m-%dT%H:%M:%S', 'now') || '.000000000Z'
FROM settings WHERE key = 'admin_token';
DELETE FROM settings WHERE key = 'admin_token';

-- The audit trail: every change and every read of personal data, refused
-- attempts too. Append-only: no API deletes a row; --audit-retention
-- drops the oldest. AUTOINCREMENT: an id is never given out twice, even
-- after the newest rows were purged.
CREATE TABLE audit (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      TEXT NOT NULL,
    actor   TEXT NOT NULL, -- a token's name, or cli:USER
    action  TEXT NOT NULL,
    target  TEXT NOT NULL,
    remote  TEXT NOT NULL, -- '' for the CLI
    outcome TEXT NOT NULL, -- ok | refused | failed
    detail  TEXT NOT NULL
);
CREATE INDEX audit_at ON audit (at);

-- +goose Down
INSERT OR IGNORE INTO settings (key, value) SELECT 'admin_token', hash FROM tokens WHERE name = 'admin' AND role = 'admin';
DROP TABLE audit;
DROP TABLE tokens;
