package kycd

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Delivery states.
const (
	DeliveryPending   = "pending"   // due now or later
	DeliveryDelivered = "delivered" // a sink accepted it
	DeliveryDead      = "dead"      // no further attempt until replayed
)

// Attempt outcomes.
const (
	AttemptDelivered = "delivered"
	AttemptFailed    = "failed"   // retryable: a later attempt is scheduled
	AttemptRejected  = "rejected" // the sink refused it for good
)

// Delivery is one notification on its way to one sink.
type Delivery struct {
	ID               string          `json:"id"`
	NotificationID   string          `json:"notificationId"`
	NotificationType string          `json:"notificationType"`
	Sink             string          `json:"sink"`
	State            string          `json:"state"`
	AttemptCount     int             `json:"attemptCount"`
	NextAttemptAt    time.Time       `json:"nextAttemptAt,omitzero"`
	LastError        string          `json:"lastError,omitempty"`
	CreatedAt        time.Time       `json:"createdAt"`
	UpdatedAt        time.Time       `json:"updatedAt"`
	Attempts         []Attempt       `json:"attempts,omitempty"`
	Payload          json.RawMessage `json:"notification,omitempty"`

	// RoundAttempts and RoundStartedAt count toward the retry limits; a
	// manual retry starts a new round.
	RoundAttempts  int       `json:"-"`
	RoundStartedAt time.Time `json:"-"`
}

// Attempt is one try at sending a delivery.
type Attempt struct {
	N          int       `json:"n"`
	At         time.Time `json:"at"`
	DurationMS int64     `json:"durationMs"`
	Outcome    string    `json:"outcome"`
	StatusCode int       `json:"statusCode,omitempty"`
	Error      string    `json:"error,omitempty"`
}

// DeliveryUpdate is the delivery's state after an attempt.
type DeliveryUpdate struct {
	State         string
	NextAttemptAt time.Time
	Error         string
}

// SinkLabel is a sink's name fit for logs, metrics and the API: its kind
// and address without credentials or query values other than subject.
func SinkLabel(spec string) string {
	kind, target, ok := strings.Cut(spec, "=")
	if !ok {
		return spec
	}
	u, err := url.Parse(target)
	if err != nil {
		return kind
	}
	q := url.Values{}
	if s := u.Query().Get("subject"); s != "" {
		q.Set("subject", s)
	}
	u.User, u.RawQuery, u.Fragment = nil, q.Encode(), ""
	return kind + "=" + u.String()
}

// AttemptRecord is one attempt to record with the state it leaves its
// delivery in.
type AttemptRecord struct {
	DeliveryID string
	Attempt    Attempt
	Next       DeliveryUpdate
}

// Message is what a sink sends: the notification's id, type and JSON.
type Message struct {
	ID      string
	Type    string
	Payload []byte
}

// Sink delivers notifications to one of the merchant's systems. Send returns
// nil once the system has accepted the message, a *SinkError to say how a
// failure should be treated, and any other error for a retryable failure.
// Send may be called more than once for one message (at least once on the
// wire); the message id lets the receiver drop repeats.
type Sink interface {
	Send(ctx context.Context, m Message) error
}

// SinkError is a failed send with what the dispatcher needs to schedule the
// next attempt.
type SinkError struct {
	Permanent  bool          // no later attempt can succeed: the delivery is dead
	StatusCode int           // the receiver's HTTP status, when there was one
	RetryAfter time.Duration // the receiver asked to wait at least this long
	Err        error
}

func (e *SinkError) Error() string {
	if e.StatusCode != 0 {
		return fmt.Sprintf("status %d: %v", e.StatusCode, e.Err)
	}
	return e.Err.Error()
}

func (e *SinkError) Unwrap() error { return e.Err }
