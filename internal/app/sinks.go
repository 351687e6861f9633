package app

import (
	"context"
	"fmt"
	"time"

	"github.com/kycd/kycd"
)

// ListSinks lists every sink registered or named by a waiting delivery, by
// name, with its pending and dead deliveries counted (kycd.ListSinks).
func (s *Service) ListSinks(ctx context.Context) ([]*kycd.SinkInfo, error) {
	registered, err := s.Store.RegisteredSinks(ctx)
	if err != nil {
		return nil, err
	}
	waiting, err := s.Store.WaitingDeliveries(ctx)
	if err != nil {
		return nil, err
	}
	return kycd.ListSinks(registered, waiting), nil
}

// RegisterSinks records the sinks a starting kycd serve is configured with
// (Name, Type, Target, Events): these are configured, every other sink is
// not, and the deliveries those others still hold are orphaned. A sink's
// pause survives its registration.
func (s *Service) RegisterSinks(ctx context.Context, sinks []kycd.SinkInfo) error {
	return s.inTx(ctx, func(tx kycd.Tx) error {
		if err := tx.UnconfigureSinks(ctx); err != nil {
			return err
		}
		at := s.now()
		for _, k := range sinks {
			k.Configured, k.RegisteredAt = true, at
			if err := tx.PutSink(ctx, k); err != nil {
				return err
			}
		}
		return nil
	})
}

// PauseSink stops the claims of the sink name's deliveries (after its
// endpoint answered 410 Gone; reason says what it answered) until an
// operator resumes it. A sink never registered is recorded as configured;
// pausing a paused sink keeps the first pause.
func (s *Service) PauseSink(ctx context.Context, name, reason string) error {
	return s.inTx(ctx, func(tx kycd.Tx) error {
		at := s.now()
		k, err := tx.LockSink(ctx, name)
		switch {
		case kycd.ErrorCode(err) == kycd.ENOTFOUND:
			if err := tx.PutSink(ctx, kycd.SinkInfo{Name: name, Configured: true, RegisteredAt: at}); err != nil {
				return err
			}
		case err != nil:
			return err
		case !k.PausedAt.IsZero():
			return nil
		}
		return tx.SetSinkPause(ctx, name, at, reason)
	})
}

// ResumeSink lifts the pause of the sink name, notes that a did it, makes
// its pending deliveries due now in a new round of attempts and reports
// how many. ENOTFOUND for a sink never registered; resuming a sink that is
// not paused changes nothing and is no error.
func (s *Service) ResumeSink(ctx context.Context, a Actor, name string) (int, error) {
	r, err := s.ResumeSinkReport(ctx, a, name)
	return r.Pending, err
}

// SinkResume is what a resume found and did: whether the sink was paused,
// and how many of its pending deliveries are due again.
type SinkResume struct {
	WasPaused bool
	Pending   int
}

// ResumeSinkReport is ResumeSink, saying whether the sink was paused.
func (s *Service) ResumeSinkReport(ctx context.Context, a Actor, name string) (SinkResume, error) {
	var n int
	var paused bool
	err := s.Audited(ctx, a, kycd.AuditSinkResume, kycd.AuditTarget("sink", name), func(tx kycd.Tx) (string, error) {
		k, err := tx.LockSink(ctx, name)
		if err != nil {
			return "", err
		}
		paused = !k.PausedAt.IsZero()
		if paused {
			at := s.now()
			if err := tx.SetSinkPause(ctx, name, time.Time{}, ""); err != nil {
				return "", err
			}
			if err := tx.SetSinkResumed(ctx, name, a.Name, at); err != nil {
				return "", err
			}
			ids, err := tx.DeliveryIDs(ctx, kycd.DeliveryPending, name)
			if err != nil {
				return "", err
			}
			if err := tx.StartRound(ctx, at, ids...); err != nil {
				return "", err
			}
			n = len(ids)
		}
		if !paused {
			return "was not paused", nil
		}
		return fmt.Sprintf("%d pending deliveries due", n), nil
	})
	if err != nil {
		return SinkResume{}, err
	}
	if paused {
		s.logger().InfoContext(ctx, "sink resumed by an operator", "sink", name, "pending", n, "actor", a.Name)
		s.wake(name)
	}
	return SinkResume{WasPaused: paused, Pending: n}, nil
}
