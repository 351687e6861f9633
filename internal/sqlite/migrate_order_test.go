package sqlite

import (
	"context"
	"testing"
)

// Migration 00010 gives every existing delivery its order key, from its
// notification's payload, and its ordinal, its event's seq: the claim then
// orders them as it orders new ones.
func TestMigrateOrdersExistingDeliveries(t *testing.T) {
	s := openV1(t)
	ctx := context.Background()
	if _, err := mainProvider(t, s).UpTo(ctx, 9); err != nil {
		t.Fatal(err)
	}
	execAll(t, s.w,
		`INSERT INTO notifications (id, type, event_id, payload, created_at) VALUES
			('n2', 'kyc.session.rejected', 'e2', '{"id":"n2","sessionId":"s1","subject":{"type":"user","id":"u1"}}', '2026-03-01T12:00:03.000000000Z'),
			('n3', 'kyc.level.updated', 'e3', '{"id":"n3","subject":{"type":"user","id":"u1"},"level":"REGULAR"}', '2026-03-01T12:00:04.000000000Z')`,
		`INSERT INTO deliveries (id, notification_id, sink, state, round_started_at, next_attempt_at, created_at, updated_at) VALUES
			('d2', 'n2', 'crm', 'pending', '2026-03-01T12:00:03.000000000Z', '2026-03-01T12:00:03.000000000Z', '2026-03-01T12:00:03.000000000Z', '2026-03-01T12:00:03.000000000Z'),
			('d3', 'n3', 'crm', 'pending', '2026-03-01T12:00:04.000000000Z', '2026-03-01T12:00:04.000000000Z', '2026-03-01T12:00:04.000000000Z', '2026-03-01T12:00:04.000000000Z')`)
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct{ delivery, key, event string }{
		{"d1", "n:n1", "e1"}, {"d2", "s:s1", "e2"}, {"d3", "u:user:u1", "e3"},
	} {
		var key string
		var ordinal, seq int64
		if err := s.r.QueryRowContext(ctx, `SELECT order_key, ordinal, (SELECT seq FROM events WHERE id = ?) FROM deliveries WHERE id = ?`,
			want.event, want.delivery).Scan(&key, &ordinal, &seq); err != nil {
			t.Fatal(err)
		}
		if key != want.key || ordinal != seq || seq == 0 {
			t.Errorf("delivery %s: order key %q, ordinal %d; want %q and its event's seq %d", want.delivery, key, ordinal, want.key, seq)
		}
	}
}
