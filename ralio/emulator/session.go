package emulator

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd/ralio"
)

// Session states as Ralio's REST API names them (codes 1 to 6 in
// CONTRACT.md).
const (
	StateNotStarted = "NOT_STARTED"
	StateStarted    = "STARTED"
	StateVerified   = "VERIFIED"
	StateReview     = "REVIEW"
	StateRejected   = "REJECTED"
	StateExpired    = "EXPIRED"
)

// sessionTTL is how long a hosted URL stays valid: Ralio's sessions last 7
// days.
const sessionTTL = 7 * 24 * time.Hour

// outcomeStates maps each outcome event to the state it sets.
var outcomeStates = map[string]string{
	ralio.TypeSessionFailed:       StateRejected,
	ralio.TypeSessionVerified:     StateVerified,
	ralio.TypeSessionManualReview: StateReview,
	ralio.TypeSessionExpired:      StateExpired,
}

// session is one KYC session, as Ralio's REST API shows it.
type session struct {
	id        string
	subject   ralio.Subject // a user or a related party
	typ       string
	flow      string
	data      json.RawMessage
	hostedURL string
	createdAt time.Time
	expiresAt time.Time
	state     string
	checks    []check    // those of the newest outcome
	logs      []logEntry // every state it was in, oldest first
}

func (s *session) updatedAt() time.Time { return s.logs[len(s.logs)-1].createdAt }

// check is one verification check of a session.
type check struct {
	id      string
	typ     string
	state   string // ralio.CheckValidated or ralio.CheckRefused
	data    json.RawMessage
	at      time.Time
	reasons []reason
}

// reason is why a check was refused.
type reason struct {
	id          string
	typ         string
	code        string
	message     string
	category    string          // sent in webhooks of generations B and C
	mappedError json.RawMessage // shown by the REST API only, when given
}

// logEntry is one line of a session's state history.
type logEntry struct {
	id        string
	newState  string
	createdAt time.Time
}

// business is a business user: its KYB sessions and the ids Ralio gives it.
type business struct {
	uid      string
	id       int64 // businessUser.id in related-party invitations
	kybID    int64
	sessions []*kybSession
}

// kybSession is one KYB session of a business user.
type kybSession struct {
	id        string
	state     string
	documents json.RawMessage
	createdAt time.Time
	updatedAt time.Time
}

// newSession opens a session for subject in state NOT_STARTED, under id or,
// when id is empty, a new one. Callers hold e.mu.
func (e *Emulator) newSession(id string, subject ralio.Subject, baseURL, typ, flow string, data json.RawMessage) *session {
	if typ == "" {
		typ = "KYC"
	}
	if flow == "" {
		flow = "default"
	}
	if len(data) == 0 {
		data = json.RawMessage(`{}`)
	}
	if id == "" {
		id = uuid.NewString()
	}
	at := e.stamp()
	s := &session{
		id:        id,
		subject:   subject,
		typ:       typ,
		flow:      flow,
		data:      data,
		hostedURL: baseURL + "/hosted/" + id,
		createdAt: at,
		expiresAt: at.Add(sessionTTL),
		state:     StateNotStarted,
		logs:      []logEntry{{id: uuid.NewString(), newState: StateNotStarted, createdAt: at}},
	}
	e.sessions[id] = s
	e.bySubject[subject.ID] = append(e.bySubject[subject.ID], s)
	return s
}

// transition moves s to state at a new timestamp, recorded in its history,
// and returns that timestamp. Callers hold e.mu.
func (e *Emulator) transition(s *session, state string) time.Time {
	at := e.stamp()
	s.state = state
	s.logs = append(s.logs, logEntry{id: uuid.NewString(), newState: state, createdAt: at})
	return at
}
