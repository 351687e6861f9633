package main

// End-to-end tests of OpenTelemetry traces: kycd configured by the OTEL_*
// variables sends its spans to an OTLP receiver in the test process, over
// HTTP and over gRPC, and its HTTP sinks get the trace's traceparent.

import (
	"context"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// otlpReceiver keeps the spans exported to it, with their service's name.
type otlpReceiver struct {
	coltracepb.UnimplementedTraceServiceServer
	mu       sync.Mutex
	spans    []*tracepb.Span
	services []string
}

func (o *otlpReceiver) keep(req *coltracepb.ExportTraceServiceRequest) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				o.services = append(o.services, kv.GetValue().GetStringValue())
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			o.spans = append(o.spans, ss.GetSpans()...)
		}
	}
}

// Export is the gRPC receiver's.
func (o *otlpReceiver) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	o.keep(req)
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// named returns the spans whose name begins with prefix.
func (o *otlpReceiver) named(prefix string) []*tracepb.Span {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []*tracepb.Span
	for _, s := range o.spans {
		if strings.HasPrefix(s.GetName(), prefix) {
			out = append(out, s)
		}
	}
	return out
}

func (o *otlpReceiver) all() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var names []string
	for _, s := range o.spans {
		names = append(names, s.GetName())
	}
	return names
}

// newOTLPHTTP serves OTLP/HTTP (protobuf) at its URL's /v1/traces.
func newOTLPHTTP(t *testing.T) (*otlpReceiver, string) {
	t.Helper()
	o := &otlpReceiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		var req coltracepb.ExportTraceServiceRequest
		if err != nil || r.URL.Path != "/v1/traces" || proto.Unmarshal(body, &req) != nil {
			http.Error(w, "not an OTLP trace export", http.StatusBadRequest)
			return
		}
		o.keep(&req)
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(srv.Close)
	return o, srv.URL
}

// newOTLPGRPC serves OTLP/gRPC.
func newOTLPGRPC(t *testing.T) (*otlpReceiver, string) {
	t.Helper()
	o := &otlpReceiver{}
	l, err := new(net.ListenConfig).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(srv, o)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	return o, "http://" + l.Addr().String()
}

// traceparents is an HTTP sink's endpoint that keeps the traceparent of
// each request.
func traceparents(t *testing.T) (*httptest.Server, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("Traceparent"))
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
}

const (
	ralioTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	ralioSpanID  = "00f067aa0ba902b7"
)

// serveTraced serves with the environment env and an http sink at sink,
// and delivers a-kyc_session_failed.json with Ralio's traceparent; it
// returns once the sink got the notification, the server stopped (so that
// every span is sent).
func serveTraced(t *testing.T, env map[string]string, sink string, received func() []string) {
	t.Helper()
	db := filepath.Join(t.TempDir(), "kycd.db")
	s := serve(t, func(k string) string { return env[k] }, "--addr", "127.0.0.1:0", "--database", "sqlite:"+db,
		"--ralio-secret", testSecret, "--admin-token", testToken, "--sink", "name=crm,type=http,url="+sink, "--sink-secret", testSinkSecret)
	s.Secret = testSecret
	body := example(t, "a-kyc_session_failed.json")
	req := webhookRequest(s.URL, s.Secret, body)
	req.Header.Set("Traceparent", "00-"+ralioTraceID+"-"+ralioSpanID+"-01")
	wantJSON(t, s.mustDo(t, req), http.StatusOK, `{"received":true}`)
	eventually(t, "the sink to get the notification", func() bool { return len(received()) == 1 })
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
}

// With OTEL_EXPORTER_OTLP_ENDPOINT set, the webhook's span continues
// Ralio's trace, with its verification and append as children; the
// projection batch links to it; the delivery attempt is its child, and
// the HTTP sink gets the attempt's traceparent.
func TestTracesReachAnOTLPReceiver(t *testing.T) {
	t.Parallel()
	otlp, url := newOTLPHTTP(t)
	sink, received := traceparents(t)
	serveTraced(t, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": url, "OTEL_SERVICE_NAME": "kycd-e2e"}, sink.URL, received)

	one := func(prefix string) *tracepb.Span {
		t.Helper()
		spans := otlp.named(prefix)
		if len(spans) != 1 {
			t.Fatalf("%d spans named %s…, want 1; spans: %q", len(spans), prefix, otlp.all())
		}
		return spans[0]
	}
	id := func(b []byte) string { return hex.EncodeToString(b) }
	webhook := one("POST /webhooks/ralio")
	if id(webhook.GetTraceId()) != ralioTraceID || id(webhook.GetParentSpanId()) != ralioSpanID || webhook.GetKind() != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("webhook span: trace %s, parent %s, kind %v; want Ralio's trace %s under its span %s, a server span",
			id(webhook.GetTraceId()), id(webhook.GetParentSpanId()), webhook.GetKind(), ralioTraceID, ralioSpanID)
	}
	for _, name := range []string{"kycd.webhook.verify", "kycd.webhook.append"} {
		if s := one(name); id(s.GetTraceId()) != ralioTraceID || id(s.GetParentSpanId()) != id(webhook.GetSpanId()) {
			t.Errorf("%s: trace %s, parent %s; want a child of the webhook span %s", name, id(s.GetTraceId()), id(s.GetParentSpanId()), id(webhook.GetSpanId()))
		}
	}
	// The batch of this test's one event, among batches of none.
	var linked bool
	for _, b := range otlp.named("kycd.projection.batch") {
		for _, l := range b.GetLinks() {
			linked = linked || (id(l.GetTraceId()) == ralioTraceID && id(l.GetSpanId()) == id(webhook.GetSpanId()))
		}
	}
	if !linked {
		t.Errorf("no kycd.projection.batch span links to the webhook span; spans: %q", otlp.all())
	}
	attempt := one("kycd.delivery.attempt crm")
	if id(attempt.GetTraceId()) != ralioTraceID || id(attempt.GetParentSpanId()) != id(webhook.GetSpanId()) {
		t.Errorf("delivery attempt: trace %s, parent %s; want a child of the webhook span %s", id(attempt.GetTraceId()), id(attempt.GetParentSpanId()), id(webhook.GetSpanId()))
	}
	if want := "00-" + ralioTraceID + "-" + id(attempt.GetSpanId()) + "-01"; received()[0] != want {
		t.Errorf("the sink got traceparent %q, want the attempt's %q", received()[0], want)
	}
	if !slices.Contains(otlp.services, "kycd-e2e") {
		t.Errorf("spans came from services %q, want OTEL_SERVICE_NAME's kycd-e2e", otlp.services)
	}
}

// OTLP over gRPC, as OTEL_EXPORTER_OTLP_PROTOCOL=grpc asks.
func TestTracesOverGRPC(t *testing.T) {
	t.Parallel()
	otlp, url := newOTLPGRPC(t)
	sink, received := traceparents(t)
	serveTraced(t, map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": url}, sink.URL, received)
	for _, name := range []string{"POST /webhooks/ralio", "kycd.webhook.append", "kycd.delivery.attempt crm"} {
		if len(otlp.named(name)) != 1 {
			t.Errorf("the gRPC receiver got %q, want one %s", otlp.all(), name)
		}
	}
	if tp := received()[0]; !strings.HasPrefix(tp, "00-"+ralioTraceID+"-") {
		t.Errorf("the sink got traceparent %q, want one of Ralio's trace", tp)
	}
}

// Off by default, and with OTEL_SDK_DISABLED=true whatever else is set:
// no span is sent, and a sink gets no traceparent, even when Ralio sent
// one.
func TestTracesOff(t *testing.T) {
	t.Parallel()
	for name, env := range map[string]func(url string) map[string]string{
		"by default": func(string) map[string]string { return nil },
		"OTEL_SDK_DISABLED=true": func(url string) map[string]string {
			return map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": url}
		},
		"OTEL_TRACES_EXPORTER=none": func(url string) map[string]string {
			return map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": url}
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			otlp, url := newOTLPHTTP(t)
			sink, received := traceparents(t)
			serveTraced(t, env(url), sink.URL, received)
			if got := otlp.all(); len(got) != 0 {
				t.Errorf("spans sent: %q, want none", got)
			}
			if tp := received()[0]; tp != "" {
				t.Errorf("the sink got traceparent %q, want none", tp)
			}
		})
	}
}

// A value of an OTEL_* variable kycd cannot use stops serve, naming it.
func TestTracesRefuseWhatTheyCannotDo(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER"},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://localhost:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "localhost:4318"}, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"},
	} {
		db := filepath.Join(t.TempDir(), "kycd.db")
		// Were it to start, serve would stop when this ends, without error.
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		var stdout, stderr syncBuffer
		err := run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--database", "sqlite:" + db}, func(k string) string { return tc.env[k] },
			strings.NewReader(""), &stdout, &stderr)
		cancel()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("serve with %v = %v, want an error naming %s", tc.env, err, tc.want)
		}
	}
}
