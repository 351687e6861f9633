package app

import (
	"context"
	"strings"

	"github.com/kycd/kycd"
)

// Audit lists the audit trail, newest first, a page at a time: the entries
// of f's actor, action and target. A target ending in ':' takes every
// target that begins with it (subject: for every subject, subject:user:
// for every user); any other is matched whole. EINVALID for a cursor that
// is not one of this list's. Who may read the trail is the front end's to
// decide (admin only in the API).
func (s *Service) Audit(ctx context.Context, f kycd.AuditFilter) (*kycd.AuditPage, error) {
	q := kycd.AuditQuery{Actor: f.Actor, Action: f.Action, Target: f.Target, TargetPrefix: strings.HasSuffix(f.Target, ":")}
	if f.Cursor != "" {
		id, err := kycd.DecodeAuditCursor(f.Cursor)
		if err != nil {
			return nil, err
		}
		q.BeforeID = id
	}
	limit := kycd.PageLimit(f.Limit)
	q.Limit = limit + 1
	rows, err := s.Store.Audit(ctx, q)
	if err != nil {
		return nil, err
	}
	p := kycd.NewPage(rows, limit, kycd.AuditCursor)
	return &kycd.AuditPage{Items: nonNil(p.Items), NextCursor: p.NextCursor}, nil
}
