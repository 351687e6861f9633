-- +goose Up
-- The expiry of the invitation that opened a session (NULL for others),
-- so the watchdog finds invitations past it. Sessions projected before
-- this migration have none until `kycd rebuild` derives it from the log.
ALTER TABLE sessions ADD COLUMN expires_at TEXT;

-- +goose Down
ALTER TABLE sessions DROP COLUMN expires_at;
