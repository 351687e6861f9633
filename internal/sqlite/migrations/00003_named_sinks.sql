-- +goose Up
-- Deliveries belong to a sink's name, not to its URL (issue 7): a delivery
-- used to hold the whole --sink spec, credentials and all, and a corrected
-- URL stranded it. Each stored spec becomes the name its shorthand now
-- gets (http=URL is http, nats=URL is nats, log is log); before that, the
-- query string of each spec (where tokens go) is struck from the errors
-- recorded with it. Go's HTTP client already stars a URL's password.

UPDATE delivery_attempts SET error = replace(error, (
        SELECT substr(d.sink, instr(d.sink, '?') + 1) FROM deliveries d WHERE d.id = delivery_attempts.delivery_id
    ), 'xxxxx')
WHERE error IS NOT NULL AND delivery_id IN (SELECT id FROM deliveries WHERE instr(sink, '?') > 0 AND instr(sink, '?') < length(sink));
UPDATE deliveries SET last_error = replace(last_error, substr(sink, instr(sink, '?') + 1), 'xxxxx')
WHERE last_error IS NOT NULL AND instr(sink, '?') > 0 AND instr(sink, '?') < length(sink);
UPDATE deliveries SET sink = CASE
        WHEN sink LIKE 'http=%' THEN 'http'
        WHEN sink LIKE 'nats=%' THEN 'nats'
        ELSE sink END
WHERE sink LIKE 'http=%' OR sink LIKE 'nats=%';

-- The sinks the last kycd serve to start was configured with (it registers
-- them), and those that only deliveries still name. No secret is kept:
-- target is the URL as kycd.RedactURL shows it, events the comma-separated
-- type patterns ('' for every type).
CREATE TABLE sinks (
    name          TEXT PRIMARY KEY,
    type          TEXT NOT NULL,
    target        TEXT NOT NULL,
    events        TEXT NOT NULL,
    configured    INTEGER NOT NULL, -- 1: in the configuration of the last serve to start
    registered_at TEXT NOT NULL,
    paused_at     TEXT,             -- set when the endpoint answered 410 Gone
    pause_reason  TEXT,
    resumed_at    TEXT,
    resumed_by    TEXT
);
-- Until a serve starts and registers its own, the sinks of the existing
-- deliveries count as configured: nothing is flagged orphaned by the
-- upgrade alone.
INSERT INTO sinks (name, type, target, events, configured, registered_at)
SELECT DISTINCT sink, CASE WHEN sink IN ('http', 'nats', 'log') THEN sink ELSE '' END, '', '', 1,
    strftime('%Y-%m-%dT%H:%M:%S', 'now') || '.000000000Z'
FROM deliveries;

-- What operators did to a delivery by hand (moved it to another sink,
-- dropped it), by whom and when; the note kept until kycd has an audit
-- trail.
CREATE TABLE delivery_actions (
    delivery_id TEXT NOT NULL REFERENCES deliveries (id),
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL, -- move | drop
    from_sink   TEXT NOT NULL,
    to_sink     TEXT
);
CREATE INDEX delivery_actions_delivery ON delivery_actions (delivery_id, at);

-- Deliveries are listed oldest first, a page at a time.
CREATE INDEX deliveries_created ON deliveries (created_at, id);

-- +goose Down
-- The names stay: the specs they came from, with their credentials, are
-- not kept anywhere.
DROP INDEX deliveries_created;
DROP TABLE delivery_actions;
DROP TABLE sinks;
