package app

import (
	"context"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
)

// canonicalID is id as kycd stores it: a UUID in canonical lower case,
// anything else as given.
func canonicalID(id string) string {
	if u, err := uuid.Parse(id); err == nil {
		return u.String()
	}
	return id
}

// Session returns a session with its checks, failure reasons and history,
// or ENOTFOUND.
func (s *Service) Session(ctx context.Context, id string) (*kycd.Session, error) {
	sess, err := s.Store.Session(ctx, canonicalID(id))
	if err != nil {
		return nil, err
	}
	sess.Complete()
	return sess, nil
}

// Sessions lists the sessions f selects, newest status first, a page at a
// time: EINVALID for a status that is none of kycd's, a time range that
// ends before it begins, or a cursor that is not one of this list's.
func (s *Service) Sessions(ctx context.Context, f kycd.SessionFilter) (*kycd.SessionPage, error) {
	return ListSessions(ctx, s.Store, f)
}

// SessionReader is the store read ListSessions makes.
type SessionReader interface {
	Sessions(ctx context.Context, q kycd.SessionQuery) ([]kycd.SessionListItem, error)
}

// ListSessions is Sessions over any store that reads sessions:
// reconciliation's walk of every subject, which needs no more of a store.
func ListSessions(ctx context.Context, st SessionReader, f kycd.SessionFilter) (*kycd.SessionPage, error) {
	if f.Status != "" && !slices.Contains(kycd.SessionStatuses, f.Status) {
		return nil, kycd.Errorf(kycd.EINVALID, "status must be one of %s", joinStatuses())
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		return nil, kycd.Errorf(kycd.EINVALID, "until must be after since")
	}
	after, err := kycd.ParsePosition(f.Cursor)
	if err != nil {
		return nil, err
	}
	limit := kycd.PageLimit(f.Limit)
	rows, err := st.Sessions(ctx, kycd.SessionQuery{
		Status: f.Status, SubjectID: canonicalID(f.SubjectID), Code: f.Code,
		Since: f.Since.UTC(), Until: f.Until.UTC(), After: after, Limit: limit + 1,
	})
	if err != nil {
		return nil, err
	}
	p := kycd.NewPage(rows, limit, func(it kycd.SessionListItem) string {
		return kycd.Position{At: it.StatusAt, ID: it.ID}.Cursor()
	})
	return &kycd.SessionPage{Sessions: nonNil(p.Items), NextCursor: p.NextCursor}, nil
}

// joinStatuses names every status, for a message.
func joinStatuses() string {
	names := make([]string, len(kycd.SessionStatuses))
	for i, st := range kycd.SessionStatuses {
		names[i] = string(st)
	}
	return strings.Join(names, ", ")
}

// nonNil makes an empty list a list: answers show [], never null.
func nonNil[T any](items []T) []T {
	if items == nil {
		return []T{}
	}
	return items
}

// SessionDetail is a session with the guidance each failure's user was
// given and every notification it produced, each with its deliveries:
// what a support agent needs to answer "why was this user rejected, and
// were our systems told?".
type SessionDetail struct {
	*kycd.Session
	Notifications []*kycd.SentNotification `json:"notifications"`
}

// SessionDetail returns the session id (Session) with the sentence guide
// gives each failure's code and its notifications (Notifications), their
// deliveries' errors without credentials (RedactDelivery); ENOTFOUND for
// an unknown id. The payloads are as sent: the front end leaves out their
// personal data.
func (s *Service) SessionDetail(ctx context.Context, id string, guide func(code string) string) (*SessionDetail, error) {
	sess, err := s.Session(ctx, id)
	if err != nil {
		return nil, err
	}
	for i := range sess.Failures {
		sess.Failures[i].Guidance = guide(sess.Failures[i].Code)
	}
	sent, err := s.Notifications(ctx, kycd.SessionNotificationIDs(sess))
	if err != nil {
		return nil, err
	}
	for _, n := range sent {
		for _, d := range n.Deliveries {
			RedactDelivery(d)
		}
	}
	return &SessionDetail{Session: sess, Notifications: nonNil(sent)}, nil
}
