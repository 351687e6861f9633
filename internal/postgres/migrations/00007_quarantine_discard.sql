-- +goose Up
-- An operator may give a quarantined body up (the dashboard's Discard,
-- POST /api/v1/quarantine/{id}/discard): the row stays, with who and
-- when, and leaves the pending list. Nothing is deleted before the
-- retention purges it.
ALTER TABLE quarantine ADD COLUMN discarded_at timestamptz, ADD COLUMN discarded_by text;

-- +goose Down
ALTER TABLE quarantine DROP COLUMN discarded_by, DROP COLUMN discarded_at;
