// Package privacy answers a person's rights over the data kycd keeps about
// them: access (Export, one document with everything) and erasure (Erase,
// which also tells every sink with kyc.subject.erased). The API and the CLI
// both call it, so the two do exactly the same.
package privacy

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
)

// Store is what export and erasure need of a kycd.Store.
type Store interface {
	Subject(ctx context.Context, id, typ string) (*kycd.Subject, error)
	ExportSubject(ctx context.Context, subject kycd.SubjectRef, at time.Time) (*kycd.SubjectExport, error)
	EraseSubject(ctx context.Context, subject kycd.SubjectRef, at time.Time) (*kycd.ErasureReceipt, error)
	BeginProjection(ctx context.Context) (kycd.ProjectionTx, error)
}

// Resolve finds the subject of id, of type typ when given: EINVALID for a
// type that is none of kycd's, ENOTFOUND for a subject kycd does not know.
// When one id is known under several types and typ is empty, the first by
// type name is taken, as GET /api/v1/subjects/{id} does.
func Resolve(ctx context.Context, s Store, id, typ string) (kycd.SubjectRef, error) {
	switch typ {
	case "", kycd.SubjectUser, kycd.SubjectRelatedParty, kycd.SubjectBusiness:
	default:
		return kycd.SubjectRef{}, kycd.Errorf(kycd.EINVALID, "type %q: want user, related-party or business", typ)
	}
	if u, err := uuid.Parse(id); err == nil {
		id = u.String() // ids are stored in canonical lower case
	}
	sub, err := s.Subject(ctx, id, typ)
	if err != nil {
		return kycd.SubjectRef{}, err
	}
	return kycd.SubjectRef{Type: sub.Type, ID: sub.ID}, nil
}

// Export returns everything kycd holds about a subject as of now. Bodies
// are shown with U+FFFD for bytes that are not UTF-8 (kycd.ValidUTF8), so
// the document is JSON that any parser reads.
func Export(ctx context.Context, s Store, id, typ string, now time.Time) (*kycd.SubjectExport, error) {
	sub, err := Resolve(ctx, s, id, typ)
	if err != nil {
		return nil, err
	}
	x, err := s.ExportSubject(ctx, sub, now)
	if err != nil {
		return nil, err
	}
	for _, e := range x.Events {
		if e.Body != nil {
			e.Body = kycd.ValidUTF8(e.Body)
		}
	}
	return x, nil
}

// Erase removes a subject's personal data everywhere kycd keeps it
// (kycd.Store.EraseSubject), then notifies kyc.subject.erased to every sink
// whose events take it, through a projection transaction that writes the
// notification once (its id derives from the subject and the erasure's
// time). Callers should let the projection catch up first, so that events
// acknowledged before the erasure are erased too.
func Erase(ctx context.Context, s Store, sinks []kycd.SinkRoute, id, typ string, now time.Time) (*kycd.ErasureReceipt, error) {
	sub, err := Resolve(ctx, s, id, typ)
	if err != nil {
		return nil, err
	}
	r, err := s.EraseSubject(ctx, sub, now)
	if err != nil {
		return nil, err
	}
	n := kycd.NewErasedNotification(sub, r.ErasedAt)
	names := kycd.SinksFor(sinks, n.Type)
	if len(names) == 0 {
		return r, nil
	}
	tx, err := s.BeginProjection(ctx)
	if err != nil {
		return r, fmt.Errorf("privacy: notify the erasure: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if err := tx.Apply(ctx, &kycd.Plan{Notifications: []*kycd.Outgoing{{Notification: n, CreatedAt: r.ErasedAt, Sinks: names}}}); err != nil {
		return r, fmt.Errorf("privacy: notify the erasure: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return r, fmt.Errorf("privacy: notify the erasure: %w", err)
	}
	r.NotificationID = n.ID
	return r, nil
}
