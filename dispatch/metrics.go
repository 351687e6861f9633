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
}

// NewMetrics registers the dispatcher's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kycd_delivery_attempts_total",
			Help: "Notification delivery attempts by sink and outcome (delivered, failed, rejected).",
		}, []string{"sink", "outcome"}),
	}
	reg.MustRegister(m.Attempts)
	return m
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
		"kycd_outbox_deliveries", "Notification deliveries in the outbox by state (pending, delivered, dead).", []string{"state"}, nil)})
}

func (c outboxDepth) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c outboxDepth) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	depth, err := c.store.OutboxDepth(ctx)
	if err != nil {
		return
	}
	for state, n := range depth {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), state)
	}
}
