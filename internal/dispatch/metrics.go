package dispatch

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kycd/kycd"
)

// Metrics are the dispatcher's Prometheus metrics.
type Metrics struct {
	Attempts *prometheus.CounterVec
	Duration *prometheus.HistogramVec
	// Latency is, by sink, the time from a delivery's creation to its
	// delivery: for a notification of a webhook, from the event's receipt
	// (its acknowledgement to Ralio) to the sink's acceptance.
	Latency *prometheus.HistogramVec
}

// NewMetrics registers the dispatcher's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kycd_delivery_attempts_total",
			Help: "Notification delivery attempts by sink (its name) and outcome (delivered, failed, rejected).",
		}, []string{"sink", "outcome"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "kycd_delivery_duration_seconds",
			Help: "How long a delivery attempt took, by sink (its name), whatever its outcome; a send is cut at 10 s.",
			// Up to the send timeout.
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"sink"}),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "kycd_delivery_latency_seconds",
			Help: "Time from a webhook's acknowledgement (the event's receipt) to its notification's delivery, by sink (its name), retries included; for a resend, a stalled-session or an erasure notification, from when it was made.",
			// From the usual few milliseconds to the retries' --retry-max-age.
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600},
		}, []string{"sink"}),
	}
	reg.MustRegister(m.Attempts, m.Duration, m.Latency)
	return m
}

// outboxAge reports, per sink, how long its oldest pending delivery has
// waited in its current round, read from the store at scrape time as the
// outbox depth is.
type outboxAge struct {
	store interface {
		OldestPending(context.Context) (map[string]time.Time, error)
	}
	sinks []string
	now   func() time.Time
	desc  *prometheus.Desc
}

// RegisterOutboxAge registers kycd_outbox_oldest_pending_age_seconds{sink}
// on reg: 0 for each of sinks with nothing pending, so a graph shows a
// line rather than a gap.
func RegisterOutboxAge(reg prometheus.Registerer, store kycd.Store, sinks []string) {
	reg.MustRegister(outboxAge{store: store, sinks: sinks, now: time.Now, desc: prometheus.NewDesc(
		"kycd_outbox_oldest_pending_age_seconds",
		"How long the oldest pending delivery of a sink has waited since its round of attempts began (its creation, or the retry, move, resume or resend that started a new round): the sink's lag.",
		[]string{"sink"}, nil)})
}

func (c outboxAge) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c outboxAge) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	oldest, err := c.store.OldestPending(ctx)
	if err != nil {
		return
	}
	now := c.now()
	for _, sink := range c.sinks {
		if _, ok := oldest[sink]; !ok {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, 0, sink)
		}
	}
	for sink, at := range oldest {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, max(0, now.Sub(at).Seconds()), sink)
	}
}

// outboxDepth reports deliveries by state, read from the store at scrape
// time so every replica reports the shared outbox as it is.
type outboxDepth struct {
	store kycd.Store
	desc  *prometheus.Desc
}

// RegisterOutboxDepth registers kycd_outbox_deliveries{state} on reg.
func RegisterOutboxDepth(reg prometheus.Registerer, store kycd.Store) {
	reg.MustRegister(outboxDepth{store: store, desc: prometheus.NewDesc(
		"kycd_outbox_deliveries", "Notification deliveries in the outbox by state (pending, delivered, dead, dropped).", []string{"state"}, nil)})
}

func (c outboxDepth) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c outboxDepth) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	depth, err := c.store.OutboxDepth(ctx)
	if err != nil {
		return
	}
	for _, state := range kycd.DeliveryStates {
		depth[state] += 0 // every state is a series, at 0 when no delivery is in it
	}
	for state, n := range depth {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), state)
	}
}

// sinkStates reports, per sink, the deliveries waiting (pending, dead), those
// orphaned by a configuration that no longer has the sink and whether a
// 410 paused it, read from the store at scrape time as the outbox depth
// is. The waiting deliveries are counted through the index on state, so a
// scrape costs what waits, not the whole outbox; delivered ones are
// counted as they go (Latency's count).
type sinkStates struct {
	store    SinkLister
	waiting  *prometheus.Desc
	orphaned *prometheus.Desc
	paused   *prometheus.Desc
}

// SinkLister lists the sinks with their waiting deliveries
// (app.Service.ListSinks).
type SinkLister interface {
	ListSinks(context.Context) ([]*kycd.SinkInfo, error)
}

// RegisterSinkStates registers kycd_sink_deliveries{sink,state},
// kycd_outbox_orphaned_deliveries{sink} and kycd_sink_paused{sink} on reg.
func RegisterSinkStates(reg prometheus.Registerer, store SinkLister) {
	reg.MustRegister(sinkStates{
		store: store,
		waiting: prometheus.NewDesc("kycd_sink_deliveries",
			"Deliveries of a sink waiting in a state: pending (due now or later) or dead (no further attempt until retried); 0 when none.", []string{"sink", "state"}, nil),
		orphaned: prometheus.NewDesc("kycd_outbox_orphaned_deliveries",
			"Pending and dead deliveries of a sink that is no longer configured: move them to another sink or drop them.", []string{"sink"}, nil),
		paused: prometheus.NewDesc("kycd_sink_paused",
			"1 while a sink is paused because its endpoint answered 410 Gone: its deliveries wait until an operator resumes it.", []string{"sink"}, nil),
	})
}

func (c sinkStates) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.waiting
	ch <- c.orphaned
	ch <- c.paused
}

func (c sinkStates) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	sinks, err := c.store.ListSinks(ctx)
	if err != nil {
		return
	}
	for _, s := range sinks {
		ch <- prometheus.MustNewConstMetric(c.waiting, prometheus.GaugeValue, float64(s.Pending), s.Name, kycd.DeliveryPending)
		ch <- prometheus.MustNewConstMetric(c.waiting, prometheus.GaugeValue, float64(s.Dead), s.Name, kycd.DeliveryDead)
		ch <- prometheus.MustNewConstMetric(c.orphaned, prometheus.GaugeValue, float64(s.Orphaned()), s.Name)
		paused := 0.0
		if !s.PausedAt.IsZero() {
			paused = 1
		}
		ch <- prometheus.MustNewConstMetric(c.paused, prometheus.GaugeValue, paused, s.Name)
	}
}
