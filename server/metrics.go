package server

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/ingest"
)

// Metrics are kycd's Prometheus metrics, on a registry of their own so tests
// and several servers in one process do not share state.
type Metrics struct {
	Registry          *prometheus.Registry
	EventsReceived    *prometheus.CounterVec
	IngestDuration    prometheus.Histogram
	SignatureFailures prometheus.Counter
	CommitBatchSize   prometheus.Histogram
	ProjectBatchSize  prometheus.Histogram
}

// NewMetrics registers kycd's metrics and the Go runtime's on a new registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		EventsReceived: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kycd_events_received_total",
			Help: "Webhook deliveries by Ralio event type and outcome: applied, stale or unhandled once projected; duplicate, invalid, conflict, unauthorized, unavailable, … as answered.",
		}, []string{"type", "outcome"}),
		IngestDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "kycd_ingest_duration_seconds",
			Help:    "Time from a webhook request's arrival to its answer.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		SignatureFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kycd_signature_failures_total",
			Help: "Webhook deliveries refused for a missing or wrong X-Signature.",
		}),
		CommitBatchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "kycd_commit_batch_size",
			Help:    "Events committed together to the event log in one transaction (group commit).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512},
		}),
		ProjectBatchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "kycd_projection_batch_size",
			Help:    "Log entries projected together in one transaction.",
			Buckets: []float64{1, 4, 16, 64, 256, 1024, 4096},
		}),
	}
	m.Registry.MustRegister(m.EventsReceived, m.IngestDuration, m.SignatureFailures, m.CommitBatchSize, m.ProjectBatchSize,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// IngestMetrics are the write path's hooks into m.
func (m *Metrics) IngestMetrics() ingest.Metrics {
	return ingest.Metrics{
		AppendBatch:  func(n int) { m.CommitBatchSize.Observe(float64(n)) },
		ProjectBatch: func(n int, _ time.Duration) { m.ProjectBatchSize.Observe(float64(n)) },
		EventProjected: func(typ, outcome string) {
			if outcome == kycd.OutcomeUnhandled {
				typ = "other"
			}
			m.EventsReceived.WithLabelValues(typ, outcome).Inc()
		},
	}
}

// RegisterBacklog exports the write path's backlog and lag as gauges.
func (m *Metrics) RegisterBacklog(in *ingest.Ingester) {
	m.Registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "kycd_projection_backlog",
			Help: "Events acknowledged by this process and not yet projected.",
		}, func() float64 { return float64(in.Backlog()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "kycd_projection_lag_seconds",
			Help: "How long the oldest acknowledged, unprojected event has waited.",
		}, func() float64 { return in.Lag().Seconds() }),
	)
}
