package postgres_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/app"
)

// Migration 00003: deliveries of the second schema held the whole --sink
// spec, credentials and all. Each becomes the name its shorthand now gets,
// the spec's query string is struck from the errors recorded with it, and
// no delivery is orphaned by the upgrade alone.
func TestMigrateSinkSpecsToNames(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, conn := atVersion(t, 2)
	at := time.Date(2026, 3, 1, 12, 0, 1, 0, time.UTC)
	const failure = `Post "https://merchant:***@merchant.example/hook?token=T0K3N": dial tcp: connection refused`
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO notifications (id, type, event_id, payload, created_at) VALUES ('n1', 'kyc.session.rejected', 'e1', '{"id":"n1"}', $1)`, at)
	for _, d := range []struct{ id, sink, state, err string }{
		{"d1", "http=https://merchant:Pa55w0rd@merchant.example/hook?token=T0K3N", "pending", failure},
		{"d2", "nats=nats://127.0.0.1:4222?subject=kyc&create=1", "delivered", ""},
		{"d3", "log", "delivered", ""},
	} {
		var lastError *string
		if d.err != "" {
			lastError = &d.err
		}
		b.Queue(`INSERT INTO deliveries (id, notification_id, sink, state, attempts, round_attempts, round_started_at, next_attempt_at, last_error, created_at, updated_at)
			VALUES ($1, 'n1', $2, $3, 1, 1, $4, $4, $5, $4, $4)`, d.id, d.sink, d.state, at, lastError)
	}
	b.Queue(`INSERT INTO delivery_attempts (delivery_id, attempt, started_at, duration_ms, outcome, error) VALUES ('d1', 1, $1, 12, 'failed', $2)`, at, failure)
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	for id, sink := range map[string]string{"d1": "http", "d2": "nats", "d3": "log"} {
		d, err := s.Delivery(ctx, id)
		if err == nil {
			sinks, err := (&app.Service{Store: s}).ListSinks(ctx)
			if err != nil {
				t.Fatal(err)
			}
			kycd.FlagSinks([]*kycd.Delivery{d}, sinks) // as every reader gets it
		}
		if err != nil || d.Sink != sink || d.Orphaned {
			t.Fatalf("Delivery(%s) = %+v, %v; want sink %s, not orphaned", id, d, err, sink)
		}
		msgs := []string{d.LastError}
		for _, a := range d.Attempts {
			msgs = append(msgs, a.Error)
		}
		for _, msg := range msgs {
			if strings.Contains(msg, "T0K3N") || strings.Contains(msg, "Pa55w0rd") {
				t.Errorf("delivery %s keeps a credential in %q", id, msg)
			}
		}
	}
	if d, _ := s.Delivery(ctx, "d1"); !strings.Contains(d.LastError, "connection refused") || len(d.Attempts) != 1 {
		t.Errorf("delivery d1 lost its error's cause or its attempt: %+v", d)
	}
	sinks, err := (&app.Service{Store: s}).ListSinks(ctx)
	if err != nil || len(sinks) != 3 {
		t.Fatalf("Sinks = %+v, %v; want http, log and nats", sinks, err)
	}
	for _, k := range sinks {
		if !k.Configured || k.Type != k.Name {
			t.Errorf("sink %+v, want configured, of its name's type, until a serve registers its own", k)
		}
	}
	// Down and up again: the names stay.
	if err := s.MigrateDownTo(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if d, err := s.Delivery(ctx, "d1"); err != nil || d.Sink != "http" {
		t.Fatalf("after down and up: %+v, %v", d, err)
	}
}
