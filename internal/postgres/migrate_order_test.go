package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Migration 00010 gives every existing delivery its order key, from its
// notification's payload, and its ordinal, its event's seq, and starts the
// ordinals of new deliveries after them.
func TestMigrateOrdersExistingDeliveries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, conn := atVersion(t, 9)
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	b := &pgx.Batch{}
	for i, e := range []struct{ id, payload string }{
		{"e1", `{"id":"n1","sessionId":"s1","subject":{"type":"user","id":"u1"}}`},
		{"e2", `{"id":"n2","subject":{"type":"user","id":"u1"},"level":"REGULAR"}`},
	} {
		seq := int64(i + 7)
		b.Queue(`INSERT INTO event_log (seq, event_id, received_at, body, body_hash, projected) VALUES ($1, $2, $3, '{}', 'h', true)`, seq, e.id, at)
		b.Queue(`INSERT INTO events (seq, id, type, ts, received_at, body_hash, outcome) VALUES ($1, $2, 'kyc_session_failed', $3, $3, 'h', 'applied')`, seq, e.id, at)
		b.Queue(`INSERT INTO notifications (id, type, event_id, payload, created_at) VALUES ($1, 'kyc.session.rejected', $2, $3, $4)`,
			"n"+e.id[1:], e.id, e.payload, at)
		b.Queue(`INSERT INTO deliveries (id, notification_id, sink, state, next_attempt_at, round_started_at, created_at, updated_at)
			VALUES ($1, $2, 'crm', 'pending', $3, $3, $3, $3)`, "d"+e.id[1:], "n"+e.id[1:], at)
	}
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct {
		delivery, key string
		ordinal       int64
	}{{"d1", "s:s1", 7}, {"d2", "u:user:u1", 8}} {
		var key string
		var ordinal int64
		if err := conn.QueryRow(ctx, `SELECT order_key, ordinal FROM deliveries WHERE id = $1`, want.delivery).Scan(&key, &ordinal); err != nil {
			t.Fatal(err)
		}
		if key != want.key || ordinal != want.ordinal {
			t.Errorf("delivery %s: order key %q, ordinal %d; want %q, %d", want.delivery, key, ordinal, want.key, want.ordinal)
		}
	}
	var next int64
	if err := conn.QueryRow(ctx, `SELECT nextval('delivery_ordinal')`).Scan(&next); err != nil || next <= 8 {
		t.Fatalf("the next ordinal = %d, %v; want one after the migrated ones", next, err)
	}
}
