package kycd

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// validName reports whether name is 1 to maxLen lower-case letters, digits,
// '.', '_' and '-', beginning with a letter or a digit: the names of sinks
// and tokens, which show in metrics, URLs and the audit trail.
func validName(name string, maxLen int) bool {
	if name == "" || len(name) > maxLen {
		return false
	}
	for i, c := range name {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '.' || c == '_' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// CheckSinkName is nil for a name a sink may have: lower-case letters,
// digits, '.', '_' and '-', beginning with a letter or a digit, up to 63
// characters. A sink's name shows in metrics, URLs and the audit trail.
// EINVALID otherwise.
func CheckSinkName(name string) error {
	if !validName(name, 63) {
		return Errorf(EINVALID, "sink name %q: a name is lower-case letters, digits, '.', '_' and '-', up to 63 characters", name)
	}
	return nil
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
	// Pause says the endpoint itself is gone (HTTP 410): the sink's
	// deliveries wait, pending, until an operator resumes the sink.
	Pause bool
	// Body is the start of the receiver's answer (ResponseBodyLimit bytes
	// at most), for the attempt's record; the dispatcher redacts it.
	Body string
	Err  error
}

func (e *SinkError) Error() string {
	if e.StatusCode != 0 {
		return fmt.Sprintf("status %d: %v", e.StatusCode, e.Err)
	}
	return e.Err.Error()
}

func (e *SinkError) Unwrap() error { return e.Err }

// SinkRoute is a sink as the planner sees it: its name, and the
// notification types it takes.
type SinkRoute struct {
	Name string
	// Events are patterns of notification types, * matching any run of
	// characters (kyc.session.*); none takes every type.
	Events []string
}

// Wants reports whether the sink takes notifications of type typ.
func (r SinkRoute) Wants(typ string) bool {
	return len(r.Events) == 0 || slices.ContainsFunc(r.Events, func(p string) bool { return MatchType(p, typ) })
}

// SinksFor names the sinks of routes that take notifications of type typ,
// in order: the one rule every producer of notifications (the planner, the
// watchdog) routes by.
func SinksFor(routes []SinkRoute, typ string) []string {
	var names []string
	for _, r := range routes {
		if r.Wants(typ) {
			names = append(names, r.Name)
		}
	}
	return names
}

// MatchType reports whether a notification type matches a pattern in which
// * matches any run of characters, dots included.
func MatchType(pattern, typ string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == typ
	}
	if !strings.HasPrefix(typ, parts[0]) {
		return false
	}
	typ = typ[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(typ, p)
		if i < 0 {
			return false
		}
		typ = typ[i+len(p):]
	}
	return len(typ) >= len(last) && strings.HasSuffix(typ, last)
}

// SinkInfo is a sink as the store knows it: what the last kycd serve to
// start was configured with, whether a 410 paused it, and how many of its
// deliveries wait. It holds no secret: Target is the URL as RedactURL
// shows it.
type SinkInfo struct {
	Name   string   `json:"name"`
	Type   string   `json:"type"`             // http, nats or log; "" for a sink known only by its deliveries
	Target string   `json:"target,omitempty"` // the URL without credentials
	Events []string `json:"events,omitempty"` // the type patterns it takes; none: every type
	// Order is how the sink's deliveries are ordered: OrderSession (each
	// session's, and each subject's, in the order kycd applied them) or
	// OrderNone; "" for a sink known only by its deliveries.
	Order string `json:"order,omitempty"`
	// Configured says that the last kycd serve to start has this sink.
	// The pending and dead deliveries of a sink that is not are orphaned.
	Configured   bool      `json:"configured"`
	RegisteredAt time.Time `json:"registeredAt,omitzero"`
	// PausedAt is when an answer 410 Gone paused the sink (zero when it
	// is not paused), PauseReason what the endpoint answered.
	PausedAt    time.Time `json:"pausedAt,omitzero"`
	PauseReason string    `json:"pauseReason,omitempty"`
	// ResumedAt and ResumedBy note the last resume by an operator.
	ResumedAt time.Time `json:"resumedAt,omitzero"`
	ResumedBy string    `json:"resumedBy,omitempty"`
	Pending   int       `json:"pending"`
	Dead      int       `json:"dead"`
}

// Sink orderings (the order= of a --sink).
const (
	// OrderSession sends a delivery only once every earlier delivery of its
	// order key (Notification.OrderKey) to the sink was delivered, or given
	// up (dead or dropped): the default.
	OrderSession = "session"
	// OrderNone sends every due delivery at once, in no particular order.
	OrderNone = "none"
)

// OrderOrDefault is the sink's Order, OrderSession when unset.
func (s *SinkInfo) OrderOrDefault() string {
	if s.Order == "" {
		return OrderSession
	}
	return s.Order
}

// SinkOrders are the orderings a sink may have, the default first.
var SinkOrders = []string{OrderSession, OrderNone}

// SinkCount is how many deliveries of a sink wait in a state (pending or
// dead).
type SinkCount struct {
	Sink  string
	State string
	N     int
}

// ListSinks is every sink registered or named by a waiting delivery, by
// name, with its pending and dead deliveries counted: a sink known only by
// its deliveries is listed with those counts and nothing more.
func ListSinks(registered []*SinkInfo, waiting []SinkCount) []*SinkInfo {
	byName := make(map[string]*SinkInfo, len(registered))
	for _, k := range registered {
		byName[k.Name] = k
	}
	for _, c := range waiting {
		k, ok := byName[c.Sink]
		if !ok {
			k = &SinkInfo{Name: c.Sink}
			byName[c.Sink] = k
		}
		switch c.State {
		case DeliveryPending:
			k.Pending = c.N
		case DeliveryDead:
			k.Dead = c.N
		}
	}
	out := make([]*SinkInfo, 0, len(byName))
	for _, k := range byName {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b *SinkInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Orphaned counts the deliveries that wait for this sink although it is no
// longer configured.
func (s *SinkInfo) Orphaned() int {
	if s.Configured {
		return 0
	}
	return s.Pending + s.Dead
}

// Routes returns, for each name, a route that takes every notification
// type.
func Routes(names ...string) []SinkRoute {
	out := make([]SinkRoute, len(names))
	for i, n := range names {
		out[i] = SinkRoute{Name: n}
	}
	return out
}

// ConfiguredRoutes are the routes of the sinks that the last kycd serve to
// start registered as configured: where a notification made outside serve
// (a replay, a reconciliation, a resend) goes, as serve would send it.
func ConfiguredRoutes(sinks []*SinkInfo) []SinkRoute {
	var out []SinkRoute
	for _, s := range sinks {
		if s.Configured {
			out = append(out, SinkRoute{Name: s.Name, Events: s.Events})
		}
	}
	return out
}

// ResendRoute chooses the sinks a resend of a notification goes to, by
// the notification's type: sink alone when it is named, else every sink of
// routes that takes the type (SinksFor). EINVALID for a named sink that is
// not one of routes or does not take the type, and when no sink takes it.
func ResendRoute(routes []SinkRoute, sink string) func(typ string) ([]string, error) {
	return func(typ string) ([]string, error) {
		if sink == "" {
			names := SinksFor(routes, typ)
			if len(names) == 0 {
				return nil, Errorf(EINVALID, "no configured sink takes notifications of type %s", typ)
			}
			return names, nil
		}
		i := slices.IndexFunc(routes, func(r SinkRoute) bool { return r.Name == sink })
		switch {
		case i < 0:
			return nil, Errorf(EINVALID, "sink %q is not configured", sink)
		case !routes[i].Wants(typ):
			return nil, Errorf(EINVALID, "sink %s does not take notifications of type %s (its events filter: %s)", sink, typ, strings.Join(routes[i].Events, ", "))
		}
		return []string{sink}, nil
	}
}
