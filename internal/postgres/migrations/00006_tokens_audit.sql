-- +goose Up
-- Named API tokens with roles (issue 9), kept as their hashes
-- (kycd.TokenHash), never in the clear. A token is deleted when it is
-- revoked; the audit trail keeps what it did.
CREATE TABLE tokens (
    name         text COLLATE "C" PRIMARY KEY,
    role         text NOT NULL,        -- admin | operator | viewer
    hash         text NOT NULL UNIQUE, -- sha256:<hex>
    created_at   timestamptz NOT NULL,
    last_used_at timestamptz           -- written at most once a minute
);
-- The one admin token of earlier versions becomes the admin token named
-- admin. A token an old kycd kept in plain text is hashed by the next
-- kycd serve.
INSERT INTO tokens (name, role, hash, created_at)
SELECT 'admin', 'admin', value, now() FROM settings WHERE key = 'admin_token';
DELETE FROM settings WHERE key = 'admin_token';

-- The audit trail: every change and every read of personal data, refused
-- attempts too. Append-only: no API deletes a row; --audit-retention
-- drops the oldest.
CREATE TABLE audit (
    id      bigserial PRIMARY KEY,
    at      timestamptz NOT NULL,
    actor   text NOT NULL, -- a token's name, or cli:USER
    action  text NOT NULL,
    target  text COLLATE "C" NOT NULL,
    remote  text NOT NULL, -- '' for the CLI
    outcome text NOT NULL, -- ok | refused | failed
    detail  text NOT NULL
);
CREATE INDEX audit_at ON audit (at);

-- +goose Down
INSERT INTO settings (key, value) SELECT 'admin_token', hash FROM tokens WHERE name = 'admin' AND role = 'admin'
ON CONFLICT (key) DO NOTHING;
DROP TABLE audit;
DROP TABLE tokens;
