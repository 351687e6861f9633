// Package logsink writes each notification as one JSON line, for
// development. Personal data (kycd.RedactPayload: an invitation's contact
// details and verification URL, failure messages, an expiration warning's
// action text) is never written out.
package logsink

import (
	"context"
	"io"
	"sync"

	"github.com/kycd/kycd"
)

// Sink writes notifications to w, one line each.
type Sink struct {
	mu sync.Mutex
	w  io.Writer
}

// New returns a sink writing to w.
func New(w io.Writer) *Sink { return &Sink{w: w} }

// Send writes m as one JSON line.
func (s *Sink) Send(_ context.Context, m kycd.Message) error {
	line := kycd.RedactPayloadMarked(m.Payload, "[personal data not logged]")
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.w.Write(append(append([]byte(nil), line...), '\n'))
	return err
}
