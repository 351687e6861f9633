package server

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/kycd/kycd/internal/tracing"
)

// noSpan is what span returns when tracing is off: every call on it does
// nothing.
var noSpan = trace.SpanFromContext(context.Background())

// span starts a span under ctx's, or returns noSpan when tracing is off.
func (o Options) span(ctx context.Context, name string) (context.Context, trace.Span) {
	if !o.Tracing.Enabled() {
		return ctx, noSpan
	}
	return o.Tracing.Tracer.Start(ctx, name)
}

// traceWebhook makes the webhook's server span, continuing the trace of
// an incoming traceparent; the ingester remembers it as the span of the
// event it appends (tracing.Origins), for the projection and the
// deliveries. Without tracing it is next itself.
func traceWebhook(o Options, next http.Handler) http.Handler {
	if !o.Tracing.Enabled() {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := tracing.Propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := o.Tracing.Tracer.Start(ctx, r.Method+" /webhooks/ralio", trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("http.request.method", r.Method), attribute.String("url.path", r.URL.Path),
				attribute.String("client.address", remoteHost(r))))
		defer span.End()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r.WithContext(ctx))
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		span.SetAttributes(attribute.Int("http.response.status_code", status))
		if status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(status))
		}
	})
}
