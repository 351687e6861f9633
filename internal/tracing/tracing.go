// Package tracing sets up kycd's OpenTelemetry traces from the standard
// OTEL_* environment variables, and remembers, for the asynchronous parts
// of the pipeline (the projection, the deliveries), the span of the
// webhook request that brought each event.
//
// Off unless an OTLP endpoint or OTEL_TRACES_EXPORTER=otlp is set (and
// OTEL_SDK_DISABLED is not true): then Tracer is nil, and every caller
// skips its spans at the cost of a nil check.
package tracing

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/kycd/kycd"
)

// Name is kycd's instrumentation scope.
const Name = "github.com/kycd/kycd"

// Propagator reads and writes W3C traceparent and tracestate: an
// incoming webhook's, and what HTTP and NATS sinks get.
var Propagator propagation.TextMapPropagator = propagation.TraceContext{}

// Tracing is kycd's tracer and what it remembers, or nothing when off.
type Tracing struct {
	// Tracer makes kycd's spans; nil when tracing is off.
	Tracer trace.Tracer
	// Origins remembers the webhook span of each event; nil when off.
	Origins  *Origins
	provider *sdktrace.TracerProvider
}

// Enabled reports whether spans are made.
func (t *Tracing) Enabled() bool { return t != nil && t.Tracer != nil }

// Shutdown sends the spans not yet sent and stops the exporter.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil || t.provider == nil {
		return nil
	}
	return t.provider.Shutdown(ctx)
}

// FromEnv reads the OTEL_* variables through getenv: OTEL_SDK_DISABLED,
// OTEL_TRACES_EXPORTER (otlp or none), OTEL_EXPORTER_OTLP_ENDPOINT and
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_PROTOCOL and
// OTEL_EXPORTER_OTLP_TRACES_PROTOCOL (http/protobuf, the default, or grpc)
// and OTEL_SERVICE_NAME (default kycd). The exporter and the SDK read the
// others themselves from the process environment (headers, timeout,
// certificates, compression, OTEL_TRACES_SAMPLER, OTEL_BSP_*,
// OTEL_RESOURCE_ATTRIBUTES). A value kycd cannot use is an error naming
// the variable.
func FromEnv(ctx context.Context, getenv func(string) string, version string) (*Tracing, error) {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return &Tracing{}, nil
	}
	exporter := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER"))
	endpoint, endpointVar := getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	if endpoint == "" {
		endpoint, endpointVar = getenv("OTEL_EXPORTER_OTLP_ENDPOINT"), "OTEL_EXPORTER_OTLP_ENDPOINT"
	}
	switch exporter {
	case "none":
		return &Tracing{}, nil
	case "":
		if endpoint == "" {
			return &Tracing{}, nil // off by default
		}
	case "otlp":
	default:
		return nil, fmt.Errorf("OTEL_TRACES_EXPORTER=%q: kycd exports traces with otlp, or none", exporter)
	}
	protocol, protocolVar := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"), "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	if protocol == "" {
		protocol, protocolVar = getenv("OTEL_EXPORTER_OTLP_PROTOCOL"), "OTEL_EXPORTER_OTLP_PROTOCOL"
	}
	if endpoint != "" {
		if u, err := url.Parse(endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("%s=%q: want an http(s) URL, e.g. http://localhost:4318 (4317 for grpc)", endpointVar, kycd.RedactURL(endpoint))
		}
	}
	var exp sdktrace.SpanExporter
	var err error
	switch protocol {
	case "", "http/protobuf":
		var opts []otlptracehttp.Option
		if endpoint != "" {
			// The signal's own variable is the whole URL; the generic one
			// is a base that /v1/traces is added to (OTLP specification).
			if endpointVar == "OTEL_EXPORTER_OTLP_ENDPOINT" {
				endpoint = strings.TrimSuffix(endpoint, "/") + "/v1/traces"
			}
			opts = append(opts, otlptracehttp.WithEndpointURL(endpoint))
		}
		exp, err = otlptracehttp.New(ctx, opts...)
	case "grpc":
		var opts []otlptracegrpc.Option
		if endpoint != "" {
			opts = append(opts, otlptracegrpc.WithEndpointURL(endpoint))
		}
		exp, err = otlptracegrpc.New(ctx, opts...)
	default:
		return nil, fmt.Errorf("%s=%q: kycd sends OTLP over http/protobuf (the default) or grpc", protocolVar, protocol)
	}
	if err != nil {
		return nil, fmt.Errorf("OpenTelemetry exporter: %w", err)
	}
	service := getenv("OTEL_SERVICE_NAME")
	if service == "" {
		service = "kycd"
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(semconv.ServiceName(service), semconv.ServiceVersion(version)))
	if err != nil {
		return nil, fmt.Errorf("OpenTelemetry resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return &Tracing{Tracer: tp.Tracer(Name), Origins: NewOrigins(DefaultOrigins), provider: tp}, nil
}

// DefaultOrigins is how many events' webhook spans are remembered: at 40
// events a second, half an hour's.
const DefaultOrigins = 1 << 16

// Origins remembers, for the most recent events, the span context of the
// webhook request that appended each, by event id and by the id of its
// notification (kycd.NotificationID): the projection batch links to them,
// a delivery attempt is their child. In memory only, so an event projected
// or delivered by another replica, or after a restart, has none: its span
// is then a root of its own. Safe for concurrent use; a nil *Origins
// remembers nothing.
type Origins struct {
	mu      sync.Mutex
	max     int
	byEvent map[string]trace.SpanContext
	byNote  map[string]trace.SpanContext
	order   []string // event ids, oldest first, for eviction
}

// NewOrigins remembers the spans of at most n events.
func NewOrigins(n int) *Origins {
	return &Origins{max: max(n, 1), byEvent: map[string]trace.SpanContext{}, byNote: map[string]trace.SpanContext{}}
}

// Remember keeps sc for eventID, returning what was kept before.
func (o *Origins) Remember(eventID string, sc trace.SpanContext) (trace.SpanContext, bool) {
	if o == nil || !sc.IsValid() {
		return trace.SpanContext{}, false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	prev, had := o.byEvent[eventID]
	if !had {
		if len(o.order) >= o.max {
			oldest := o.order[0]
			o.order = o.order[1:]
			delete(o.byEvent, oldest)
			delete(o.byNote, kycd.NotificationID(oldest))
		}
		o.order = append(o.order, eventID)
	}
	o.byEvent[eventID] = sc
	o.byNote[kycd.NotificationID(eventID)] = sc
	return prev, had
}

// Restore puts back what Remember returned for eventID: sc when had,
// else nothing remembered.
func (o *Origins) Restore(eventID string, sc trace.SpanContext, had bool) {
	if o == nil {
		return
	}
	if had {
		o.Remember(eventID, sc)
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.byEvent, eventID) // its place in order goes with the eviction
	delete(o.byNote, kycd.NotificationID(eventID))
}

// Event is the webhook span of eventID.
func (o *Origins) Event(eventID string) (trace.SpanContext, bool) {
	if o == nil {
		return trace.SpanContext{}, false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	sc, ok := o.byEvent[eventID]
	return sc, ok
}

// Notification is the webhook span of the event notificationID notifies.
func (o *Origins) Notification(notificationID string) (trace.SpanContext, bool) {
	if o == nil {
		return trace.SpanContext{}, false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	sc, ok := o.byNote[notificationID]
	return sc, ok
}
