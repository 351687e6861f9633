package tracing_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/tracing"
)

func span(b byte) trace.SpanContext {
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{b}, SpanID: trace.SpanID{b}, TraceFlags: trace.FlagsSampled})
}

// Origins keeps the most recent events' spans, by event and by
// notification id; a duplicate's or a failed append's is put back.
func TestOriginsRememberTheLatestEvents(t *testing.T) {
	o := tracing.NewOrigins(2)
	o.Remember("e1", span(1))
	o.Remember("e2", span(2))
	if sc, ok := o.Notification(kycd.NotificationID("e2")); !ok || !sc.Equal(span(2)) {
		t.Errorf("notification of e2 = %v, %v; want e2's span", sc, ok)
	}
	// A duplicate of e2 arrives: remembered, then put back.
	prev, had := o.Remember("e2", span(9))
	o.Restore("e2", prev, had)
	if sc, _ := o.Event("e2"); !sc.Equal(span(2)) {
		t.Errorf("e2 after a duplicate = %v, want its first span", sc)
	}
	// A failed first append leaves nothing.
	prev, had = o.Remember("e3", span(3)) // evicts e1
	if _, ok := o.Event("e1"); ok {
		t.Error("e1 still remembered beyond the bound")
	}
	o.Restore("e3", prev, had)
	if _, ok := o.Event("e3"); ok {
		t.Error("e3 remembered after its append failed")
	}
	var none *tracing.Origins
	none.Remember("e4", span(4))
	if _, ok := none.Event("e4"); ok {
		t.Error("a nil Origins remembered")
	}
}

// Off unless an endpoint or OTEL_TRACES_EXPORTER=otlp asks.
func TestFromEnvIsOffByDefault(t *testing.T) {
	for _, env := range []map[string]string{
		{},
		{"OTEL_SERVICE_NAME": "kycd"},
		{"OTEL_SDK_DISABLED": "TRUE", "OTEL_TRACES_EXPORTER": "otlp"},
		{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://localhost:4318"},
	} {
		tr, err := tracing.FromEnv(context.Background(), func(k string) string { return env[k] }, "test")
		if err != nil || tr.Enabled() {
			t.Errorf("FromEnv(%v) = enabled %v, %v; want off", env, tr.Enabled(), err)
		}
	}
	tr, err := tracing.FromEnv(context.Background(), func(k string) string {
		return map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}[k]
	}, "test")
	if err != nil || !tr.Enabled() {
		t.Fatalf("FromEnv(OTEL_TRACES_EXPORTER=otlp) = enabled %v, %v; want on", tr.Enabled(), err)
	}
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Error(err)
	}
}
