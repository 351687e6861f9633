package ingest

import (
	"context"
	"fmt"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/ralio"
)

// Rebuild re-derives every projection from the log entries that still
// have their bodies, without notifying again, and reports how many entries
// it projected. Run it while no other process projects (serve stopped).
func (in *Ingester) Rebuild(ctx context.Context) (int64, error) {
	n, err := ResetProjection(ctx, in.store)
	if err != nil {
		return 0, fmt.Errorf("ingest: rebuild: %w", err)
	}
	silent := newProjector(in.store, kycd.PlanOptions{Silent: true, MaxClockSkew: in.proj.opt.MaxClockSkew}, in.proj.batchSize, in.proj.logger, in.proj.metrics, nil)
	if _, err := silent.drain(ctx); err != nil {
		return n, fmt.Errorf("ingest: rebuild: %w", err)
	}
	return n, nil
}

// levelEventTypes are the event types that set a subject's level (see
// toEvent).
var levelEventTypes = []string{ralio.TypeKYCStateUpdated, ralio.TypeKYBStateUpdated}

// ResetProjection makes the projected log entries that still have their
// body unprojected and removes what they derived, in one transaction that
// waits for a projection in progress, so that projecting again rebuilds
// it. It returns how many entries will be projected again.
//
// What goes: the events rows of those entries, the sessions they belong
// to and the subjects whose level they set; the sessions and subjects
// first, since they are found through the events rows. What stays:
// notifications, deliveries and the quarantine (a rebuild notifies no
// one again), and everything derived from entries without a body (purged
// by retention or erased): their bodies cannot derive it again, and their
// events rows keep a late copy of them a duplicate. What derives from
// entries past the log's newest (a Beyond run: a log file older than the
// projection's) goes too, since no entry can derive it again, and the
// watermark comes back to the log.
func ResetProjection(ctx context.Context, s interface {
	Begin(ctx context.Context) (kycd.Tx, error)
}) (int64, error) {
	tx, err := s.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("reset projection: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if err := tx.LockProjection(ctx); err != nil {
		return 0, fmt.Errorf("reset projection: %w", err)
	}
	runs, err := tx.ProjectedLogRuns(ctx)
	if err != nil {
		return 0, fmt.Errorf("reset projection: %w", err)
	}
	var again []kycd.LogRun
	var n int64
	for _, r := range runs {
		switch {
		case r.HasBody:
			again = append(again, r)
			n += r.Entries
		case r.Beyond:
			// Derived from entries this log does not hold: gone, and
			// the watermark back to the log's newest entry, so that
			// what the log receives next is projected.
			again = append(again, r)
		}
	}
	if len(again) == 0 {
		return 0, nil
	}
	for _, step := range []func() error{
		func() error { return tx.DeleteRunSessions(ctx, again) },
		func() error { return tx.DeleteRunSubjects(ctx, again, levelEventTypes) },
		func() error { return tx.DeleteRunEvents(ctx, again) },
		func() error { return tx.UnprojectLog(ctx, again) },
		func() error { return tx.Commit(ctx) },
	} {
		if err := step(); err != nil {
			return 0, fmt.Errorf("reset projection: %w", err)
		}
	}
	return n, nil
}
