package dispatch

import (
	"context"
	"errors"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/kycd/kycd"
)

// traceAttempt starts the span of one delivery attempt: a child of the
// span of the webhook that brought its event when this process remembers
// it (tracing.Origins), else a root. The sinks send its traceparent.
// done ends it with what the attempt recorded. Without tracing it does
// nothing.
func (d *Dispatcher) traceAttempt(ctx context.Context, del *kycd.Delivery) (_ context.Context, done func(kycd.AttemptRecord, error)) {
	t := d.o.Tracing
	if !t.Enabled() {
		return ctx, func(kycd.AttemptRecord, error) {}
	}
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		attribute.String("kycd.sink", del.Sink), attribute.String("kycd.delivery.id", del.ID),
		attribute.String("kycd.notification.id", del.NotificationID), attribute.String("kycd.notification.type", del.NotificationType),
		attribute.Int("kycd.delivery.attempt", del.AttemptCount+1))}
	if origin, ok := t.Origins.Notification(del.NotificationID); ok {
		ctx = trace.ContextWithRemoteSpanContext(ctx, origin)
	} else {
		opts = append(opts, trace.WithNewRoot())
	}
	ctx, span := t.Tracer.Start(ctx, "kycd.delivery.attempt "+del.Sink, opts...)
	return ctx, func(rec kycd.AttemptRecord, err error) {
		span.SetAttributes(attribute.String("kycd.delivery.outcome", rec.Attempt.Outcome))
		if rec.Attempt.StatusCode != 0 {
			span.SetAttributes(attribute.Int("http.response.status_code", rec.Attempt.StatusCode))
		}
		if err != nil {
			msg := rec.Attempt.Error // redacted: no URL secret in it
			if se, ok := errors.AsType[*kycd.SinkError](err); ok && se.StatusCode != 0 {
				msg = "status " + strconv.Itoa(se.StatusCode)
			}
			span.SetStatus(codes.Error, msg)
		}
		span.End()
	}
}
