package app_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
)

// A discarded body stays, marked with who and when, and leaves the
// pending list; it cannot be discarded twice, nor can a replayed one.
func TestDiscardQuarantine(t *testing.T) {
	t.Parallel()
	onBothStores(t, func(t *testing.T, s kycd.Store) {
		ctx := context.Background()
		svc, clock := service(s)
		add := func() *kycd.Quarantined {
			t.Helper()
			q := &kycd.Quarantined{ID: uuid.NewString(), ReceivedAt: time.Now().UTC(), Reason: kycd.QuarantineInvalid,
				Problem: []byte(`{"detail":"x"}`), Body: []byte(`{"b":1}`)}
			if err := s.AddQuarantine(ctx, q); err != nil {
				t.Fatal(err)
			}
			return q
		}
		kept, dropped, replayed := add(), add(), add()
		at, err := svc.DiscardQuarantine(ctx, admin, dropped.ID)
		if err != nil || !at.Equal(clock.now) {
			t.Fatalf("DiscardQuarantine = %v, %v; want it done at %v", at, err, clock.now)
		}
		wantAudit(t, s, kycd.AuditQuarantineDiscard, kycd.AuditTarget("quarantine", dropped.ID), admin.Name, kycd.AuditOK, "")
		got, err := s.QuarantineItem(ctx, dropped.ID)
		if err != nil || !got.DiscardedAt.Equal(at) || got.DiscardedBy != admin.Name || string(got.Body) != `{"b":1}` {
			t.Fatalf("discarded item = %+v, %v; want it kept with who and when", got, err)
		}
		if err := s.ResolveQuarantine(ctx, replayed.ID, kycd.OutcomeApplied, at); err != nil {
			t.Fatal(err)
		}
		pending, err := s.Quarantine(ctx, false, 10)
		if err != nil || len(pending) != 1 || pending[0].ID != kept.ID {
			t.Fatalf("pending = %+v, %v; want only the item neither discarded nor replayed", pending, err)
		}
		clock.now = clock.now.Add(time.Minute)
		for _, tc := range []struct {
			id, want string
		}{{dropped.ID, kycd.ECONFLICT}, {replayed.ID, kycd.ECONFLICT}, {uuid.NewString(), kycd.ENOTFOUND}} {
			if _, err := svc.DiscardQuarantine(ctx, ana, tc.id); kycd.ErrorCode(err) != tc.want {
				t.Errorf("discard %s = %v, want %s", tc.id, err, tc.want)
			}
			wantAudit(t, s, kycd.AuditQuarantineDiscard, kycd.AuditTarget("quarantine", tc.id), ana.Name, kycd.AuditFailed, "")
		}
		if got, _ := s.QuarantineItem(ctx, dropped.ID); got == nil || got.DiscardedBy != admin.Name || !got.DiscardedAt.Equal(at) {
			t.Errorf("a second discard changed the first: %+v", got)
		}
	})
}
