-- +goose Up
-- An erasure empties the quarantined bodies that name its subject; the
-- row keeps the subject's id (ids are not erased), so that a later export
-- still finds the item, resolved as erased, once no body names it any
-- more.
ALTER TABLE quarantine ADD COLUMN erased_subject TEXT;

-- +goose Down
ALTER TABLE quarantine DROP COLUMN erased_subject;
