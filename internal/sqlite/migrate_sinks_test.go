package sqlite

import (
	"context"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/pressly/goose/v3"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/app"
)

// Migration 00003: deliveries of the second schema held the whole --sink
// spec, credentials and all. Each becomes the name its shorthand now gets,
// the spec's query string is struck from the errors recorded with it, and
// no delivery is orphaned by the upgrade alone.
func TestMigrateSinkSpecsToNames(t *testing.T) {
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "kycd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	if err := s.migrate(ctx, s.lw, logMigrations, "logmigrations"); err != nil {
		t.Fatal(err)
	}
	if _, err := mainProvider(t, s).UpTo(ctx, 2); err != nil {
		t.Fatal(err)
	}
	const ts = "2026-03-01T12:00:01.000000000Z"
	execAll(t, s.w,
		`INSERT INTO notifications (id, type, event_id, payload, created_at) VALUES ('n1', 'kyc.session.rejected', 'e1', '{"id":"n1"}', '`+ts+`')`,
		`INSERT INTO deliveries (id, notification_id, sink, state, attempts, round_attempts, round_started_at, next_attempt_at, last_error, created_at, updated_at) VALUES
			('d1', 'n1', 'http=https://merchant:Pa55w0rd@merchant.example/hook?token=T0K3N', 'pending', 1, 1, '`+ts+`', '`+ts+`',
				'Post "https://merchant:***@merchant.example/hook?token=T0K3N": dial tcp: connection refused', '`+ts+`', '`+ts+`'),
			('d2', 'n1', 'nats=nats://127.0.0.1:4222?subject=kyc&create=1', 'delivered', 1, 1, '`+ts+`', '`+ts+`', NULL, '`+ts+`', '`+ts+`'),
			('d3', 'n1', 'log', 'delivered', 1, 1, '`+ts+`', '`+ts+`', NULL, '`+ts+`', '`+ts+`')`,
		`INSERT INTO delivery_attempts (delivery_id, attempt, started_at, duration_ms, outcome, status_code, error) VALUES
			('d1', 1, '`+ts+`', 12, 'failed', NULL, 'Post "https://merchant:***@merchant.example/hook?token=T0K3N": dial tcp: connection refused')`,
	)
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"d1": "http", "d2": "nats", "d3": "log"}
	for id, sink := range want {
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
		for _, msg := range append([]string{d.LastError}, attemptErrors(d)...) {
			if strings.Contains(msg, "T0K3N") || strings.Contains(msg, "Pa55w0rd") {
				t.Errorf("delivery %s keeps a credential in %q", id, msg)
			}
		}
	}
	if d, _ := s.Delivery(ctx, "d1"); !strings.Contains(d.LastError, "connection refused") {
		t.Errorf("the error lost its cause: %q", d.LastError)
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
	var n int
	if err := s.r.QueryRowContext(t.Context(), `SELECT count(*) FROM deliveries WHERE sink LIKE '%=%'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d deliveries still hold a spec, %v", n, err)
	}
}

func attemptErrors(d *kycd.Delivery) []string {
	var out []string
	for _, a := range d.Attempts {
		out = append(out, a.Error)
	}
	return out
}

// A database migrated by a build that had migrations 00004 and 00005 but
// not yet 00003 takes 00003 late, instead of refusing to start.
func TestMigrationTakenOutOfOrder(t *testing.T) {
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "kycd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	if err := s.migrate(ctx, s.lw, logMigrations, "logmigrations"); err != nil {
		t.Fatal(err)
	}
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	without3 := fstest.MapFS{}
	err = fs.WalkDir(sub, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(path, "00003") {
			return err
		}
		b, err := fs.ReadFile(sub, path)
		without3[path] = &fstest.MapFile{Data: b}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, s.w, without3, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("Migrate of a database without 00003: %v", err)
	}
	if _, err := (&app.Service{Store: s}).ListSinks(ctx); err != nil {
		t.Fatalf("after the late 00003: %v", err)
	}
}
