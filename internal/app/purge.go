package app

import (
	"context"
	"time"

	"github.com/kycd/kycd"
)

// purgeChunk is how many log entries one purge transaction takes: short
// transactions, so that neither projections nor acknowledgements wait for
// more than one chunk.
const purgeChunk = 500

// Purged counts what a retention purge removed.
type Purged struct {
	EventBodies   int // raw bodies removed from the event log
	Sessions      int // sessions whose reason messages were removed
	Notifications int // notifications whose personal data was removed
	Quarantine    int // quarantine items deleted
	// Warning is as an erasure receipt's: the data is removed, but the
	// database files may hold copies of it for a while.
	Warning string
}

// Total is how many records the purge changed.
func (p *Purged) Total() int { return p.EventBodies + p.Sessions + p.Notifications + p.Quarantine }

// Purge removes the personal data that kycd has held longer than
// retention: the raw bodies of the events received before now−retention,
// with what kycd derived from them that is personal data (kycd.ErasePayload
// for their notifications, kycd.EraseChecks for the sessions whose status
// they set: the same as an erasure removes), and the quarantined bodies
// received before then. Event ids, hashes, statuses and codes stay, so a
// late duplicate is still recognised. It goes a chunk of log entries at a
// time; a chunk's bodies go last, so a purge that stops half way leaves
// nothing it cannot find again.
func (s *Service) Purge(ctx context.Context, retention time.Duration) (*Purged, error) {
	before := s.now().Add(-retention)
	p := &Purged{}
	err := s.inTx(ctx, func(tx kycd.Tx) error {
		var err error
		p.Quarantine, err = tx.DeleteQuarantineBefore(ctx, before)
		return err
	})
	if err != nil {
		return p, err
	}
	for after := int64(0); ; {
		var chunk []kycd.EventKey
		err := s.inTx(ctx, func(tx kycd.Tx) error {
			if err := tx.ExcludeProjections(ctx); err != nil {
				return err
			}
			var err error
			if chunk, err = tx.LogBodiesBefore(ctx, before, after, purgeChunk); err != nil || len(chunk) == 0 {
				return err
			}
			ids := eventIDs(chunk)
			notifications := make([]string, len(ids))
			for i, id := range ids {
				notifications[i] = kycd.NotificationID(id)
			}
			n, err := eraseNotifications(ctx, tx, notifications)
			p.Notifications += n
			if err != nil {
				return err
			}
			sessions, err := tx.SessionsWithStatusEvent(ctx, ids)
			if err != nil {
				return err
			}
			n, err = eraseSessions(ctx, tx, sessions)
			p.Sessions += n
			return err
		})
		if err != nil || len(chunk) == 0 {
			return s.purged(ctx, p), err
		}
		err = s.inTx(ctx, func(tx kycd.Tx) error {
			n, err := tx.ClearLogBodies(ctx, seqs(chunk))
			p.EventBodies += n
			return err
		})
		if err != nil || len(chunk) < purgeChunk {
			return s.purged(ctx, p), err
		}
		after = chunk[len(chunk)-1].Seq
	}
}

// purged drops the store's copies of what p removed, if anything.
func (s *Service) purged(ctx context.Context, p *Purged) *Purged {
	if p.Total() > 0 {
		p.Warning = s.dropCopies(ctx, "retention purge")
	}
	return p
}

// PurgeAudit drops the audit entries older than retention (the audit
// trail's own, longer than the bodies') and reports how many.
func (s *Service) PurgeAudit(ctx context.Context, retention time.Duration) (int64, error) {
	return s.Store.PurgeAudit(ctx, s.now().Add(-retention))
}

// PurgeHold deletes the bodies of the signature hold received longer than
// retention ago, a retention shorter than the quarantine's, and reports how
// many.
func (s *Service) PurgeHold(ctx context.Context, retention time.Duration) (int, error) {
	var n int
	err := s.inTx(ctx, func(tx kycd.Tx) error {
		var err error
		n, err = tx.DeleteHeldBefore(ctx, s.now().Add(-retention))
		return err
	})
	return n, err
}
