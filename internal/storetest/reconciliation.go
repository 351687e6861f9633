package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
)

func testReconciliations(t *testing.T, s kycd.Store) {
	ctx := context.Background()
	if runs, err := s.Reconciliations(ctx, 10); err != nil || len(runs) != 0 {
		t.Fatalf("Reconciliations of a new store = %v, %v; want none", runs, err)
	}
	first := &kycd.Reconciliation{ID: uuid.NewString(), StartedAt: base, State: kycd.ReconcileRunning}
	if err := s.SaveReconciliation(ctx, first); err != nil {
		t.Fatal(err)
	}
	first.State, first.FinishedAt, first.Users, first.Checked, first.Drift = kycd.ReconcileInterrupted, base.Add(time.Minute), 3, 7, 2
	first.Repaired, first.Errors, first.Cursor = []string{"s1", "s2"}, []string{"user u3: status 503"}, "u2"
	if err := s.SaveReconciliation(ctx, first); err != nil {
		t.Fatal(err)
	}
	second := &kycd.Reconciliation{ID: uuid.NewString(), StartedAt: base.Add(time.Hour), State: kycd.ReconcileDone}
	if err := s.SaveReconciliation(ctx, second); err != nil {
		t.Fatal(err)
	}
	runs, err := s.Reconciliations(ctx, 10)
	if err != nil || len(runs) != 2 || runs[0].ID != second.ID {
		t.Fatalf("Reconciliations = %+v, %v; want the two runs, newest first", runs, err)
	}
	got := runs[1]
	if got.State != kycd.ReconcileInterrupted || !got.FinishedAt.Equal(first.FinishedAt) || got.Users != 3 || got.Checked != 7 || got.Drift != 2 ||
		len(got.Repaired) != 2 || got.Repaired[1] != "s2" || len(got.Errors) != 1 || got.Cursor != "u2" {
		t.Fatalf("run read back = %+v, want %+v", got, first)
	}
	if runs[0].Repaired == nil || runs[0].Errors == nil || !runs[0].FinishedAt.IsZero() {
		t.Fatalf("a run without lists = %+v, want empty lists, no finish time", runs[0])
	}
}
