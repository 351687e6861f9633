-- +goose Up
-- The first KiB of what the receiver answered to a failed attempt, with
-- credentials struck (kycd.RedactText), beside its status code: what an
-- operator triaging dead deliveries reads to see why they were refused.
ALTER TABLE delivery_attempts ADD COLUMN response_body TEXT;

-- +goose Down
ALTER TABLE delivery_attempts DROP COLUMN response_body;
