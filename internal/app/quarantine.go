package app

import (
	"context"
	"time"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/ingest"
)

// DiscardQuarantine gives up the quarantined body id: kept, marked with who
// and when, out of the pending list; it returns when. ENOTFOUND for an
// unknown id; ECONFLICT for a body replayed or discarded already
// (kycd.QuarantineSettled).
func (s *Service) DiscardQuarantine(ctx context.Context, a Actor, id string) (time.Time, error) {
	at := s.now()
	err := s.Audited(ctx, a, kycd.AuditQuarantineDiscard, kycd.AuditTarget("quarantine", id), func(tx kycd.Tx) (string, error) {
		q, err := tx.LockQuarantined(ctx, id)
		if err != nil {
			return "", err
		}
		if err := kycd.QuarantineSettled(q); err != nil {
			return "", err
		}
		return "", tx.SetQuarantineDiscarded(ctx, id, a.Name, at)
	})
	if err != nil {
		return time.Time{}, err
	}
	s.logger().InfoContext(ctx, "quarantined body discarded by an operator", "quarantine_id", id, "actor", a.Name)
	return at, nil
}

// Replayer runs a quarantined body through ingest again (ingest.Ingester).
type Replayer interface {
	Replay(ctx context.Context, id string) (ingest.Result, error)
}

// ReplayQuarantine runs the quarantined body id through in again and
// records, as quarantine.replay, which event it gave and how it ended. The
// replay commits on its own (the ingester appends to the event log and
// projects); its entry is written after it, even if ctx is done.
func (s *Service) ReplayQuarantine(ctx context.Context, a Actor, in Replayer, id string) (ingest.Result, error) {
	res, err := in.Replay(ctx, id)
	target := kycd.AuditTarget("quarantine", id)
	if aerr := s.Store.AddAudit(context.WithoutCancel(ctx), s.entry(a, kycd.AuditQuarantineReplay, target, err, "event "+res.EventID+" "+res.Outcome)); aerr != nil {
		s.logger().ErrorContext(ctx, "could not record an audit entry", "action", kycd.AuditQuarantineReplay, "target", target, "err", aerr)
	}
	return res, err
}
