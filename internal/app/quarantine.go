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

// ListQuarantine lists quarantined bodies, newest first, pending ones only
// unless all: at most limit (kycd.PageLimit), and whether there are more.
func (s *Service) ListQuarantine(ctx context.Context, all bool, limit int) (items []*kycd.Quarantined, more bool, err error) {
	limit = kycd.PageLimit(limit)
	rows, err := s.Store.Quarantine(ctx, all, limit+1)
	if err != nil {
		return nil, false, err
	}
	// The list has no cursor: the page only says whether it was cut.
	p := kycd.NewPage(rows, limit, func(*kycd.Quarantined) string { return "more" })
	return p.Items, p.NextCursor != "", nil
}

// QuarantineItem returns one quarantined body with the bytes it holds
// (personal data), once a has its read in the audit trail
// (kycd.AuditQuarantineRead on quarantine:<id>, ok or failed): a read that
// cannot be recorded is not answered. ENOTFOUND for an unknown id.
func (s *Service) QuarantineItem(ctx context.Context, a Actor, id string) (*kycd.Quarantined, error) {
	id = canonicalID(id)
	return AuditedRead(ctx, s, a, kycd.AuditQuarantineRead, kycd.AuditTarget("quarantine", id), func(ctx context.Context) (*kycd.Quarantined, error) {
		return s.Store.QuarantineItem(ctx, id)
	})
}

// QuarantineSummary returns the quarantined body id for a front end to
// show as the list shows it: its reason, problem and times, and (as
// ListQuarantine's items) the bytes it holds for the replay checks only,
// never to be shown, so it is not audited. ENOTFOUND for an unknown id.
func (s *Service) QuarantineSummary(ctx context.Context, id string) (*kycd.Quarantined, error) {
	return s.Store.QuarantineItem(ctx, canonicalID(id))
}
