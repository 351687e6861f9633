-- +goose Up
-- The signature hold: a body whose signature failed (answered 401) is a
-- quarantine row of reason 'signature', kept with the X-Signature it came
-- with so that a replay can check it again under the secrets configured
-- then. The index serves the caps enforced at each insert.
ALTER TABLE quarantine ADD COLUMN signature TEXT;
CREATE INDEX quarantine_reason_received ON quarantine (reason, received_at);

-- +goose Down
DROP INDEX quarantine_reason_received;
ALTER TABLE quarantine DROP COLUMN signature;
