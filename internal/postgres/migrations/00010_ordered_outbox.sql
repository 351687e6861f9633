-- +goose Up
-- The ordered outbox (issue 14): a session's notifications reach each sink
-- in the order kycd applied them. Every delivery carries the key it is
-- ordered by (kycd.OrderKey: s:SESSION, u:TYPE:ID for a notification of no
-- session, n:NOTIFICATION for one of neither) and its ordinal, taken from
-- delivery_ordinal by the projection transaction, which holds the
-- projection lock: ordinals follow the order of application on every
-- replica, also where two replicas' log entries commit out of seq order. A
-- delivery is claimed only when no pending delivery of its sink and key
-- comes before it.
ALTER TABLE deliveries ADD COLUMN order_key text COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE deliveries ADD COLUMN ordinal bigint NOT NULL DEFAULT 0;
UPDATE deliveries d SET
    order_key = CASE
        WHEN coalesce(n.payload->>'sessionId', '') <> '' THEN 's:' || (n.payload->>'sessionId')
        WHEN coalesce(n.payload->'subject'->>'id', '') <> ''
            THEN 'u:' || coalesce(n.payload->'subject'->>'type', '') || ':' || (n.payload->'subject'->>'id')
        ELSE 'n:' || n.id END,
    ordinal = coalesce(
        (SELECT e.seq FROM events e WHERE e.id = n.event_id AND n.type NOT IN ('kyc.session.stalled', 'kyc.subject.erased')),
        (SELECT coalesce(max(e.seq), 0) FROM events e WHERE e.received_at <= d.created_at))
FROM notifications n WHERE n.id = d.notification_id;
CREATE SEQUENCE delivery_ordinal;
SELECT setval('delivery_ordinal', greatest((SELECT max(ordinal) FROM deliveries), (SELECT max(seq) FROM event_log), 1));
-- Only pending rows: the index stays as small as the backlog, whatever
-- the keys (random session ids) it holds.
CREATE INDEX deliveries_order ON deliveries (sink, order_key, ordinal, id) WHERE state = 'pending';
-- A sink's ordering: session (the default, also for a sink without a
-- row) or none (--sink …,order=none). A table of its own, not a column of
-- sinks: a database may take 00003, which makes sinks, after this one.
CREATE TABLE sink_orderings (
    name     text PRIMARY KEY,
    ordering text NOT NULL
);

-- +goose Down
DROP TABLE sink_orderings;
DROP INDEX deliveries_order;
DROP SEQUENCE delivery_ordinal;
ALTER TABLE deliveries DROP COLUMN ordinal;
ALTER TABLE deliveries DROP COLUMN order_key;
