package app

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kycd/kycd"
)

// Dead-letter triage: the deliveries a filter matches, counted by sink and
// last error, and retried or dropped all at once. Each bulk change is one
// audit entry, delivery.retry or delivery.drop on FilterTarget, whose
// detail names the filter and the counts.

// FilterTarget is the audit target of a bulk change by filter.
const FilterTarget = "deliveries:filter"

// CheckDeliveryState says whether state is "" or a delivery state:
// EINVALID naming them otherwise.
func CheckDeliveryState(state string) error {
	if state != "" && !slices.Contains(kycd.DeliveryStates, state) {
		return kycd.Errorf(kycd.EINVALID, "state must be %s", strings.Join(kycd.DeliveryStates, ", "))
	}
	return nil
}

// deliveryQuery is the store query of what sel selects: EINVALID for a
// state that is none, or a time range that ends before it begins.
func deliveryQuery(sel kycd.DeliverySelector) (kycd.DeliveryQuery, error) {
	if err := CheckDeliveryState(sel.State); err != nil {
		return kycd.DeliveryQuery{}, err
	}
	m := sel.DeliveryMatch
	if !m.Since.IsZero() && !m.Until.IsZero() && !m.Until.After(m.Since) {
		return kycd.DeliveryQuery{}, kycd.Errorf(kycd.EINVALID, "until must be after since")
	}
	m.Since, m.Until = m.Since.UTC(), m.Until.UTC()
	m.SessionID, m.SubjectID = canonicalID(m.SessionID), canonicalID(m.SubjectID)
	q := kycd.DeliveryQuery{Sink: sel.Sink, DeliveryMatch: m}
	if sel.State != "" {
		q.States = []string{sel.State}
	}
	return q, nil
}

// DeliverySummary counts the deliveries sel selects by sink and last error
// (credentials struck from it, kycd.RedactText), the largest group first.
// EINVALID as Deliveries.
func (s *Service) DeliverySummary(ctx context.Context, sel kycd.DeliverySelector) (*kycd.DeliverySummary, error) {
	q, err := deliveryQuery(sel)
	if err != nil {
		return nil, err
	}
	groups, err := s.Store.DeliverySummary(ctx, q)
	if err != nil {
		return nil, err
	}
	sum := &kycd.DeliverySummary{Groups: nonNil(groups)}
	for i := range sum.Groups {
		sum.Groups[i].LastError = kycd.RedactText(sum.Groups[i].LastError)
		sum.Total += sum.Groups[i].Count
	}
	return sum, nil
}

// RetryMatching makes every delivery sel selects that is pending or dead
// and not being sent (kycd.CanChangeInBulk) due now, in a new round of
// attempts, and reports how many it matched and retried. EINVALID for a
// selector that names nothing (it would take every delivery), or as
// Deliveries.
func (s *Service) RetryMatching(ctx context.Context, a Actor, sel kycd.DeliverySelector) (kycd.BulkChange, error) {
	var res kycd.BulkChange
	var sinks []string
	err := s.bulk(ctx, a, kycd.AuditDeliveryRetry, sel, func(tx kycd.Tx, at time.Time, rows []*kycd.DeliveryRow) error {
		var ids []string
		for _, d := range rows {
			if kycd.CanChangeInBulk(d.State, d.Leased(at)) {
				ids = append(ids, d.ID)
				if !slices.Contains(sinks, d.Sink) {
					sinks = append(sinks, d.Sink)
				}
			}
		}
		res = kycd.BulkChange{Matched: len(rows), Changed: len(ids)}
		return tx.StartRound(ctx, at, ids...)
	}, &res)
	if err != nil {
		return kycd.BulkChange{}, err
	}
	s.wake(sinks...)
	return res, nil
}

// DropMatching gives up for good every delivery sel selects that is
// pending or dead and not being sent (kycd.CanChangeInBulk), noting on
// each that a did it, and reports how many it matched and dropped.
// EINVALID as RetryMatching.
func (s *Service) DropMatching(ctx context.Context, a Actor, sel kycd.DeliverySelector) (kycd.BulkChange, error) {
	var res kycd.BulkChange
	err := s.bulk(ctx, a, kycd.AuditDeliveryDrop, sel, func(tx kycd.Tx, at time.Time, rows []*kycd.DeliveryRow) error {
		res = kycd.BulkChange{Matched: len(rows)}
		for _, d := range rows {
			if !kycd.CanChangeInBulk(d.State, d.Leased(at)) {
				continue
			}
			if err := tx.SetDeliveryState(ctx, d.ID, kycd.DeliveryDropped, at); err != nil {
				return err
			}
			if err := tx.AddDeliveryAction(ctx, d.ID, kycd.DeliveryAction{At: at, Actor: a.Name, Action: kycd.ActionDrop, From: d.Sink}); err != nil {
				return err
			}
			res.Changed++
		}
		return nil
	}, &res)
	if err != nil {
		return kycd.BulkChange{}, err
	}
	s.logger().InfoContext(ctx, "deliveries dropped by an operator", "matched", res.Matched, "dropped", res.Changed, "actor", a.Name)
	return res, nil
}

// bulk runs change on the deliveries sel selects, held for one audited
// transaction whose entry's detail names the filter and res's counts; a
// filter refused is audited too.
func (s *Service) bulk(ctx context.Context, a Actor, action string, sel kycd.DeliverySelector,
	change func(tx kycd.Tx, at time.Time, rows []*kycd.DeliveryRow) error, res *kycd.BulkChange) error {
	return s.Audited(ctx, a, action, FilterTarget, func(tx kycd.Tx) (string, error) {
		if sel.IsZero() {
			return "", kycd.Errorf(kycd.EINVALID, "name at least one filter (state, sink, type, session, subject, since, until or error), e.g. {\"state\":\"dead\",\"sink\":\"crm\"}: an empty filter would take every delivery")
		}
		q, err := deliveryQuery(sel)
		if err != nil {
			return "", err
		}
		rows, err := tx.MatchingDeliveries(ctx, q)
		if err != nil {
			return "", err
		}
		if err := change(tx, s.now(), rows); err != nil {
			return "", err
		}
		return kycd.Escaped(fmt.Sprintf("%s; matched %d, changed %d", describeSelector(sel), res.Matched, res.Changed)), nil
	})
}

// describeSelector names sel's criteria, for an audit entry's detail.
func describeSelector(sel kycd.DeliverySelector) string {
	var parts []string
	add := func(name, v string) {
		if v != "" {
			parts = append(parts, fmt.Sprintf("%s=%q", name, v))
		}
	}
	add("state", sel.State)
	add("sink", sel.Sink)
	add("type", sel.Type)
	add("session", sel.SessionID)
	add("subject", sel.SubjectID)
	if !sel.Since.IsZero() {
		add("since", sel.Since.UTC().Format(time.RFC3339Nano))
	}
	if !sel.Until.IsZero() {
		add("until", sel.Until.UTC().Format(time.RFC3339Nano))
	}
	add("error", sel.Error)
	return "filter " + strings.Join(parts, " ")
}
