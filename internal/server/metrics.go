package server

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/ingest"
)

// Metrics are kycd's Prometheus metrics, on a registry of their own so tests
// and several servers in one process do not share state.
type Metrics struct {
	Registry          *prometheus.Registry
	EventsReceived    *prometheus.CounterVec
	IngestDuration    prometheus.Histogram
	SignatureFailures prometheus.Counter
	// HoldFull counts the bodies refused for their signature that the
	// signature hold's queue had no room for.
	HoldFull         prometheus.Counter
	CommitBatchSize  prometheus.Histogram
	ProjectBatchSize prometheus.Histogram
	// HTTPRequests and HTTPDuration count every request by the route
	// pattern that took it (routes.go's, e.g. "GET /api/v1/sessions/{id}";
	// "unmatched" for none), so their labels stay few whatever the paths.
	HTTPRequests *prometheus.CounterVec
	HTTPDuration *prometheus.HistogramVec
	// BodyBudgetRefused counts webhook deliveries answered 503 because
	// the memory for bodies was in use: reason "total" (the whole
	// budget) or "peer" (the share of the delivery's peer address).
	BodyBudgetRefused *prometheus.CounterVec
	// ConnectionsOpen and ConnectionsClosed observe the listener's
	// connections (ConnLimiter); closed by reason.
	ConnectionsOpen   prometheus.Gauge
	ConnectionsClosed *prometheus.CounterVec
	// EventsClockSkewed counts events stamped more than --max-clock-skew
	// after their receipt (kycd.OrderingTime), once each, as projected.
	EventsClockSkewed prometheus.Counter
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
		HoldFull: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kycd_signature_hold_full_total",
			Help: "Bodies refused for their signature, with a well-formed one, that the signature hold's queue had no room for (not held).",
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
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kycd_http_requests_total",
			Help: "HTTP requests answered, by route pattern and status class (2xx, 3xx, 4xx, 5xx).",
		}, []string{"route", "status"}),
		HTTPDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kycd_http_request_duration_seconds",
			Help:    "Time from a request's arrival to the end of its answer, by route pattern.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		BodyBudgetRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kycd_webhook_body_budget_refused_total",
			Help: "Webhook deliveries answered 503 because the memory for bodies was in use, by reason: total (--body-budget) or peer (--peer-body-budget, the share of one peer address).",
		}, []string{"reason"}),
		ConnectionsOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kycd_http_connections_open",
			Help: "HTTP connections open on kycd's listener.",
		}),
		ConnectionsClosed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kycd_http_connections_closed_total",
			Help: "HTTP connections closed, by reason: evicted (the oldest idle, to make room under --max-connections), refused (a new one answered 503 at the cap, none being idle), untrusted_idle (idle past --untrusted-idle-timeout without a valid signature or token), other (by the client, a timeout of the server, or shutdown).",
		}, []string{"reason"}),
		EventsClockSkewed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kycd_events_clock_skewed_total",
			Help: "Events stamped more than --max-clock-skew after their receipt, as projected; each is ordered at its receipt plus the skew, not at its timestamp.",
		}),
	}
	for _, r := range []string{"total", "peer"} {
		m.BodyBudgetRefused.WithLabelValues(r)
	}
	for _, r := range closeReasons {
		m.ConnectionsClosed.WithLabelValues(r)
	}
	m.Registry.MustRegister(m.EventsReceived, m.IngestDuration, m.SignatureFailures, m.HoldFull, m.CommitBatchSize, m.ProjectBatchSize,
		m.HTTPRequests, m.HTTPDuration, m.BodyBudgetRefused, m.ConnectionsOpen, m.ConnectionsClosed, m.EventsClockSkewed,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// bodyBudgetRefused counts a delivery refused for err, errOverShare or
// errOverBudget.
func (m *Metrics) bodyBudgetRefused(err error) {
	reason := "total"
	if errors.Is(err, errOverShare) {
		reason = "peer"
	}
	m.BodyBudgetRefused.WithLabelValues(reason).Inc()
}

// RegisterBuildInfo exports kycd_build_info{version,revision,goversion} 1,
// so a dashboard tells which build each replica runs.
func (m *Metrics) RegisterBuildInfo(version, revision, goVersion string) {
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "kycd_build_info",
		Help:        "Always 1; its labels name the running build: version, VCS revision, Go version.",
		ConstLabels: prometheus.Labels{"version": version, "revision": revision, "goversion": goVersion},
	}, func() float64 { return 1 }))
}

// RegisterQuarantine exports kycd_quarantine_items, the refused bodies
// waiting for a replay, read from the store at scrape time so every
// replica reports the shared quarantine as it is.
func (m *Metrics) RegisterQuarantine(store interface {
	QuarantinePending(context.Context) (int, error)
}) {
	m.Registry.MustRegister(quarantineItems{store: store, desc: prometheus.NewDesc("kycd_quarantine_items",
		"Refused webhook bodies kept in the quarantine and not yet replayed (Ralio never resends them).", nil, nil)})
}

type quarantineItems struct {
	store interface {
		QuarantinePending(context.Context) (int, error)
	}
	desc *prometheus.Desc
}

func (c quarantineItems) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect reports nothing when the store does not answer: a gap, not a
// wrong zero.
func (c quarantineItems) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if n, err := c.store.QuarantinePending(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n))
	}
}

// instrument counts and times every request by the route that took it.
// The route is known once the mux has matched the request (r.Pattern), so
// it wraps the mux.
func (m *Metrics) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		status := sw.status
		if status == 0 {
			status = http.StatusOK // nothing written: net/http answers 200
		}
		m.HTTPRequests.WithLabelValues(route, strconv.Itoa(status/100)+"xx").Inc()
		m.HTTPDuration.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}

// statusWriter remembers the status of an answer. Unwrap lets
// http.ResponseController reach the connection beneath (the webhook sets
// its body's read deadline through it).
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

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
		EventClockSkewed: m.EventsClockSkewed.Inc,
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
