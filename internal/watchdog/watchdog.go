// Package watchdog finds KYC sessions that nobody moves on: sessions in
// REVIEW for longer than a threshold, and related parties' invitations past
// their expiry. It counts them in a metric and notifies each once
// (kyc.session.stalled), so that someone follows up.
package watchdog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/app"
)

// Store is what the watchdog needs of a kycd.Store: the query of stalled
// sessions, and the projection transaction its notifications are written
// in (the same writer as every other notification, with its deliveries).
type Store interface {
	app.StalledReader
	BeginProjection(ctx context.Context) (kycd.ProjectionTx, error)
}

// Options configure a Watchdog. Zero values take the defaults noted.
type Options struct {
	Store Store
	// Sinks receive one delivery of every notification whose type they
	// take; with none, the watchdog notifies nothing (as the projector).
	Sinks []kycd.SinkRoute
	// ReviewAlertAfter is how long a session may stay in REVIEW
	// (kycd.DefaultReviewAlertAfter).
	ReviewAlertAfter time.Duration
	Every            time.Duration    // 1 min: between rounds of Run
	Now              func() time.Time // time.Now
	Logger           *slog.Logger
	Metrics          *Metrics // none when nil
	// Notified is called after a round committed notifications (to wake the
	// dispatcher); may be nil.
	Notified func()
	// CaughtUp reports whether every event acknowledged so far is
	// projected; a round waits for it, so that a decision still in the
	// backlog does not look stalled. May be nil.
	CaughtUp func(ctx context.Context) (bool, error)
}

// Watchdog looks for stalled sessions in rounds. A session is notified
// once for the state one event put it in: the notification id derives from
// the session and that event, and the store keeps a notification id once,
// so neither a second round nor another replica's watchdog notifies again.
type Watchdog struct {
	o Options
	// written are the notifications of the last round, by id: a round
	// writes only the others, so that a long-stalled session costs a read,
	// not a write, every round. After a restart the store's dedupe takes
	// over.
	written map[string]bool
}

// DefaultEvery is how often Run looks unless configured.
const DefaultEvery = time.Minute

// pageSize is how many stalled sessions one read and one write take.
const pageSize = 500

// New returns a Watchdog for o.
func New(o Options) (*Watchdog, error) {
	if o.Store == nil {
		return nil, errors.New("watchdog: a store is required")
	}
	if o.ReviewAlertAfter <= 0 {
		o.ReviewAlertAfter = kycd.DefaultReviewAlertAfter
	}
	if o.Every <= 0 {
		o.Every = DefaultEvery
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Watchdog{o: o, written: map[string]bool{}}, nil
}

// Round is what one round found.
type Round struct {
	Stalled map[string]int // by reason, every reason present
	Written int            // notifications handed to the store for the first time by this watchdog
}

// Run looks now, then every Options.Every, until ctx ends. A failed round
// is logged and the next one tries again.
func (w *Watchdog) Run(ctx context.Context) {
	t := time.NewTicker(w.o.Every)
	defer t.Stop()
	for {
		if _, err := w.Round(ctx); err != nil && ctx.Err() == nil {
			w.o.Logger.Warn("watchdog round failed; the next one tries again", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Round lists the sessions stalled now, a page at a time, writes the
// notification of each that this watchdog has not written yet, and sets
// the metric.
func (w *Watchdog) Round(ctx context.Context) (*Round, error) {
	if w.o.CaughtUp != nil {
		caught, err := w.o.CaughtUp(ctx)
		if err != nil {
			return nil, fmt.Errorf("watchdog: projection progress: %w", err)
		}
		if !caught {
			return nil, kycd.Errorf(kycd.EUNAVAILABLE, "watchdog: the projection is behind, and a session's decision may be in its backlog; the next round looks again")
		}
	}
	r := &Round{Stalled: map[string]int{kycd.StalledReviewOverdue: 0, kycd.StalledInvitationExpired: 0}}
	// One round, one now: every page is cut by the same thresholds.
	now := w.o.Now()
	req := app.StalledRequest{ReviewAlertAfter: w.o.ReviewAlertAfter, Limit: pageSize}
	written := map[string]bool{}
	for {
		page, err := app.ListStalled(ctx, w.o.Store, now, req)
		if err != nil {
			return nil, fmt.Errorf("watchdog: list stalled sessions: %w", err)
		}
		var out []*kycd.Outgoing
		for _, s := range page.Sessions {
			r.Stalled[s.Reason]++
			n := kycd.NewStalledNotification(s, w.o.ReviewAlertAfter)
			written[n.ID] = true
			if sinks := kycd.SinksFor(w.o.Sinks, n.Type); !w.written[n.ID] && len(sinks) > 0 {
				out = append(out, &kycd.Outgoing{Notification: n, CreatedAt: w.o.Now().UTC(), Sinks: sinks})
			}
		}
		if err := w.notify(ctx, out); err != nil {
			return nil, err
		}
		r.Written += len(out)
		for _, o := range out {
			n := o.Notification
			w.o.Logger.Info("session stalled: notified", "session_id", n.SessionID, "reason", n.StalledReason, "status", n.Status)
		}
		if page.NextCursor == "" {
			break
		}
		req.Cursor = page.NextCursor
	}
	w.written = written
	if m := w.o.Metrics; m != nil {
		for reason, n := range r.Stalled {
			m.Stalled.WithLabelValues(reason).Set(float64(n))
		}
	}
	if r.Written > 0 && w.o.Notified != nil {
		w.o.Notified()
	}
	return r, nil
}

// notify writes notifications in one projection transaction: a plan that
// projects no log entry. The store inserts a notification id once and
// gives deliveries only to the ones it inserted.
func (w *Watchdog) notify(ctx context.Context, out []*kycd.Outgoing) error {
	if len(out) == 0 {
		return nil
	}
	tx, err := w.o.Store.BeginProjection(ctx)
	if err != nil {
		return fmt.Errorf("watchdog: notify: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if err := tx.Apply(ctx, &kycd.Plan{Notifications: out}); err != nil {
		return fmt.Errorf("watchdog: notify: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("watchdog: notify: %w", err)
	}
	return nil
}

// Metrics are the watchdog's Prometheus metrics.
type Metrics struct {
	Stalled *prometheus.GaugeVec
}

// NewMetrics registers kycd_sessions_stalled{reason} on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{Stalled: prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kycd_sessions_stalled",
		Help: "Sessions stalled at the watchdog's last round, by reason (review_overdue, invitation_expired).",
	}, []string{"reason"})}
	reg.MustRegister(m.Stalled)
	return m
}
