-- +goose Up
-- The ordered outbox (issue 14): a session's notifications reach each sink
-- in the order kycd applied them. Every delivery carries the key it is
-- ordered by (kycd.OrderKey: s:SESSION, u:TYPE:ID for a notification of no
-- session, n:NOTIFICATION for one of neither) and its ordinal, the log seq
-- of the event that made it (the projection applies the log in seq order)
-- or, for a notification of no event (stalled, erased), the watermark when
-- it was made. A delivery is claimed only when no pending delivery of its
-- sink and key comes before it.
ALTER TABLE deliveries ADD COLUMN order_key TEXT NOT NULL DEFAULT '';
ALTER TABLE deliveries ADD COLUMN ordinal INTEGER NOT NULL DEFAULT 0;
UPDATE deliveries SET
    order_key = (SELECT CASE
            WHEN coalesce(json_extract(n.payload, '$.sessionId'), '') <> '' THEN 's:' || json_extract(n.payload, '$.sessionId')
            WHEN coalesce(json_extract(n.payload, '$.subject.id'), '') <> ''
                THEN 'u:' || coalesce(json_extract(n.payload, '$.subject.type'), '') || ':' || json_extract(n.payload, '$.subject.id')
            ELSE 'n:' || n.id END
        FROM notifications n WHERE n.id = deliveries.notification_id),
    ordinal = coalesce(
        (SELECT e.seq FROM notifications n JOIN events e ON e.id = n.event_id
            WHERE n.id = deliveries.notification_id AND n.type NOT IN ('kyc.session.stalled', 'kyc.subject.erased')),
        (SELECT coalesce(max(e.seq), 0) FROM events e WHERE e.received_at <= deliveries.created_at));
-- Only pending rows: the index stays as small as the backlog, whatever
-- the keys (random session ids) it holds.
CREATE INDEX deliveries_order ON deliveries (sink, order_key, ordinal, id) WHERE state = 'pending';
-- A sink's ordering: session (the default, also for a sink without a
-- row) or none (--sink …,order=none). A table of its own, not a column of
-- sinks: a database may take 00003, which makes sinks, after this one.
CREATE TABLE sink_orderings (
    name     TEXT PRIMARY KEY,
    ordering TEXT NOT NULL
);

-- +goose Down
DROP TABLE sink_orderings;
DROP INDEX deliveries_order;
ALTER TABLE deliveries DROP COLUMN ordinal;
ALTER TABLE deliveries DROP COLUMN order_key;
