package app

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/kycd/kycd"
)

// What operators do with the outbox: retry a delivery (or every dead one),
// give it to another sink, or give it up. Each change is audited as the
// API names it: delivery.<action> on delivery:<id>.

// RetryDelivery makes the delivery id due now in a new round of attempts,
// whatever its state. ENOTFOUND for an unknown id.
func (s *Service) RetryDelivery(ctx context.Context, a Actor, id string) error {
	var sink string
	err := s.Audited(ctx, a, kycd.AuditDeliveryRetry, kycd.AuditTarget("delivery", id), func(tx kycd.Tx) (string, error) {
		d, err := tx.LockDelivery(ctx, id)
		if err != nil {
			return "", err
		}
		sink = d.Sink
		return "", tx.StartRound(ctx, s.now(), id)
	})
	if err == nil {
		s.wake(sink)
	}
	return err
}

// DeadTarget is the audit target of a retry of every dead delivery.
const DeadTarget = "deliveries:dead"

// RetryDeadDeliveries makes every dead delivery due now in a new round of
// attempts and reports how many.
func (s *Service) RetryDeadDeliveries(ctx context.Context, a Actor) (int, error) {
	var n int
	err := s.Audited(ctx, a, kycd.AuditDeliveryRetry, DeadTarget, func(tx kycd.Tx) (string, error) {
		ids, err := tx.DeliveryIDs(ctx, kycd.DeliveryDead, "")
		if err != nil {
			return "", err
		}
		n = len(ids)
		return fmt.Sprintf("%d dead deliveries", n), tx.StartRound(ctx, s.now(), ids...)
	})
	if err != nil {
		return 0, err
	}
	s.wake(s.sinkNames()...)
	return n, nil
}

// MoveDelivery gives the pending or dead delivery id to the configured sink
// named sink, due now in a new round of attempts, and notes on the delivery
// that a did it. ENOTFOUND for an unknown id; EINVALID for no sink or one
// that is not configured; ECONFLICT for a delivery that is delivered,
// dropped, being sent or already the sink's, or whose notification has a
// delivery to that sink already.
func (s *Service) MoveDelivery(ctx context.Context, a Actor, id, sink string) error {
	err := s.Audited(ctx, a, kycd.AuditDeliveryMove, kycd.AuditTarget("delivery", id), func(tx kycd.Tx) (string, error) {
		at := s.now()
		d, err := s.changeable(ctx, tx, id, at)
		if err != nil {
			return "", err
		}
		if err := kycd.CheckMove(d.Sink, sink); err != nil {
			return "", err
		}
		to, err := tx.LockSink(ctx, sink)
		switch {
		case kycd.ErrorCode(err) == kycd.ENOTFOUND, err == nil && !to.Configured:
			return "", kycd.Errorf(kycd.EINVALID, "sink %q is not configured", sink)
		case err != nil:
			return "", err
		}
		switch _, err := tx.DeliveryTo(ctx, d.NotificationID, sink); kycd.ErrorCode(err) {
		case kycd.ENOTFOUND:
		case "":
			return "", kycd.Errorf(kycd.ECONFLICT, "notification %s has a delivery to %s already; drop this one instead", d.NotificationID, sink)
		default:
			return "", err
		}
		if err := tx.SetDeliverySink(ctx, id, sink, at); err != nil {
			return "", err
		}
		if err := tx.StartRound(ctx, at, id); err != nil {
			return "", err
		}
		return "to sink " + sink, tx.AddDeliveryAction(ctx, id, kycd.DeliveryAction{At: at, Actor: a.Name, Action: kycd.ActionMove, From: d.Sink, To: sink})
	})
	if err != nil {
		return err
	}
	s.logger().InfoContext(ctx, "delivery moved by an operator", "delivery_id", id, "sink", sink, "actor", a.Name)
	s.wake(sink)
	return nil
}

// DropDelivery gives up the pending or dead delivery id for good (state
// dropped), notes on it that a did it, and returns it as it is then.
// ENOTFOUND for an unknown id; ECONFLICT for a delivery delivered, dropped
// already or being sent.
func (s *Service) DropDelivery(ctx context.Context, a Actor, id string) (*kycd.DeliveryRow, error) {
	var d *kycd.DeliveryRow
	err := s.Audited(ctx, a, kycd.AuditDeliveryDrop, kycd.AuditTarget("delivery", id), func(tx kycd.Tx) (string, error) {
		at := s.now()
		var err error
		if d, err = s.changeable(ctx, tx, id, at); err != nil {
			return "", err
		}
		if err := tx.SetDeliveryState(ctx, id, kycd.DeliveryDropped, at); err != nil {
			return "", err
		}
		d.State, d.LeaseUntil = kycd.DeliveryDropped, time.Time{}
		return "", tx.AddDeliveryAction(ctx, id, kycd.DeliveryAction{At: at, Actor: a.Name, Action: kycd.ActionDrop, From: d.Sink})
	})
	if err != nil {
		return nil, err
	}
	s.logger().InfoContext(ctx, "delivery dropped by an operator", "delivery_id", id, "actor", a.Name)
	return d, nil
}

// changeable reads the delivery id, held for the transaction, if an
// operator may change it at at (kycd.CheckChange).
func (s *Service) changeable(ctx context.Context, tx kycd.Tx, id string, at time.Time) (*kycd.DeliveryRow, error) {
	d, err := tx.LockDelivery(ctx, id)
	if err != nil {
		return nil, err
	}
	return d, kycd.CheckChange(id, d.State, d.Leased(at))
}

// sinkNames are the names of the sinks of s.Sinks.
func (s *Service) sinkNames() []string {
	names := make([]string, len(s.Sinks))
	for i, r := range s.Sinks {
		names[i] = r.Name
	}
	return names
}

// Deliveries lists the deliveries f selects, oldest first (by creation), a
// page at a time, without their notifications, each flagged Orphaned or
// SinkPaused as its sink is (kycd.FlagSinks): f.Orphaned takes the pending
// and dead deliveries of the sinks that are not configured. EINVALID for
// a state that is none, a time range that ends before it begins, or a
// cursor that is not one of this list's.
func (s *Service) Deliveries(ctx context.Context, f kycd.DeliveryFilter) (*kycd.DeliveryPage, error) {
	limit := kycd.PageLimit(f.Limit)
	q, err := deliveryQuery(kycd.DeliverySelector{State: f.State, Sink: f.Sink, DeliveryMatch: f.DeliveryMatch})
	if err != nil {
		return nil, err
	}
	q.Limit = limit + 1
	if f.Cursor != "" {
		if q.After, q.AfterID, err = kycd.DecodeCursor(f.Cursor); err != nil {
			return nil, err
		}
	}
	sinks, err := s.ListSinks(ctx)
	if err != nil {
		return nil, err
	}
	if f.Orphaned {
		waiting := []string{kycd.DeliveryPending, kycd.DeliveryDead}
		if f.State != "" && !slices.Contains(waiting, f.State) {
			return &kycd.DeliveryPage{Items: []*kycd.Delivery{}}, nil
		}
		if f.State == "" {
			q.States = waiting
		}
		for _, k := range sinks {
			if k.Configured {
				q.NotSinks = append(q.NotSinks, k.Name)
			}
		}
	}
	rows, err := s.Store.Deliveries(ctx, q)
	if err != nil {
		return nil, err
	}
	kycd.FlagSinks(rows, sinks)
	for _, d := range rows {
		d.NameConcerned()
		d.Payload = nil
	}
	page := kycd.NewPage(rows, limit, func(d *kycd.Delivery) string { return kycd.EncodeCursor(d.CreatedAt, d.ID) })
	return &kycd.DeliveryPage{Items: page.Items, NextCursor: page.NextCursor}, nil
}

// Delivery returns the delivery id with its attempts, the operators'
// actions and its notification, flagged Orphaned or SinkPaused as its sink
// is (kycd.FlagSinks), with credentials struck from its errors
// (kycd.RedactText); or ENOTFOUND. The payload is as sent: the front end
// leaves out or audits its personal data.
func (s *Service) Delivery(ctx context.Context, id string) (*kycd.Delivery, error) {
	d, err := s.Store.Delivery(ctx, id)
	if err != nil {
		return nil, err
	}
	sinks, err := s.ListSinks(ctx)
	if err != nil {
		return nil, err
	}
	kycd.FlagSinks([]*kycd.Delivery{d}, sinks)
	RedactDelivery(d)
	return d, nil
}

// Notifications returns the notifications among ids that exist, oldest
// first, each with its deliveries flagged as Delivery flags them.
func (s *Service) Notifications(ctx context.Context, ids []string) ([]*kycd.SentNotification, error) {
	sent, err := s.Store.Notifications(ctx, ids)
	if err != nil {
		return nil, err
	}
	sinks, err := s.ListSinks(ctx)
	if err != nil {
		return nil, err
	}
	for _, n := range sent {
		kycd.FlagSinks(n.Deliveries, sinks)
	}
	return sent, nil
}

// RedactDelivery strikes credentials from the errors of a delivery
// recorded before kycd redacted them as it recorded them.
func RedactDelivery(d *kycd.Delivery) {
	d.LastError = kycd.RedactText(d.LastError)
	for i := range d.Attempts {
		d.Attempts[i].Error = kycd.RedactText(d.Attempts[i].Error)
		d.Attempts[i].ResponseBody = kycd.RedactText(d.Attempts[i].ResponseBody)
	}
}
