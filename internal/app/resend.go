package app

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
)

// ResendNotification starts a new round of the notification id, to the
// sink named sink or, when sink is "", to every configured sink that takes
// its type (kycd.ResendRoute over the sinks the last kycd serve to start
// registered). A sink that has a delivery of the notification gets that
// delivery due now in a new round of attempts, whatever its state; a sink
// without one gets a new pending delivery due now. It reports what it did
// per sink, in the sinks' order, and is audited as notification.resend on
// notification:<id>. ENOTFOUND for an unknown notification; EINVALID for a
// sink that is not configured or does not take the type.
func (s *Service) ResendNotification(ctx context.Context, a Actor, id, sink string) ([]kycd.Resent, error) {
	out := []kycd.Resent{}
	err := s.Audited(ctx, a, kycd.AuditNotificationResend, kycd.AuditTarget("notification", id), func(tx kycd.Tx) (string, error) {
		typ, err := tx.LockNotification(ctx, id)
		if err != nil {
			return "", err
		}
		registered, err := tx.RegisteredSinks(ctx)
		if err != nil {
			return "", err
		}
		slices.SortFunc(registered, func(a, b *kycd.SinkInfo) int { return strings.Compare(a.Name, b.Name) })
		sinks, err := kycd.ResendRoute(kycd.ConfiguredRoutes(registered), sink)(typ)
		if err != nil {
			return "", err
		}
		at := s.now()
		for _, name := range sinks {
			r, err := s.resendTo(ctx, tx, id, name, at)
			if err != nil {
				return "", err
			}
			out = append(out, r)
		}
		return "sink " + sink, nil
	})
	if err != nil {
		return nil, err
	}
	s.logger().InfoContext(ctx, "notification resent by an operator", "notification_id", id, "deliveries", len(out), "actor", a.Name)
	names := make([]string, len(out))
	for i, r := range out {
		names[i] = r.Sink
	}
	s.wake(names...)
	return out, nil
}

// resendTo makes the notification's delivery to sink due at at, a new one
// if the sink has none.
func (s *Service) resendTo(ctx context.Context, tx kycd.Tx, id, sink string, at time.Time) (kycd.Resent, error) {
	r := kycd.Resent{Sink: sink}
	d, err := tx.DeliveryTo(ctx, id, sink)
	switch kycd.ErrorCode(err) {
	case "":
		r.DeliveryID = d.ID
		return r, tx.StartRound(ctx, at, d.ID)
	case kycd.ENOTFOUND:
	default:
		return r, err
	}
	did, err := uuid.NewV7()
	if err != nil {
		return r, fmt.Errorf("delivery id: %w", err)
	}
	r.DeliveryID, r.Created = did.String(), true
	return r, tx.AddDelivery(ctx, kycd.DeliveryRow{ID: r.DeliveryID, NotificationID: id, Sink: sink, State: kycd.DeliveryPending}, at)
}
