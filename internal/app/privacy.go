package app

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
)

// A person's rights over the data kycd keeps about them: access
// (ExportSubject, one document with everything) and erasure (EraseSubject,
// which also tells every sink with kyc.subject.erased). Which records
// belong to the subject is decided here once (subjectScope, kycd.Needles,
// kycd.SubjectNotificationIDs), and what of them is personal data by the
// domain (kycd.EraseChecks, kycd.ErasePayload); the stores read and write
// the rows they are pointed to (kycd.SubjectTx).

// subjectScope is what a subject's records are found by: its sessions
// (and through their history, their notifications), its events, and the
// quarantine items that name it.
type subjectScope struct {
	subject     kycd.SubjectRef
	level       string
	levelAt     time.Time
	sessions    []*kycd.Session // newest status first
	events      []kycd.EventKey // by seq
	quarantined []string        // item ids
}

// privacySubject resolves the subject of an export or erasure
// (ResolveSubject). An id that kycd knows under no type may still be named
// by quarantined bodies, whose refused events made no session, level or
// event: then unknown is true and readScope decides in the transaction.
// Only a UUID is searched for so (Ralio's subject ids are UUIDs): a short
// id would be found in bodies that do not name it.
func (s *Service) privacySubject(ctx context.Context, id, typ string) (sub kycd.SubjectRef, unknown bool, err error) {
	sub, known, err := s.resolveSubject(ctx, id, typ)
	if err != nil && !known && kycd.ErrorCode(err) == kycd.ENOTFOUND {
		if _, perr := uuid.Parse(sub.ID); perr == nil {
			return sub, true, nil
		}
	}
	return sub, false, err
}

// readScope reads the subject's row, sessions, events and the quarantine
// items that name it; ENOTFOUND when the subject has neither a row nor a
// session. A subject that privacySubject found unknown is taken from the
// quarantine alone (readQuarantineOnly).
func readScope(ctx context.Context, tx kycd.SubjectTx, sub kycd.SubjectRef, unknown bool) (*subjectScope, error) {
	sc := &subjectScope{subject: sub}
	level, at, err := tx.SubjectLevel(ctx, sub)
	known := err == nil
	if err != nil && kycd.ErrorCode(err) != kycd.ENOTFOUND {
		return nil, err
	}
	sc.level, sc.levelAt = level, at
	if sc.sessions, err = tx.SubjectSessions(ctx, sub); err != nil {
		return nil, err
	}
	if !known && len(sc.sessions) == 0 {
		if unknown {
			return readQuarantineOnly(ctx, tx, sc)
		}
		return nil, kycd.Errorf(kycd.ENOTFOUND, "subject %s %s not found", sub.Type, sub.ID)
	}
	if sc.events, err = tx.SubjectEvents(ctx, sub, sc.sessionIDs()); err != nil {
		return nil, err
	}
	if sc.quarantined, err = tx.QuarantineNaming(ctx, sc.eventIDs(), sc.needles()); err != nil {
		return nil, err
	}
	return sc, nil
}

// readQuarantineOnly finds a subject kycd knows under no type through the
// quarantined bodies that name its id (kycd.Needles; a refused body names
// no session kycd keeps, and no event of the subject is stored) or that an
// erasure of it emptied. A body does not say which of kycd's types its id
// is, so the type must be given: EINVALID without one, ENOTFOUND when no
// item names the id (whatever the type).
func readQuarantineOnly(ctx context.Context, tx kycd.SubjectTx, sc *subjectScope) (*subjectScope, error) {
	var err error
	if sc.quarantined, err = tx.QuarantineNaming(ctx, nil, sc.needles()); err != nil {
		return nil, err
	}
	if len(sc.quarantined) == 0 {
		return nil, kycd.Errorf(kycd.ENOTFOUND, "subject %s not found", sc.subject.ID)
	}
	if sc.subject.Type == "" {
		return nil, kycd.Errorf(kycd.EINVALID, "subject %s is known only through quarantined bodies, which do not say its type: give it (user, related-party or business)", sc.subject.ID)
	}
	return sc, nil
}

func (sc *subjectScope) sessionIDs() []string {
	ids := make([]string, len(sc.sessions))
	for i, s := range sc.sessions {
		ids[i] = s.ID
	}
	return ids
}

func (sc *subjectScope) eventIDs() []string { return eventIDs(sc.events) }

// notificationIDs are the ids of every notification that may name the
// subject.
func (sc *subjectScope) notificationIDs() []string {
	history := map[string][]string{}
	for _, s := range sc.sessions {
		for _, h := range s.History {
			history[s.ID] = append(history[s.ID], h.EventID)
		}
	}
	return kycd.SubjectNotificationIDs(sc.eventIDs(), history)
}

// needles are what a quarantined body that names the subject holds.
func (sc *subjectScope) needles() [][]byte { return kycd.Needles(sc.subject, sc.sessionIDs()) }

func eventIDs(keys []kycd.EventKey) []string {
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = k.ID
	}
	return ids
}

func seqs(keys []kycd.EventKey) []int64 {
	out := make([]int64, len(keys))
	for i, k := range keys {
		out[i] = k.Seq
	}
	return out
}

// ExportSubject returns everything kycd holds about the subject of id (of
// type typ when given) as of now, once a's read is in the audit trail: its
// level, its sessions, its events with their bodies (those of its sessions,
// or that name it), the notifications of those events and sessions with
// their deliveries, and the quarantined bodies that name it or its
// sessions or share an event id with its events. Bodies are shown with
// U+FFFD for bytes that are not UTF-8 (kycd.ValidUTF8), so the document is
// JSON that any parser reads. A subject known only through quarantined
// bodies (readQuarantineOnly) is exported with those, under the type
// given. EINVALID for an unknown type, or no type for such a subject;
// ENOTFOUND for a subject kycd does not know and no quarantined body
// names; EUNAVAILABLE when the read could not be recorded (nothing is
// shown then).
func (s *Service) ExportSubject(ctx context.Context, a Actor, id, typ string) (*kycd.SubjectExport, error) {
	x, err := s.exportSubject(ctx, id, typ)
	target, detail := kycd.SubjectTarget(kycd.SubjectRef{Type: typ, ID: canonicalID(id)}), ""
	if err == nil {
		target = kycd.SubjectTarget(x.Subject)
		detail = fmt.Sprintf("sessions=%d events=%d notifications=%d quarantine=%d", len(x.Sessions), len(x.Events), len(x.Notifications), len(x.Quarantine))
	}
	if aerr := s.Store.AddAudit(context.WithoutCancel(ctx), s.entry(a, kycd.AuditSubjectExport, target, err, detail)); aerr != nil {
		s.logger().ErrorContext(ctx, "could not record an audit entry", "action", kycd.AuditSubjectExport, "target", target, "err", aerr)
		if err == nil {
			return nil, kycd.Errorf(kycd.EUNAVAILABLE, "the export could not be recorded in the audit trail; try again")
		}
	}
	return x, err
}

func (s *Service) exportSubject(ctx context.Context, id, typ string) (*kycd.SubjectExport, error) {
	sub, unknown, err := s.privacySubject(ctx, id, typ)
	if err != nil {
		return nil, err
	}
	// The transaction finds the subject's records; each is then read by
	// its id, outside it, so that a big export does not hold it.
	tx, err := s.Store.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	sc, err := readScope(ctx, tx, sub, unknown)
	if err != nil {
		return nil, err
	}
	if err := tx.Rollback(ctx); err != nil {
		return nil, err
	}

	x := &kycd.SubjectExport{ExportedAt: s.now(), Subject: sub, Level: sc.level, LevelAt: sc.levelAt, Sessions: sc.sessions,
		Events: []*kycd.EventRecord{}, Notifications: []*kycd.NotificationRecord{}, Quarantine: []*kycd.QuarantineRecord{}}
	if x.Sessions == nil {
		x.Sessions = []*kycd.Session{}
	}
	for _, sess := range x.Sessions {
		sess.Complete()
	}
	for _, e := range sc.events {
		rec, err := s.Store.Event(ctx, e.ID)
		if err != nil {
			return nil, err
		}
		if rec.Body != nil {
			rec.Body = kycd.ValidUTF8(rec.Body)
		}
		x.Events = append(x.Events, rec)
	}
	sent, err := s.Notifications(ctx, sc.notificationIDs())
	if err != nil {
		return nil, err
	}
	for _, n := range sent {
		for _, d := range n.Deliveries {
			d.Payload = nil
		}
		x.Notifications = append(x.Notifications, &kycd.NotificationRecord{ID: n.ID, Type: n.Type, CreatedAt: n.CreatedAt,
			Notification: n.Payload, Deliveries: n.Deliveries})
	}
	for _, id := range sc.quarantined {
		q, err := s.Store.QuarantineItem(ctx, id)
		if err != nil {
			return nil, err
		}
		x.Quarantine = append(x.Quarantine, kycd.NewQuarantineRecord(q))
	}
	slices.SortFunc(x.Quarantine, func(a, b *kycd.QuarantineRecord) int {
		if c := a.ReceivedAt.Compare(b.ReceivedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return x, nil
}

// EraseSubject removes the personal data of the subject of id (of type
// typ when given) everywhere kycd keeps it, in one transaction that
// excludes projections and records a's erasure in the audit trail: the raw
// bodies of its events, the reason messages of its sessions
// (kycd.EraseChecks), the personal data of its notifications
// (kycd.ErasePayload; deliveries send those), and its quarantined bodies
// (the item stays, resolved as kycd.ErasedReplayResult). Ids, body hashes,
// statuses, timestamps and reason codes stay, so a late copy of an erased
// event is still a duplicate; erasing again changes nothing more. It then
// notifies kyc.subject.erased to every sink whose events take it (the
// notification's id derives from the subject and the erasure's time, so it
// is written once). Callers should let the projection catch up first, so
// that events acknowledged before the erasure are erased too.
//
// When the store may keep copies of what it overwrote and cannot drop them
// now (kycd.CopyDropper), the erasure stands: the receipt's Warning says so
// and the failure is logged. A subject known only through quarantined
// bodies (readQuarantineOnly) is erased and notified the same way, under
// the type given. EINVALID for an unknown type, or no type for such a
// subject; ENOTFOUND for a subject kycd does not know and no quarantined
// body names. When the erasure is done but its notification could not be
// written, the receipt comes with the error.
func (s *Service) EraseSubject(ctx context.Context, a Actor, id, typ string) (*kycd.ErasureReceipt, error) {
	sub, unknown, err := s.privacySubject(ctx, id, typ)
	if err != nil {
		s.recordFailure(ctx, a, kycd.AuditSubjectErase, kycd.SubjectTarget(kycd.SubjectRef{Type: typ, ID: canonicalID(id)}), err)
		return nil, err
	}
	target := kycd.SubjectTarget(sub)
	r := &kycd.ErasureReceipt{Subject: sub, ErasedAt: s.now()}
	err = s.Audited(ctx, a, kycd.AuditSubjectErase, target, func(tx kycd.Tx) (string, error) {
		if err := erase(ctx, tx, sub, unknown, r); err != nil {
			return "", err
		}
		c := r.Erased
		return fmt.Sprintf("eventBodies=%d sessions=%d notifications=%d quarantine=%d", c.EventBodies, c.Sessions, c.Notifications, c.Quarantine), nil
	})
	if err != nil {
		return nil, err
	}
	r.Warning = s.dropCopies(ctx, "erasure")

	n := kycd.NewErasedNotification(sub, r.ErasedAt)
	names := kycd.SinksFor(s.Sinks, n.Type)
	if len(names) == 0 {
		return r, nil
	}
	if err := s.notify(ctx, &kycd.Outgoing{Notification: n, CreatedAt: r.ErasedAt, Sinks: names}); err != nil {
		err = fmt.Errorf("notify the erasure: %w", err)
		s.recordFailure(ctx, a, kycd.AuditSubjectErase, target, err)
		return r, err
	}
	r.NotificationID = n.ID
	s.wake(names...)
	return r, nil
}

// erase erases the subject's personal data in tx and counts it in r.
func erase(ctx context.Context, tx kycd.Tx, sub kycd.SubjectRef, unknown bool, r *kycd.ErasureReceipt) error {
	if err := tx.ExcludeProjections(ctx); err != nil {
		return err
	}
	sc, err := readScope(ctx, tx, sub, unknown)
	if err != nil {
		return err
	}
	n, err := eraseSessions(ctx, tx, sc.sessions)
	if err != nil {
		return err
	}
	r.Erased.Sessions = n
	if r.Erased.Notifications, err = eraseNotifications(ctx, tx, sc.notificationIDs()); err != nil {
		return err
	}
	if r.Erased.Quarantine, err = tx.ClearQuarantineBodies(ctx, sc.quarantined, r.ErasedAt, kycd.ErasedReplayResult, sub.ID); err != nil {
		return err
	}
	r.Erased.EventBodies, err = tx.ClearLogBodies(ctx, seqs(sc.events))
	return err
}

// eraseSessions removes the reason messages of sessions and counts the
// sessions that had any.
func eraseSessions(ctx context.Context, tx kycd.SubjectTx, sessions []*kycd.Session) (int, error) {
	n := 0
	for _, sess := range sessions {
		checks, changed := kycd.EraseChecks(sess.Checks)
		if !changed {
			continue
		}
		if err := tx.SetSessionChecks(ctx, sess.ID, checks); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// eraseNotifications removes the personal data of the notifications among
// ids and counts those that had any.
func eraseNotifications(ctx context.Context, tx kycd.SubjectTx, ids []string) (int, error) {
	payloads, err := tx.NotificationPayloads(ctx, ids)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range slices.Sorted(maps.Keys(payloads)) {
		erased, changed, err := kycd.ErasePayload(payloads[id])
		if err != nil {
			return n, fmt.Errorf("notification %s: %w", id, err)
		}
		if !changed {
			continue
		}
		if err := tx.SetNotificationPayload(ctx, id, erased); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// notify writes a notification that no event caused through a projection
// transaction, as the watchdog does.
func (s *Service) notify(ctx context.Context, out *kycd.Outgoing) error {
	tx, err := s.Store.BeginProjection(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if err := tx.Apply(ctx, &kycd.Plan{Notifications: []*kycd.Outgoing{out}}); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// dropCopies asks a store that keeps copies of overwritten pages to drop
// them, after what (an erasure, a purge) removed personal data, and
// returns a warning for the receipt when it could not ("" when it could,
// or when the store keeps none).
func (s *Service) dropCopies(ctx context.Context, what string) string {
	d, ok := s.Store.(kycd.CopyDropper)
	if !ok {
		return ""
	}
	if err := d.DropCopies(ctx); err != nil {
		s.logger().WarnContext(ctx, "the "+what+" is done, but the database files may still hold copies of the removed data until the next checkpoint", "err", err)
		return "the database files may still hold copies of the removed data until the next checkpoint (the next erasure or purge tries again)"
	}
	return ""
}

// recordFailure records that a's action on target failed with err, even if
// ctx is done.
func (s *Service) recordFailure(ctx context.Context, a Actor, action, target string, err error) {
	if aerr := s.Store.AddAudit(context.WithoutCancel(ctx), s.entry(a, action, target, err, "")); aerr != nil {
		s.logger().ErrorContext(ctx, "could not record an audit entry", "action", action, "target", target, "err", aerr)
	}
}
