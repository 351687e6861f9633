// Package natssink publishes notifications to NATS JetStream, one subject
// per notification type, with the notification id as Nats-Msg-Id so the
// stream drops a repeat publish (a later round of attempts, a resend, adds
// the round to it, so that the stream stores the resend).
package natssink

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/tracing"
)

// Sink publishes to PREFIX.<notification type>.
type Sink struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	prefix string
}

// Option configures Open.
type Option func(*options)

type options struct {
	maxAge time.Duration
}

// MaxAge is the MaxAge of the stream that create=1 makes: the stream drops
// messages older than it, so notifications (an invitation's contact
// details among them) are kept no longer than kycd's retention. 0 keeps
// them for good.
func MaxAge(d time.Duration) Option { return func(o *options) { o.maxAge = d } }

// Open connects to the NATS server of spec, nats://HOST:PORT?subject=PREFIX
// (create=1 also creates a stream named after PREFIX for PREFIX.>).
func Open(ctx context.Context, spec string, opts ...Option) (*Sink, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	u, err := url.Parse(spec)
	if err != nil || (u.Scheme != "nats" && u.Scheme != "tls") || u.Host == "" {
		return nil, fmt.Errorf("natssink: %q: want nats://HOST:PORT?subject=PREFIX", kycd.RedactURL(spec))
	}
	q := u.Query()
	prefix := strings.Trim(q.Get("subject"), ".")
	if prefix == "" || strings.ContainsAny(prefix, " *>") {
		return nil, fmt.Errorf("natssink: %q: set ?subject=PREFIX, a subject without wildcards", kycd.RedactURL(spec))
	}
	create := q.Get("create") == "1" || q.Get("create") == "true"
	u.RawQuery = ""
	nc, err := nats.Connect(u.String(), nats.Name("kycd"), nats.MaxReconnects(-1), nats.Timeout(5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("natssink: connect %s: %w", kycd.RedactURL(spec), err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("natssink: %w", err)
	}
	if create {
		if err := ensureStream(ctx, js, prefix, o.maxAge); err != nil {
			nc.Close()
			return nil, err
		}
	}
	return &Sink{nc: nc, js: js, prefix: prefix}, nil
}

// Send publishes m and waits for the stream's ack. Every failure is
// retryable: a missing stream may be created, a server may come back.
func (s *Sink) Send(ctx context.Context, m kycd.Message) error {
	msg := nats.NewMsg(s.prefix + "." + m.Type)
	msg.Data = m.Payload
	msg.Header.Set(jetstream.MsgIDHeader, MsgID(m))
	// The attempt's span (when tracing is on) as a traceparent header.
	tracing.Propagator.Inject(ctx, headerCarrier(msg.Header))
	// A duplicate ack is a publish of this id that the stream stored before:
	// an attempt of the same round whose ack was lost. The id of every later
	// round is new, so a resend is stored again, never dropped as a repeat.
	if _, err := s.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("nats publish %s: %w", msg.Subject, err)
	}
	return nil
}

// headerCarrier writes trace context into a message's headers under the
// keys as the propagator names them (traceparent, tracestate): NATS
// headers are case-sensitive, and propagation.HeaderCarrier would write
// Traceparent, which a consumer asking for traceparent does not find.
type headerCarrier nats.Header

func (c headerCarrier) Get(key string) string { return nats.Header(c).Get(key) }
func (c headerCarrier) Set(key, value string) { c[key] = []string{value} }
func (c headerCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// MsgID is m's Nats-Msg-Id: the notification id in the delivery's first
// round, the notification id, "~" and the round in a later one.
func MsgID(m kycd.Message) string {
	if m.Round == "" {
		return m.ID
	}
	return m.ID + "~" + m.Round
}

// Close drains the connection.
func (s *Sink) Close() error { return s.nc.Drain() }

// dedupWindow is how long the stream remembers a Nats-Msg-Id. It covers
// kycd's retry age (24 h by default), so a publish repeated after a lost ack
// is dropped however late the retry comes.
const dedupWindow = 24 * time.Hour

// ensureStream creates the stream for PREFIX.> unless it exists, keeping
// messages maxAge (0: for good). An existing stream that kycd created gets
// maxAge (and its dedup window) if they changed; one an operator made is
// left as its operator configured it, but it must take the prefix's subjects: two
// prefixes may map to one stream name, and one must not take the other's
// stream over.
func ensureStream(ctx context.Context, js jetstream.JetStream, prefix string, maxAge time.Duration) error {
	name := strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(prefix))
	subject := prefix + ".>"
	// The dedup window cannot be longer than the stream keeps messages.
	dup := dedupWindow
	if maxAge > 0 {
		dup = min(dup, maxAge)
	}
	stream, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{subject}, Duplicates: dup, MaxAge: maxAge,
			Description: createdBy})
		if err != nil {
			return fmt.Errorf("natssink: create stream %s: %w", name, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("natssink: look up stream %s: %w", name, err)
	}
	cfg := stream.CachedInfo().Config
	if !slices.Contains(cfg.Subjects, subject) {
		return fmt.Errorf("natssink: stream %s exists without subject %s; choose another ?subject= prefix or add the subject to the stream", name, subject)
	}
	// kycd's own stream follows --retention, lowered or raised; an operator's
	// is theirs to tune.
	if cfg.Description == createdBy && (cfg.MaxAge != maxAge || cfg.Duplicates != dup) {
		cfg.MaxAge, cfg.Duplicates = maxAge, dup
		if _, err := js.UpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("natssink: set stream %s's max age to the retention (%s): %w", name, maxAge, err)
		}
	}
	return nil
}

// createdBy is the description of the stream create=1 makes, which marks it
// as kycd's: its MaxAge is kept in step with --retention. (Not stream
// metadata: NATS servers before 2.10 drop it.) An operator who changes the
// description takes the stream over.
const createdBy = "created by kycd (create=1); its max age follows kycd's --retention"
