package ingest

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/tracing"
)

// traceAppend starts the append span of ev under ctx's span (the
// webhook's), and remembers that span as the event's origin before the
// append, since the projector may take the entry as soon as it commits.
// done ends the span and, for a duplicate, puts back what was remembered
// of the event before (the span of the request that appended it).
// Without tracing it does nothing.
func traceAppend(ctx context.Context, t *tracing.Tracing, eventID string) (_ context.Context, done func(Result, error)) {
	if !t.Enabled() {
		return ctx, func(Result, error) {}
	}
	origin := trace.SpanContextFromContext(ctx)
	prev, had := t.Origins.Remember(eventID, origin)
	ctx, span := t.Tracer.Start(ctx, "kycd.webhook.append", trace.WithAttributes(attribute.String("kycd.event.id", eventID)))
	return ctx, func(res Result, err error) {
		defer span.End()
		span.SetAttributes(attribute.Bool("kycd.event.duplicate", res.Duplicate), attribute.Int64("kycd.log.seq", res.Seq))
		if res.Duplicate || err != nil {
			t.Origins.Restore(eventID, prev, had)
		}
		if err != nil {
			span.SetStatus(codes.Error, kycd.ErrorCode(err))
		}
	}
}

// traceBatch starts the span of a projection batch, linked to the webhook
// span of each entry this process remembers. Without tracing it does
// nothing.
func traceBatch(ctx context.Context, t *tracing.Tracing, entries []*kycd.LogEntry) (_ context.Context, done func(error)) {
	if !t.Enabled() {
		return ctx, func(error) {}
	}
	links := make([]trace.Link, 0, len(entries))
	for _, e := range entries {
		if sc, ok := t.Origins.Event(e.EventID); ok {
			links = append(links, trace.Link{SpanContext: sc, Attributes: []attribute.KeyValue{attribute.String("kycd.event.id", e.EventID)}})
		}
	}
	ctx, span := t.Tracer.Start(ctx, "kycd.projection.batch", trace.WithNewRoot(), trace.WithLinks(links...),
		trace.WithAttributes(attribute.Int("kycd.batch.entries", len(entries))))
	return ctx, func(err error) {
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
}
