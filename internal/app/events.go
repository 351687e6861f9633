package app

import (
	"context"
	"slices"
	"strings"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/ralio"
)

// Event returns a stored event without its body, or ENOTFOUND. Whether
// the body is still kept shows as BodyKept.
func (s *Service) Event(ctx context.Context, id string) (*EventView, error) {
	rec, err := s.Store.Event(ctx, canonicalID(id))
	if err != nil {
		return nil, err
	}
	kept := rec.Body != nil
	rec.Body = nil
	return &EventView{EventRecord: rec, BodyKept: kept}, nil
}

// EventView is an event as Event shows it: without its body, and whether
// that body is still kept (retention purges it).
type EventView struct {
	*kycd.EventRecord
	BodyKept bool `json:"-"`
}

// EventWithBody returns a stored event with its raw body while retained
// (personal data), once a has its read in the audit trail
// (kycd.AuditEventRead on event:<id>, ok or failed): a read that cannot be
// recorded is not answered. The body is shown with U+FFFD for bytes that
// are not UTF-8 (kycd.ValidUTF8); the stored bytes stay as received.
// ENOTFOUND for an unknown event. Who may call it is the front end's to
// decide (admin only in the API).
func (s *Service) EventWithBody(ctx context.Context, a Actor, id string) (*kycd.EventRecord, error) {
	id = canonicalID(id)
	return AuditedRead(ctx, s, a, kycd.AuditEventRead, kycd.AuditTarget("event", id), func(ctx context.Context) (*kycd.EventRecord, error) {
		rec, err := s.Store.Event(ctx, id)
		if err != nil {
			return nil, err
		}
		if rec.Body != nil {
			rec.Body = kycd.ValidUTF8(rec.Body)
		}
		return rec, nil
	})
}

// Events lists events, last received first, a page at a time, without
// bodies. The cursor names the page's last event by its received time and
// id; the next page goes on below that event in the log's order, or,
// should the event be gone (a rebuild re-projects the log), below the
// first event received since that time, so a page in hand always
// continues with the events that remain. EINVALID for a cursor that is not
// one of this list's.
func (s *Service) Events(ctx context.Context, f kycd.EventFilter) (*kycd.EventPage, error) {
	after, err := kycd.ParsePosition(f.Cursor)
	if err != nil {
		return nil, err
	}
	var below int64
	if !after.IsZero() {
		if below, err = s.eventSeqAt(ctx, after); err != nil {
			return nil, err
		}
	}
	limit := kycd.PageLimit(f.Limit)
	rows, err := s.Store.Events(ctx, kycd.EventQuery{Type: f.Type, BelowSeq: below, Limit: limit + 1})
	if err != nil {
		return nil, err
	}
	// A type kycd does not know that no event has is most likely a typo
	// (kyc_session_faild): say so rather than "no events". Events of a
	// type kycd does not know are kept (unhandled) and listed.
	if f.Type != "" && len(rows) == 0 && f.Cursor == "" && !slices.Contains(ralio.EventTypes, f.Type) {
		return nil, kycd.Errorf(kycd.EINVALID, "no event has type %q, and kycd knows no such type; known types: %s", f.Type, strings.Join(ralio.EventTypes, ", "))
	}
	p := kycd.NewPage(rows, limit, func(e kycd.EventRecord) string {
		return kycd.Position{At: e.ReceivedAt, ID: e.ID}.Cursor()
	})
	return &kycd.EventPage{Events: nonNil(p.Items), NextCursor: p.NextCursor}, nil
}

// eventSeqAt is the log seq a page continuing after p goes on below: the
// seq of p's event, or without it, that of the first event received at or
// after p's time, or without one, 0 (every event remains).
func (s *Service) eventSeqAt(ctx context.Context, p kycd.Position) (int64, error) {
	seq, err := s.Store.EventSeq(ctx, p.ID)
	if kycd.ErrorCode(err) != kycd.ENOTFOUND {
		return seq, err
	}
	seq, err = s.Store.FirstEventSeqSince(ctx, p.At)
	if kycd.ErrorCode(err) == kycd.ENOTFOUND {
		return 0, nil
	}
	return seq, err
}
