package server

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are kycd's Prometheus metrics, on a registry of their own so tests
// and several servers in one process do not share state.
type Metrics struct {
	Registry          *prometheus.Registry
	EventsReceived    *prometheus.CounterVec
	IngestDuration    prometheus.Histogram
	SignatureFailures prometheus.Counter
	CommitBatchSize   prometheus.Histogram
}

// NewMetrics registers kycd's metrics and the Go runtime's on a new registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		EventsReceived: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kycd_events_received_total",
			Help: "Webhook deliveries by Ralio event type and outcome (applied, stale, unhandled, duplicate, invalid, conflict, unauthorized, unavailable, …).",
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
			Help:    "Ingests committed together in one transaction (group commit).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128},
		}),
	}
	m.Registry.MustRegister(m.EventsReceived, m.IngestDuration, m.SignatureFailures, m.CommitBatchSize,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
