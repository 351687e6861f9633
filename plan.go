package kycd

import (
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// notificationNamespace makes notification ids from event ids.
var notificationNamespace = uuid.MustParse("5d0c7a2e-3f0b-4b7e-9a51-6f1d8c2e4a90")

// NotificationID is the id of the notification an event produces. It is
// derived from the event id, so a projection redone after a crash produces
// the same webhook-id and the merchant's receiver drops the repeat.
func NotificationID(eventID string) string {
	return uuid.NewSHA1(notificationNamespace, []byte(eventID)).String()
}

// Keys names the rows a batch of decoded entries may touch.
func Keys(entries []*LogEntry) PlanKeys {
	var k PlanKeys
	for _, e := range entries {
		k.EventIDs = append(k.EventIDs, e.EventID)
		ev := e.Event
		switch {
		case ev == nil:
		case ev.Status != "":
			k.SessionIDs = append(k.SessionIDs, ev.SessionID)
		case ev.Level != "":
			k.Subjects = append(k.Subjects, ev.Subject)
		}
	}
	k.EventIDs = compactStrings(k.EventIDs)
	k.SessionIDs = compactStrings(k.SessionIDs)
	slices.SortFunc(k.Subjects, func(a, b SubjectRef) int {
		if c := strings.Compare(a.Type, b.Type); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	k.Subjects = slices.Compact(k.Subjects)
	return k
}

func compactStrings(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}

// PlanOptions says what a plan's notifications look like.
type PlanOptions struct {
	// Sinks receive one delivery of every notification whose type they
	// take. A notification that no sink takes is not recorded.
	Sinks []SinkRoute
	// Guide returns guidance for a failure code; may be nil.
	Guide func(code string) string
	// Silent plans no notification (a rebuild re-derives state only).
	Silent bool
	// MaxClockSkew is how far after its receipt an event may be stamped
	// and still be ordered at its timestamp (DefaultMaxClockSkew when 0);
	// see OrderingTime.
	MaxClockSkew time.Duration
}

// DefaultMaxClockSkew is PlanOptions.MaxClockSkew when none is given.
const DefaultMaxClockSkew = 5 * time.Minute

// OrderingTime is the time an event received at receivedAt and stamped
// timestamp is ordered at: its timestamp, unless that is more than maxSkew
// after its receipt; then receivedAt + maxSkew, and skewed is true. A
// clock ahead (or a forged date) cannot make one event outrank every later
// one: a real event wins once it is stamped after that bound. Both times
// are in the log entry, so a rebuild with the same setting orders alike.
func OrderingTime(timestamp, receivedAt time.Time, maxSkew time.Duration) (at time.Time, skewed bool) {
	if maxSkew <= 0 {
		maxSkew = DefaultMaxClockSkew
	}
	if receivedAt.IsZero() {
		return timestamp, false
	}
	if bound := EventTime(receivedAt.Add(maxSkew)); timestamp.After(bound) {
		return bound, true
	}
	return timestamp, false
}

// PlanBatch decides what a batch of decoded log entries changes, given the
// current rows they touch. It is the projection rule set of kycd, written
// once for every store:
//
//   - An event id projected before (or earlier in the batch) with the same
//     body hash is a duplicate: no effect. With another hash it is a
//     conflict, for the quarantine.
//   - A session follows its newest event by (ordering time, id), within
//     the batch too (OrderingTime: the timestamp, bounded by the receipt
//     plus MaxClockSkew); an older event is kept in the history, marked not applied,
//     and has no other effect. So is the transition that set the session's
//     status learnt again from the other source (webhook, reconciliation).
//   - A session keeps the expiry of the invitation its status event
//     carried, and none once a later event sets its status.
//   - A level event sets the subject's level by the same rule.
//   - Every applied event notifies, each sink whose events filter takes
//     the notification's type; stale, unhandled and duplicate ones do not.
//
// Entries are taken in Seq order, so the outcome of each is what it would
// have been had the entries been projected one at a time. Every entry must
// have its Event decoded. cur is not modified.
func PlanBatch(entries []*LogEntry, cur *Projection, opt PlanOptions) *Plan {
	entries = slices.Clone(entries)
	slices.SortFunc(entries, func(a, b *LogEntry) int { return cmpInt64(a.Seq, b.Seq) })
	b := &batch{
		cur:      cur,
		known:    map[string]KnownEvent{},
		sessions: map[string]*SessionState{},
		levels:   map[SubjectRef]*LevelState{},
		plan:     &Plan{},
		maxSkew:  opt.MaxClockSkew,
	}
	for _, e := range entries {
		b.plan.Projected = append(b.plan.Projected, e.Seq)
		if k, ok := b.knownEvent(e.EventID); ok {
			if !SameBody(k.BodyHash, e.BodyHash, e.Body) {
				b.plan.Conflicts = append(b.plan.Conflicts, Conflict{Entry: e, OriginalSeq: k.Seq})
			}
			continue
		}
		b.known[e.EventID] = KnownEvent{Seq: e.Seq, BodyHash: e.BodyHash}
		ev := e.Event
		outcome, change := b.apply(e)
		_, skewed := OrderingTime(ev.Timestamp, e.ReceivedAt, b.maxSkew)
		b.plan.Events = append(b.plan.Events, &EventRow{
			Seq: e.Seq, ID: ev.ID, Type: ev.Type, Timestamp: ev.Timestamp, ReceivedAt: e.ReceivedAt,
			BodyHash: e.BodyHash, Outcome: outcome, SessionID: ev.SessionID, Subject: ev.Subject, ClockSkew: skewed,
		})
		if outcome != OutcomeApplied || opt.Silent {
			continue
		}
		n := NewNotification(NotificationID(ev.ID), ev, opt.Guide)
		if n == nil {
			continue
		}
		n.PreviousStatus, n.SessionVersion = change.PreviousStatus, change.Version
		if sinks := opt.sinksFor(n.Type); len(sinks) > 0 {
			b.plan.Notifications = append(b.plan.Notifications, &Outgoing{Notification: n, CreatedAt: e.ReceivedAt, Sinks: sinks})
		}
	}
	return b.plan
}

// sinksFor names the sinks that take notifications of type typ.
func (opt PlanOptions) sinksFor(typ string) []string { return SinksFor(opt.Sinks, typ) }

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// batch is the state of PlanBatch as it goes through the entries.
type batch struct {
	cur      *Projection
	known    map[string]KnownEvent
	sessions map[string]*SessionState // changed in this batch
	levels   map[SubjectRef]*LevelState
	plan     *Plan
	maxSkew  time.Duration
}

func (b *batch) knownEvent(id string) (KnownEvent, bool) {
	if k, ok := b.known[id]; ok {
		return k, true
	}
	k, ok := b.cur.Events[id]
	return k, ok
}

// apply applies ev to the state of the batch and returns its outcome and,
// for a session event, what it changed.
func (b *batch) apply(e *LogEntry) (string, SessionChange) {
	ev := e.Event
	switch {
	case ev.Status != "":
		return b.applySession(ev, e.ReceivedAt)
	case ev.Level != "":
		return b.applyLevel(ev, e.ReceivedAt), SessionChange{}
	case ev.Expiration != nil:
		if !ev.Subject.IsZero() && !slices.Contains(b.plan.Subjects, ev.Subject) {
			b.plan.Subjects = append(b.plan.Subjects, ev.Subject)
		}
		return OutcomeApplied, SessionChange{}
	}
	return OutcomeUnhandled, SessionChange{}
}

// applySession applies a session event. Applied, it returns the status
// before it and the session's version after it (SessionVersion of the new
// history).
func (b *batch) applySession(ev *Event, receivedAt time.Time) (string, SessionChange) {
	s := b.session(ev.SessionID)
	at, skewed := OrderingTime(ev.Timestamp, receivedAt, b.maxSkew)
	applied := s.StatusEventID == "" || Supersedes(at, ev.ID, s.StatusAt, s.StatusEventID) && !equivalent(ev, s)
	h := HistoryEntry{EventID: ev.ID, Event: ev.Type, Timestamp: ev.Timestamp, ReceivedAt: receivedAt, Status: ev.Status, Applied: applied, Source: ev.Source}
	if skewed {
		h.ClockSkew, h.OrderedAt = true, at
	}
	i, _ := slices.BinarySearchFunc(s.History, h, func(a, b HistoryEntry) int {
		if c := a.orderedAt().Compare(b.orderedAt()); c != 0 {
			return c
		}
		return strings.Compare(a.EventID, b.EventID)
	})
	s.History = slices.Insert(s.History, i, h)
	if !applied {
		return OutcomeStale, SessionChange{}
	}
	change := SessionChange{PreviousStatus: s.Status, Version: SessionVersion(s.History)}
	s.Subject, s.Status, s.StatusAt, s.StatusEventID = ev.Subject, ev.Status, at, ev.ID
	s.Checks = ev.Checks
	if s.Checks == nil {
		s.Checks = []Check{}
	}
	s.ExpiresAt = time.Time{}
	if ev.Invitation != nil {
		s.ExpiresAt = ev.Invitation.ExpiresAt.UTC()
	}
	return OutcomeApplied, change
}

// equivalent reports whether ev is the transition that put s in its state,
// learnt a second time from the other source: a webhook and reconciliation
// name one transition under two event ids. The second changes nothing and
// notifies nothing, whichever id is larger. (Between two webhooks, the
// larger id still wins a tie.)
func equivalent(ev *Event, s *SessionState) bool {
	if ev.Status != s.Status {
		return false
	}
	// By Ralio's timestamp, not the ordering time: the two sources receive
	// one transition at different times, so a skewed one is bounded
	// differently by each.
	for _, h := range s.History {
		if h.EventID == s.StatusEventID {
			return h.Timestamp.Equal(ev.Timestamp) && h.Source != ev.Source
		}
	}
	return false
}

// session returns the batch's copy of a session's row, copying the current
// one (or starting a new one) the first time.
func (b *batch) session(id string) *SessionState {
	if s, ok := b.sessions[id]; ok {
		return s
	}
	s := &SessionState{ID: id}
	if c, ok := b.cur.Sessions[id]; ok {
		*s = *c
		s.History = slices.Clone(c.History)
	}
	b.sessions[id] = s
	b.plan.Sessions = append(b.plan.Sessions, s)
	return s
}

func (b *batch) applyLevel(ev *Event, receivedAt time.Time) string {
	l, ok := b.levels[ev.Subject]
	if !ok {
		l = &LevelState{Subject: ev.Subject}
		if c, ok := b.cur.Levels[ev.Subject]; ok {
			*l = *c
		}
	}
	at, _ := OrderingTime(ev.Timestamp, receivedAt, b.maxSkew)
	if l.EventID != "" && !Supersedes(at, ev.ID, l.At, l.EventID) {
		return OutcomeStale
	}
	if !ok {
		b.levels[ev.Subject] = l
		b.plan.Levels = append(b.plan.Levels, l)
	}
	l.Level, l.At, l.EventID = ev.Level, at, ev.ID
	return OutcomeApplied
}
