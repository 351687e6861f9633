// Package ingesttest records events in a store for tests, through the real
// write path: appended to the event log, then projected.
package ingesttest

import (
	"context"
	"testing"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/ingest"
)

// Ingest appends ev (its Body and BodyHash set) to store's log and projects
// it with the options o (sinks, guidance), and reports what became of it.
func Ingest(t testing.TB, store kycd.Store, ev *kycd.Event, o ingest.Options) kycd.IngestResult {
	t.Helper()
	ctx := context.Background()
	in, err := ingest.New(ctx, store, o)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	res, err := in.Append(ctx, ev)
	if err == nil {
		err = in.Project(ctx, &res)
	}
	if err != nil {
		t.Fatalf("ingest %s: %v", ev.ID, err)
	}
	out := kycd.IngestResult{Duplicate: res.Duplicate, Outcome: res.Outcome}
	if res.Outcome == kycd.OutcomeApplied && kycd.NotificationType(ev) != "" {
		out.NotificationID = kycd.NotificationID(ev.ID)
	}
	return out
}
