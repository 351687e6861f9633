// Package natssink publishes notifications to NATS JetStream, one subject
// per notification type, with the notification id as Nats-Msg-Id so the
// stream drops a repeat publish.
package natssink

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycd/kycd"
)

// Sink publishes to PREFIX.<notification type>.
type Sink struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	prefix string
}

// Open connects to the NATS server of spec, nats://HOST:PORT?subject=PREFIX
// (create=1 also creates a stream named after PREFIX for PREFIX.>).
func Open(ctx context.Context, spec string) (*Sink, error) {
	u, err := url.Parse(spec)
	if err != nil || (u.Scheme != "nats" && u.Scheme != "tls") || u.Host == "" {
		return nil, fmt.Errorf("natssink: %q: want nats://HOST:PORT?subject=PREFIX", kycd.SinkLabel("nats="+spec))
	}
	q := u.Query()
	prefix := strings.Trim(q.Get("subject"), ".")
	if prefix == "" || strings.ContainsAny(prefix, " *>") {
		return nil, fmt.Errorf("natssink: %q: set ?subject=PREFIX, a subject without wildcards", kycd.SinkLabel("nats="+spec))
	}
	create := q.Get("create") == "1" || q.Get("create") == "true"
	u.RawQuery = ""
	nc, err := nats.Connect(u.String(), nats.Name("kycd"), nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("natssink: connect %s: %w", kycd.SinkLabel("nats="+spec), err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("natssink: %w", err)
	}
	if create {
		name := strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(prefix))
		if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{prefix + ".>"}}); err != nil {
			nc.Close()
			return nil, fmt.Errorf("natssink: create stream %s: %w", name, err)
		}
	}
	return &Sink{nc: nc, js: js, prefix: prefix}, nil
}

// Send publishes m and waits for the stream's ack. Every failure is
// retryable: a missing stream may be created, a server may come back.
func (s *Sink) Send(ctx context.Context, m kycd.Message) error {
	msg := nats.NewMsg(s.prefix + "." + m.Type)
	msg.Data = m.Payload
	msg.Header.Set(jetstream.MsgIDHeader, m.ID)
	if _, err := s.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("nats publish %s: %w", msg.Subject, err)
	}
	return nil
}

// Close drains the connection.
func (s *Sink) Close() error { return s.nc.Drain() }
