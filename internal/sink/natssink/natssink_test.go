package natssink_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/sink/natssink"
)

// natsServer returns the URL of the NATS server (with JetStream) named by
// KYCD_TEST_NATS and a JetStream client on it. Without the variable the test
// skips, unless KYCD_TEST_REQUIRE_SERVICES=1 (CI), where it fails. A server
// that is named but unreachable always fails the test.
func natsServer(t *testing.T) (string, jetstream.JetStream) {
	t.Helper()
	url := os.Getenv("KYCD_TEST_NATS")
	if url == "" {
		const how = "run a nats-server with JetStream (nats-server -js) and set KYCD_TEST_NATS=nats://127.0.0.1:4222"
		if os.Getenv("KYCD_TEST_REQUIRE_SERVICES") == "1" {
			t.Fatal("KYCD_TEST_NATS not set but KYCD_TEST_REQUIRE_SERVICES=1: " + how)
		}
		t.Skip("KYCD_TEST_NATS not set: " + how)
	}
	nc, err := nats.Connect(url, nats.Timeout(3*time.Second))
	if err != nil {
		t.Fatalf("KYCD_TEST_NATS=%s: cannot connect: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("KYCD_TEST_NATS=%s: %v", url, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := js.AccountInfo(ctx); err != nil {
		t.Fatalf("KYCD_TEST_NATS=%s: JetStream unavailable (start nats-server with -js): %v", url, err)
	}
	return url, js
}

// uniquePrefix returns a subject prefix of this test alone and the name of
// the stream Open creates for it, deleted when the test ends.
func uniquePrefix(t *testing.T, js jetstream.JetStream) (prefix, stream string) {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	prefix = "kycdtest" + hex.EncodeToString(b)
	stream = strings.ToUpper(prefix)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := js.DeleteStream(ctx, stream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Errorf("delete stream %s: %v", stream, err)
		}
	})
	return prefix, stream
}

func open(t *testing.T, spec string) *natssink.Sink {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	s, err := natssink.Open(ctx, spec)
	if err != nil {
		t.Fatalf("Open(%q): %v", spec, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func send(t *testing.T, s *natssink.Sink, m kycd.Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := s.Send(ctx, m); err != nil {
		t.Fatalf("Send(%s): %v", m.ID, err)
	}
}

// fetchAll reads every message of the stream from the start.
func fetchAll(t *testing.T, js jetstream.JetStream, stream string) []jetstream.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatalf("consumer on %s: %v", stream, err)
	}
	batch, err := cons.Fetch(100, jetstream.FetchMaxWait(time.Second))
	if err != nil {
		t.Fatalf("fetch from %s: %v", stream, err)
	}
	var msgs []jetstream.Msg
	for m := range batch.Messages() {
		msgs = append(msgs, m)
	}
	if err := batch.Error(); err != nil {
		t.Fatalf("fetch from %s: %v", stream, err)
	}
	return msgs
}

func streamMsgs(t *testing.T, js jetstream.JetStream, stream string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("stream %s info: %v", stream, err)
	}
	return info.State.Msgs
}

const payload = `{"id":"%s","type":"kyc.session.rejected","status":"REJECTED","failures":[{"checkType":"document-verification","code":"EXPIRED_DOCUMENT","message":"The provided document has expired"}]}`

func rejection() kycd.Message {
	id := uuid.NewString()
	return kycd.Message{ID: id, Type: kycd.NotifySessionRejected, Payload: []byte(strings.Replace(payload, "%s", id, 1))}
}

// A retry after a lost ack publishes the same notification again; the
// stream keeps one copy.
func TestSendTwiceStoresOnce(t *testing.T) {
	t.Parallel()
	url, js := natsServer(t)
	prefix, stream := uniquePrefix(t, js)
	s := open(t, url+"?subject="+prefix+"&create=1")

	m := rejection()
	send(t, s, m)
	send(t, s, m)

	msgs := fetchAll(t, js, stream)
	if len(msgs) != 1 {
		t.Fatalf("stream %s holds %d messages, want 1", stream, len(msgs))
	}
	got := msgs[0]
	if want := prefix + ".kyc.session.rejected"; got.Subject() != want {
		t.Errorf("subject = %q, want %q", got.Subject(), want)
	}
	if string(got.Data()) != string(m.Payload) {
		t.Errorf("payload = %s, want %s", got.Data(), m.Payload)
	}
	if id := got.Headers().Get(jetstream.MsgIDHeader); id != m.ID {
		t.Errorf("Nats-Msg-Id = %q, want %q", id, m.ID)
	}
	if n := streamMsgs(t, js, stream); n != 1 {
		t.Errorf("stream state: %d messages, want 1", n)
	}
}

// Deduplication is by notification id, not by content.
func TestSendDifferentIDsStoresBoth(t *testing.T) {
	t.Parallel()
	url, js := natsServer(t)
	prefix, stream := uniquePrefix(t, js)
	s := open(t, url+"?subject="+prefix+"&create=1")

	a := rejection()
	b := kycd.Message{ID: uuid.NewString(), Type: a.Type, Payload: a.Payload}
	send(t, s, a)
	send(t, s, b)
	send(t, s, a)

	msgs := fetchAll(t, js, stream)
	if len(msgs) != 2 {
		t.Fatalf("stream %s holds %d messages, want 2", stream, len(msgs))
	}
	for i, want := range []string{a.ID, b.ID} {
		if id := msgs[i].Headers().Get(jetstream.MsgIDHeader); id != want {
			t.Errorf("message %d: Nats-Msg-Id = %q, want %q", i, id, want)
		}
		if string(msgs[i].Data()) != string(a.Payload) {
			t.Errorf("message %d: payload = %s, want %s", i, msgs[i].Data(), a.Payload)
		}
	}
	if n := streamMsgs(t, js, stream); n != 2 {
		t.Errorf("stream state: %d messages, want 2", n)
	}
}

// Every replica opens the sink with create=1: opening an existing stream
// again must work and keep what is in it.
func TestOpenCreateTwice(t *testing.T) {
	t.Parallel()
	url, js := natsServer(t)
	prefix, stream := uniquePrefix(t, js)
	spec := url + "?subject=" + prefix + "&create=1"
	send(t, open(t, spec), rejection())
	send(t, open(t, spec), rejection())
	if n := streamMsgs(t, js, stream); n != 2 {
		t.Errorf("stream state: %d messages, want 2", n)
	}
}

func TestOpenBadSpec(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		spec, want string
	}{
		{"nats://127.0.0.1:4222", "subject"},
		{"nats://127.0.0.1:4222?subject=", "subject"},
		{"nats://127.0.0.1:4222?subject=kycd.*", "subject"},
		{"nats://127.0.0.1:4222?subject=kycd.>", "subject"},
		{"nats://127.0.0.1:4222?subject=kycd+notify", "subject"}, // + decodes to a space
		{"http://127.0.0.1:4222?subject=kycd", "nats://HOST:PORT?subject=PREFIX"},
		{"127.0.0.1:4222?subject=kycd", "nats://HOST:PORT?subject=PREFIX"},
		{"nats:///?subject=kycd", "nats://HOST:PORT?subject=PREFIX"},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			t.Parallel()
			s, err := natssink.Open(t.Context(), tc.spec)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%q) = nil error, want one mentioning %q", tc.spec, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open(%q) = %v, want it to mention %q", tc.spec, err, tc.want)
			}
		})
	}
}

// Nothing listens on port 1: Open fails promptly and does not leak the
// credentials of the URL.
func TestOpenUnreachable(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	start := time.Now()
	s, err := natssink.Open(ctx, "nats://kycd:s3cr3tpw@127.0.0.1:1?subject=kycd")
	if err == nil {
		s.Close()
		t.Fatal("Open against 127.0.0.1:1 = nil error")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Open took %v to fail, want a few seconds at most", d)
	}
	if strings.Contains(err.Error(), "s3cr3tpw") {
		t.Errorf("error leaks the password: %v", err)
	}
}

// Without create=1 and no stream on the subject, publishing fails, and the
// failure is retryable: the stream may be created later.
func TestSendWithoutStream(t *testing.T) {
	t.Parallel()
	url, js := natsServer(t)
	prefix, _ := uniquePrefix(t, js)
	s := open(t, url+"?subject="+prefix)

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	err := s.Send(ctx, rejection())
	if err == nil {
		t.Fatal("Send without a stream = nil error")
	}
	if se, ok := errors.AsType[*kycd.SinkError](err); ok && se.Permanent {
		t.Errorf("Send without a stream = permanent %v, want a retryable error", err)
	}
}

// An operator may create or tune the stream (retention, duplicate window).
// Open with create=1, run at every start of every replica, must leave an
// existing stream as it is.
func TestOpenCreateKeepsExistingStream(t *testing.T) {
	t.Parallel()
	url, js := natsServer(t)
	prefix, stream := uniquePrefix(t, js)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	want := jetstream.StreamConfig{
		Name:        stream,
		Description: "tuned by ops",
		Subjects:    []string{prefix + ".>"},
		MaxAge:      24 * time.Hour,
		Duplicates:  time.Hour,
	}
	if _, err := js.CreateStream(ctx, want); err != nil {
		t.Fatal(err)
	}
	send(t, open(t, url+"?subject="+prefix+"&create=1"), rejection())

	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	got := s.CachedInfo().Config
	if got.Description != want.Description || got.MaxAge != want.MaxAge || got.Duplicates != want.Duplicates {
		t.Errorf("after Open with create=1 the stream has description %q, max age %v, duplicate window %v; want it untouched: %q, %v, %v",
			got.Description, got.MaxAge, got.Duplicates, want.Description, want.MaxAge, want.Duplicates)
	}
}

// Prefixes that differ only in case or in . versus - map to the same stream
// name. Opening one must not take over the stream of the other.
func TestOpenCreateDoesNotTakeOverAnotherStream(t *testing.T) {
	t.Parallel()
	url, js := natsServer(t)
	prefix, stream := uniquePrefix(t, js)
	open(t, url+"?subject="+prefix+"&create=1")

	other := strings.ToUpper(prefix) // same stream name, other subjects
	if s, err := natssink.Open(t.Context(), url+"?subject="+other+"&create=1"); err == nil {
		s.Close()
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.Subjects; len(got) != 1 || got[0] != prefix+".>" {
		t.Errorf("stream %s has subjects %v after Open with subject=%s, want [%s.>]", stream, got, other, prefix)
	}
}

// The stream that create=1 makes keeps messages no longer than kycd's
// retention, and its dedup window fits within that.
func TestCreatedStreamKeepsMessagesForTheRetention(t *testing.T) {
	t.Parallel()
	url, js := natsServer(t)
	for _, tc := range []struct{ maxAge, dup time.Duration }{
		{90 * 24 * time.Hour, 24 * time.Hour},
		{time.Hour, time.Hour},
	} {
		prefix, stream := uniquePrefix(t, js)
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		s, err := natssink.Open(ctx, url+"?subject="+prefix+"&create=1", natssink.MaxAge(tc.maxAge))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		info, err := js.Stream(t.Context(), stream)
		if err != nil {
			t.Fatal(err)
		}
		if cfg := info.CachedInfo().Config; cfg.MaxAge != tc.maxAge || cfg.Duplicates != tc.dup {
			t.Errorf("stream %s: MaxAge %s, Duplicates %s; want %s and %s", stream, cfg.MaxAge, cfg.Duplicates, tc.maxAge, tc.dup)
		}
	}
}

// A resend starts a new round of attempts: the stream must store it again
// (consumers get it), while a retry within a round — after a lost ack — is
// still dropped as the duplicate it is.
func TestSendNewRoundReachesConsumers(t *testing.T) {
	t.Parallel()
	url, js := natsServer(t)
	prefix, stream := uniquePrefix(t, js)
	s := open(t, url+"?subject="+prefix+"&create=1")

	first := rejection()
	resent := first
	resent.Round = "1765151234567890123"
	send(t, s, first)
	send(t, s, resent)
	send(t, s, resent)

	msgs := fetchAll(t, js, stream)
	if len(msgs) != 2 {
		t.Fatalf("stream %s holds %d messages, want 2: the first send and the resend", stream, len(msgs))
	}
	for i, want := range []string{first.ID, first.ID + "~" + resent.Round} {
		if id := msgs[i].Headers().Get(jetstream.MsgIDHeader); id != want {
			t.Errorf("message %d: Nats-Msg-Id = %q, want %q", i, id, want)
		}
		if string(msgs[i].Data()) != string(first.Payload) {
			t.Errorf("message %d: payload = %s, want %s", i, msgs[i].Data(), first.Payload)
		}
	}
}

// Lowering --retention lowers the MaxAge (and the dedup window within it) of
// the stream kycd created, at the next start; raising it raises them. A
// stream an operator made keeps its own, whatever --retention says.
func TestCreatedStreamFollowsTheRetention(t *testing.T) {
	t.Parallel()
	url, js := natsServer(t)
	prefix, stream := uniquePrefix(t, js)
	spec := url + "?subject=" + prefix + "&create=1"
	for _, tc := range []struct{ maxAge, dup time.Duration }{
		{90 * 24 * time.Hour, 24 * time.Hour},
		{time.Hour, time.Hour},
		{30 * 24 * time.Hour, 24 * time.Hour},
		{0, 24 * time.Hour},
	} {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		s, err := natssink.Open(ctx, spec, natssink.MaxAge(tc.maxAge))
		cancel()
		if err != nil {
			t.Fatalf("Open with MaxAge %s: %v", tc.maxAge, err)
		}
		s.Close()
		info, err := js.Stream(t.Context(), stream)
		if err != nil {
			t.Fatal(err)
		}
		if cfg := info.CachedInfo().Config; cfg.MaxAge != tc.maxAge || cfg.Duplicates != tc.dup {
			t.Errorf("after Open with MaxAge %s: stream MaxAge %s, Duplicates %s; want %s and %s", tc.maxAge, cfg.MaxAge, cfg.Duplicates, tc.maxAge, tc.dup)
		}
	}

	ops, opsStream := uniquePrefix(t, js)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: opsStream, Subjects: []string{ops + ".>"}, MaxAge: 48 * time.Hour, Duplicates: time.Hour}); err != nil {
		t.Fatal(err)
	}
	s, err := natssink.Open(ctx, url+"?subject="+ops+"&create=1", natssink.MaxAge(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	info, err := js.Stream(ctx, opsStream)
	if err != nil {
		t.Fatal(err)
	}
	if cfg := info.CachedInfo().Config; cfg.MaxAge != 48*time.Hour || cfg.Duplicates != time.Hour {
		t.Errorf("operator's stream after Open with MaxAge 1h: MaxAge %s, Duplicates %s; want it untouched (48h, 1h)", cfg.MaxAge, cfg.Duplicates)
	}
}

// A message sent under a span carries its W3C traceparent, under that
// very (lower-case) key.
func TestSendCarriesTraceparent(t *testing.T) {
	t.Parallel()
	url, js := natsServer(t)
	prefix, stream := uniquePrefix(t, js)
	s := open(t, url+"?subject="+prefix+"&create=1")
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:     trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		TraceFlags: trace.FlagsSampled,
	})
	ctx, cancel := context.WithTimeout(trace.ContextWithSpanContext(t.Context(), sc), 10*time.Second)
	defer cancel()
	if err := s.Send(ctx, rejection()); err != nil {
		t.Fatal(err)
	}
	send(t, s, rejection()) // no span: no header
	msgs := fetchAll(t, js, stream)
	if len(msgs) != 2 {
		t.Fatalf("stream %s holds %d messages, want 2", stream, len(msgs))
	}
	if got, want := msgs[0].Headers().Get("traceparent"), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"; got != want {
		t.Errorf("traceparent = %q, want %q (headers %v)", got, want, msgs[0].Headers())
	}
	if got := msgs[1].Headers().Get("traceparent"); got != "" {
		t.Errorf("a message sent without a span has traceparent %q", got)
	}
}
