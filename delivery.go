package kycd

import (
	"encoding/json"
	"strconv"
	"time"
)

// Delivery states.
const (
	DeliveryPending   = "pending"   // due now or later
	DeliveryDelivered = "delivered" // a sink accepted it
	DeliveryDead      = "dead"      // no further attempt until replayed
	DeliveryDropped   = "dropped"   // an operator gave it up; never sent
)

// DeliveryStates are the states a delivery can be in, in order.
var DeliveryStates = []string{DeliveryPending, DeliveryDelivered, DeliveryDead, DeliveryDropped}

// Attempt outcomes.
const (
	AttemptDelivered = "delivered"
	AttemptFailed    = "failed"   // retryable: a later attempt is scheduled
	AttemptRejected  = "rejected" // the sink refused it for good
)

// Delivery is one notification on its way to one sink, named by the
// sink's name: a sink's URL or options may change and its deliveries stay
// its own.
type Delivery struct {
	ID               string    `json:"id"`
	NotificationID   string    `json:"notificationId"`
	NotificationType string    `json:"notificationType"`
	Sink             string    `json:"sink"`
	State            string    `json:"state"`
	AttemptCount     int       `json:"attemptCount"`
	NextAttemptAt    time.Time `json:"nextAttemptAt,omitzero"`
	LastError        string    `json:"lastError,omitempty"`
	CreatedAt        time.Time `json:"createdAt"`
	UpdatedAt        time.Time `json:"updatedAt"`
	// Orphaned says that the delivery, pending or dead, belongs to a sink
	// that is no longer configured: nothing sends it until an operator
	// moves it to another sink (or drops it).
	Orphaned bool `json:"orphaned"`
	// SinkPaused says that the delivery is pending for a sink paused after
	// its endpoint answered 410 Gone: nothing sends it until an operator
	// resumes the sink.
	SinkPaused bool             `json:"sinkPaused"`
	Attempts   []Attempt        `json:"attempts,omitempty"`
	Actions    []DeliveryAction `json:"actions,omitempty"`
	Payload    json.RawMessage  `json:"notification,omitempty"`

	// SessionID and Subject name whom the notification concerns, as its
	// payload does ("" and zero for one that names neither), so that an
	// operator looking at a dead delivery knows whose it is.
	SessionID string     `json:"sessionId,omitempty"`
	Subject   SubjectRef `json:"subject,omitzero"`

	// RoundAttempts and RoundStartedAt count toward the retry limits; a
	// manual retry starts a new round.
	RoundAttempts  int       `json:"-"`
	RoundStartedAt time.Time `json:"-"`
}

// NameConcerned sets SessionID and Subject from the delivery's notification
// payload; a payload that is not a notification leaves them unset.
func (d *Delivery) NameConcerned() {
	var n struct {
		SessionID string     `json:"sessionId"`
		Subject   SubjectRef `json:"subject"`
	}
	if json.Unmarshal(d.Payload, &n) == nil {
		d.SessionID, d.Subject = n.SessionID, n.Subject
	}
}

// Attempt is one try at sending a delivery.
type Attempt struct {
	N          int       `json:"n"`
	At         time.Time `json:"at"`
	DurationMS int64     `json:"durationMs"`
	Outcome    string    `json:"outcome"`
	StatusCode int       `json:"statusCode,omitempty"`
	Error      string    `json:"error,omitempty"`
	// ResponseBody is the start of what the receiver answered a failed
	// attempt (ResponseBodyLimit bytes at most), credentials struck.
	ResponseBody string `json:"responseBody,omitempty"`
}

// ResponseBodyLimit is how much of a receiver's answer an attempt keeps.
const ResponseBodyLimit = 1 << 10

// DeliveryUpdate is the delivery's state after an attempt.
type DeliveryUpdate struct {
	State         string
	NextAttemptAt time.Time
	Error         string
}

// Operator actions on a delivery.
const (
	ActionMove = "move" // given to another sink
	ActionDrop = "drop" // given up
)

// DeliveryAction is what an operator did to a delivery by hand, and who
// and when: the note kept until kycd has an audit trail.
type DeliveryAction struct {
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"`
	From   string    `json:"from"`         // the sink the delivery belonged to
	To     string    `json:"to,omitempty"` // the sink it went to (move)
}

// DeliveryFilter selects deliveries to list. Zero fields select all.
type DeliveryFilter struct {
	State    string // one of the delivery states
	Sink     string // a sink name
	Orphaned bool   // only deliveries of sinks no longer configured
	Limit    int    // 1 to 500; 50 when 0
	Cursor   string // from the previous page's NextCursor
	DeliveryMatch
}

// DeliveryMatch selects deliveries by what their notification tells of,
// when they were created and how they last failed: what a support agent
// triaging the dead letter narrows by. Zero fields select all.
type DeliveryMatch struct {
	Type      string    `json:"type,omitempty"`    // the notification's type, e.g. kyc.session.rejected
	SessionID string    `json:"session,omitempty"` // the session the notification concerns
	SubjectID string    `json:"subject,omitempty"` // the subject (user, related party, business) it concerns
	Since     time.Time `json:"since,omitzero"`    // created at or after
	Until     time.Time `json:"until,omitzero"`    // created before
	// Error is a piece of the last error, in any case.
	Error string `json:"error,omitempty"`
}

// DeliverySelector is a filter of deliveries to act on in bulk (retry,
// drop): the same fields as a list's, without paging.
type DeliverySelector struct {
	State string `json:"state,omitempty"`
	Sink  string `json:"sink,omitempty"`
	DeliveryMatch
}

// IsZero reports whether the selector names no criterion: it would take
// every delivery.
func (s DeliverySelector) IsZero() bool { return s == DeliverySelector{} }

// DeliveryGroup counts the deliveries of one sink that last failed with
// one error ("" for those that never failed).
type DeliveryGroup struct {
	Sink      string `json:"sink"`
	LastError string `json:"lastError"`
	Count     int    `json:"count"`
}

// DeliverySummary is the deliveries a filter matches, counted by sink and
// last error, the largest group first.
type DeliverySummary struct {
	Total  int             `json:"total"`
	Groups []DeliveryGroup `json:"groups"`
}

// BulkChange is what a bulk retry or drop did: how many deliveries the
// selector matched, and how many it changed (CanChangeInBulk).
type BulkChange struct {
	Matched int
	Changed int
}

// CanChangeInBulk says whether a bulk retry or drop changes a delivery in
// state, being sent (leased) or not: only a pending or dead one that no
// dispatcher holds. A delivered one is not sent again, nor a dropped one
// revived, by a filter that happened to take it; RetryDelivery does that
// for one delivery named by its id.
func CanChangeInBulk(state string, leased bool) bool {
	return (state == DeliveryPending || state == DeliveryDead) && !leased
}

// DeliveryQuery selects the deliveries Store.Deliveries reads, oldest
// first (by creation, then id). Zero fields select all.
type DeliveryQuery struct {
	States   []string // in one of these states
	Sink     string   // of this sink
	NotSinks []string // of none of these sinks
	DeliveryMatch
	// After, with AfterID, reads the rows after the one created at After
	// with id AfterID.
	After   time.Time
	AfterID string
	Limit   int // at most this many rows; no bound when 0
}

// FlagSinks sets Orphaned and SinkPaused on each delivery of ds from its
// sink among sinks (Delivery.FlagSink).
func FlagSinks(ds []*Delivery, sinks []*SinkInfo) {
	byName := make(map[string]*SinkInfo, len(sinks))
	for _, k := range sinks {
		byName[k.Name] = k
	}
	for _, d := range ds {
		d.FlagSink(byName[d.Sink])
	}
}

// DeliveryPage is one page of deliveries, oldest first, without their
// notifications.
type DeliveryPage struct {
	Items      []*Delivery `json:"items"`
	NextCursor string      `json:"nextCursor,omitempty"`
}

// Resent is what a resend did for one sink: the delivery that sends the
// notification there, and whether it is new (the sink had none) or an
// existing one in a new round of attempts.
type Resent struct {
	Sink       string `json:"sink"`
	DeliveryID string `json:"deliveryId"`
	Created    bool   `json:"created"`
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
	// Round names the delivery's round of attempts: "" for the first, and
	// for each later one (a resend, a manual retry, a resume) a value of its
	// own, the same on every attempt of the round. A sink that deduplicates
	// by id (NATS) keys on ID and Round, so that a resend is sent again
	// while a retry after a lost ack is not.
	Round string
}

// Round is the Round of the delivery's Message: "" while it is in the round
// it was created with, else the start of its round in Unix nanoseconds.
func (d *Delivery) Round() string {
	if d.RoundStartedAt.IsZero() || d.RoundStartedAt.Equal(d.CreatedAt) {
		return ""
	}
	return strconv.FormatInt(d.RoundStartedAt.UnixNano(), 10)
}

// DeliveryRow is what an operator's change reads of a delivery and what a
// new delivery is recorded with.
type DeliveryRow struct {
	ID             string
	NotificationID string
	Sink           string
	State          string
	LeaseUntil     time.Time // zero when no dispatcher leased it
}

// Leased reports whether a dispatcher holds the delivery at at: it may be
// being sent right now.
func (d *DeliveryRow) Leased(at time.Time) bool { return d.LeaseUntil.After(at) }

// FlagSink sets the delivery's Orphaned and SinkPaused from its sink as
// registered (nil for a sink known only by its deliveries): a pending or
// dead delivery of a sink that is not configured is orphaned; a pending
// delivery of a paused sink waits for its resume.
func (d *Delivery) FlagSink(sink *SinkInfo) {
	waiting := d.State == DeliveryPending || d.State == DeliveryDead
	d.Orphaned = waiting && (sink == nil || !sink.Configured)
	d.SinkPaused = d.State == DeliveryPending && sink != nil && !sink.PausedAt.IsZero()
}

// CheckChange says whether an operator may move or drop a delivery in
// state, being sent (leased) or not: ECONFLICT for one that is delivered,
// dropped or being sent.
func CheckChange(id, state string, leased bool) error {
	switch {
	case state == DeliveryDelivered || state == DeliveryDropped:
		return Errorf(ECONFLICT, "delivery %s is %s already", id, state)
	case leased:
		return Errorf(ECONFLICT, "delivery %s is being sent right now; try again in a minute", id)
	}
	return nil
}

// CheckMove says whether a delivery of sink from may be moved to sink to:
// EINVALID without a sink to move to, ECONFLICT for the sink it has.
func CheckMove(from, to string) error {
	switch to {
	case "":
		return Errorf(EINVALID, "name the sink to move the delivery to")
	case from:
		return Errorf(ECONFLICT, "the delivery belongs to %s already; retry it instead", to)
	}
	return nil
}

// NewDelivery is the delivery id of o's notification to sink as a
// projection writes it: pending, due at once, in its first round, with
// payload, the notification as stored.
func NewDelivery(id string, o *Outgoing, sink string, payload []byte) *Delivery {
	return &Delivery{
		ID: id, NotificationID: o.Notification.ID, NotificationType: o.Notification.Type, Sink: sink, State: DeliveryPending,
		NextAttemptAt: o.CreatedAt, CreatedAt: o.CreatedAt, UpdatedAt: o.CreatedAt, RoundStartedAt: o.CreatedAt, Payload: payload,
	}
}
