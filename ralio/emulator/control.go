package emulator

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd/ralio"
)

// controlError answers the control API's error shape.
func controlError(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, map[string]string{"error": fmt.Sprintf(format, args...)})
}

// Inputs of the control API. Unknown fields are refused, so a typo shows.
type (
	outcomeInput struct {
		Event string `json:"event"`
		// Checks replace the session's checks; absent, each event has its
		// defaults (defaultChecks), and [] means none.
		Checks *[]checkInput `json:"checks"`
		// UserID or RelatedPartyID open the session first when it is
		// unknown, so one call drives an outcome.
		UserID         string `json:"userId"`
		RelatedPartyID string `json:"relatedPartyId"`
	}
	checkInput struct {
		Type    string          `json:"type"`
		State   string          `json:"state"`
		Data    json.RawMessage `json:"data"`
		Reasons []reasonInput   `json:"reasons"`
	}
	reasonInput struct {
		Type        string          `json:"type"`
		Code        string          `json:"code"`
		Message     string          `json:"message"`
		Category    string          `json:"category"`
		MappedError json.RawMessage `json:"mappedError"`
	}
)

// defaultChecks are the checks of an outcome given without any: a refused
// document for a failure (the seed's first reason), passed document and
// face checks for a verification, none otherwise.
func defaultChecks(event string) []checkInput {
	switch event {
	case ralio.TypeSessionFailed:
		return []checkInput{{Type: "document-verification", State: ralio.CheckRefused, Reasons: []reasonInput{
			{Type: "document", Code: "EXPIRED_DOCUMENT", Message: "The provided document has expired"},
		}}}
	case ralio.TypeSessionVerified:
		return []checkInput{{Type: "document-verification", State: ralio.CheckValidated}, {Type: "face-matching", State: ralio.CheckValidated}}
	}
	return nil
}

// toChecks validates the input checks and turns them into a session's
// checks (their time is set when they are applied).
func toChecks(in []checkInput) ([]check, error) {
	out := make([]check, 0, len(in))
	for i, c := range in {
		state := ""
		switch {
		case strings.EqualFold(c.State, ralio.CheckRefused):
			state = ralio.CheckRefused
		case strings.EqualFold(c.State, ralio.CheckValidated):
			state = ralio.CheckValidated
		default:
			return nil, fmt.Errorf("checks[%d].state must be Refused or Validated", i)
		}
		if c.Type == "" {
			return nil, fmt.Errorf("checks[%d].type is required (e.g. document-verification)", i)
		}
		if len(c.Reasons) > 0 && state != ralio.CheckRefused {
			return nil, fmt.Errorf("checks[%d]: only a Refused check has reasons", i)
		}
		data := c.Data
		if len(data) == 0 {
			data = json.RawMessage(`{}`)
		} else if !isObject(data) {
			return nil, fmt.Errorf("checks[%d].data must be an object", i)
		}
		ck := check{id: uuid.NewString(), typ: c.Type, state: state, data: data}
		for j, r := range c.Reasons {
			if r.Code == "" {
				return nil, fmt.Errorf("checks[%d].reasons[%d].code is required (e.g. EXPIRED_DOCUMENT)", i, j)
			}
			if len(r.MappedError) > 0 && !isObject(r.MappedError) {
				return nil, fmt.Errorf("checks[%d].reasons[%d].mappedError must be an object", i, j)
			}
			category := r.Category
			if category == "" && len(r.MappedError) > 0 {
				var me struct {
					Category string `json:"category"`
				}
				if err := json.Unmarshal(r.MappedError, &me); err != nil {
					return nil, fmt.Errorf("checks[%d].reasons[%d].mappedError.category must be a string", i, j)
				}
				category = me.Category
			}
			ck.reasons = append(ck.reasons, reason{
				id: uuid.NewString(), typ: r.Type, code: r.Code, message: r.Message,
				category: category, mappedError: r.MappedError,
			})
		}
		out = append(out, ck)
	}
	return out, nil
}

// eventAnswer is what the control API answers for an event it emitted.
type eventAnswer struct {
	EventID   string `json:"eventId"`
	Type      string `json:"type"`
	Timestamp string `json:"timestamp"`
	SessionID string `json:"sessionId,omitempty"`
	State     string `json:"state,omitempty"`
}

// handleOutcome is POST /emulator/v1/sessions/{sessionId}/outcome: the
// session takes the state of the event, its checks and a history entry
// whose created_at is the webhook's timestamp; the webhook is emitted.
func (e *Emulator) handleOutcome() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sid, ok := pathID(r, "sessionId")
		if !ok {
			controlError(w, http.StatusBadRequest, "sessionId must be a UUID")
			return
		}
		var in outcomeInput
		if err := decodeOptional(r, &in); err != nil {
			controlError(w, http.StatusBadRequest, "%v", err)
			return
		}
		state, ok := outcomeStates[in.Event]
		if !ok {
			controlError(w, http.StatusBadRequest, "event must be one of kyc_session_failed, kyc_session_verified, kyc_session_manual_review, kyc_session_expired")
			return
		}
		checksIn := defaultChecks(in.Event)
		if in.Checks != nil {
			checksIn = *in.Checks
		}
		owner, err := ownerOf(in.UserID, in.RelatedPartyID)
		if err != nil {
			controlError(w, http.StatusBadRequest, "%v", err)
			return
		}
		checks, err := toChecks(checksIn)
		if err != nil {
			controlError(w, http.StatusBadRequest, "%v", err)
			return
		}

		e.mu.Lock()
		defer e.mu.Unlock()
		s := e.sessions[sid]
		switch {
		case s == nil && owner == nil:
			controlError(w, http.StatusNotFound, "no session %s: create it with POST /api/v1/account/users/{uid}/identity-verifications, or give userId (or relatedPartyId) in this body to open it here", sid)
			return
		case s == nil:
			if ss := e.bySubject[owner.ID]; len(ss) > 0 && ss[0].subject != *owner {
				controlError(w, http.StatusConflict, "%s is a %s", owner.ID, ss[0].subject.Type)
				return
			}
			s = e.newSession(sid, *owner, baseURL(r), "", "", nil)
		case owner != nil && *owner != s.subject:
			controlError(w, http.StatusConflict, "session %s belongs to %s %s", sid, s.subject.Type, s.subject.ID)
			return
		}
		at := e.transition(s, state)
		for i := range checks {
			checks[i].at = at
		}
		s.checks = checks
		id := e.emit(in.Event, s.id, s.subject.ID, at, sessionData(s.id, s.subject, checks))
		writeJSON(w, http.StatusOK, eventAnswer{EventID: id, Type: in.Event, Timestamp: formatTime(at), SessionID: s.id, State: state})
	})
}

// ownerOf reads the optional owner of a session opened by an outcome.
func ownerOf(userID, relatedPartyID string) (*ralio.Subject, error) {
	switch {
	case userID != "" && relatedPartyID != "":
		return nil, fmt.Errorf("give userId or relatedPartyId, not both")
	case userID != "":
		u, err := uuid.Parse(userID)
		if err != nil {
			return nil, fmt.Errorf("userId must be a UUID")
		}
		return &ralio.Subject{Type: ralio.SubjectUser, ID: u.String()}, nil
	case relatedPartyID != "":
		u, err := uuid.Parse(relatedPartyID)
		if err != nil {
			return nil, fmt.Errorf("relatedPartyId must be a UUID")
		}
		return &ralio.Subject{Type: ralio.SubjectRelatedParty, ID: u.String()}, nil
	}
	return nil, nil
}

// handleStart is POST /emulator/v1/sessions/{sessionId}/start: the user
// opened the hosted page. The session becomes STARTED; no webhook, since
// Ralio announces no STARTED.
func (e *Emulator) handleStart() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sid, _ := pathID(r, "sessionId")
		e.mu.Lock()
		defer e.mu.Unlock()
		s := e.sessions[sid]
		switch {
		case s == nil:
			controlError(w, http.StatusNotFound, "no session %s", r.PathValue("sessionId"))
			return
		case s.state != StateNotStarted:
			controlError(w, http.StatusConflict, "session %s is %s; only a NOT_STARTED session starts", sid, s.state)
			return
		}
		at := e.transition(s, StateStarted)
		writeJSON(w, http.StatusOK, map[string]string{"sessionId": s.id, "state": StateStarted, "timestamp": formatTime(at)})
	})
}

// pathSubject is the subject of a control path: users/{id} or
// related-parties/{id}.
func pathSubject(r *http.Request, typ string) (ralio.Subject, bool) {
	id, ok := pathID(r, "id")
	return ralio.Subject{Type: typ, ID: id}, ok
}

// parseLevel reads REGULAR or LIGHT in either case.
func parseLevel(s string) (string, bool) {
	for _, l := range [...]string{ralio.LevelRegular, ralio.LevelLight} {
		if strings.EqualFold(s, l) {
			return l, true
		}
	}
	return "", false
}

// handleKYCLevel is POST /emulator/v1/users/{id}/kyc-level (and
// related-parties/{id}/kyc-level) with {"level":"REGULAR"|"LIGHT"}: emits
// kyc_state_updated.
func (e *Emulator) handleKYCLevel(subjectType string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		subject, ok := pathSubject(r, subjectType)
		if !ok {
			controlError(w, http.StatusBadRequest, "id must be a UUID")
			return
		}
		level, ok := readLevel(w, r)
		if !ok {
			return
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		at := e.stamp()
		id := e.emit(ralio.TypeKYCStateUpdated, "", subject.ID, at, levelData(subject, e.kycID(subject.ID), level))
		writeJSON(w, http.StatusOK, eventAnswer{EventID: id, Type: ralio.TypeKYCStateUpdated, Timestamp: formatTime(at)})
	})
}

// readLevel reads a level change's {"level":"REGULAR"|"LIGHT"}, answering
// 400 itself when it is not one.
func readLevel(w http.ResponseWriter, r *http.Request) (string, bool) {
	var in struct {
		Level string `json:"level"`
	}
	if err := decodeOptional(r, &in); err != nil {
		controlError(w, http.StatusBadRequest, "%v", err)
		return "", false
	}
	level, ok := parseLevel(in.Level)
	if !ok {
		controlError(w, http.StatusBadRequest, "level must be REGULAR or LIGHT")
	}
	return level, ok
}

// handleKYBLevel is POST /emulator/v1/business-users/{id}/kyb-level with
// {"level":"REGULAR"|"LIGHT"}: emits kyb_state_updated.
func (e *Emulator) handleKYBLevel() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		uid, ok := pathID(r, "id")
		if !ok {
			controlError(w, http.StatusBadRequest, "id must be a UUID")
			return
		}
		level, ok := readLevel(w, r)
		if !ok {
			return
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		at := e.stamp()
		id := e.emit(ralio.TypeKYBStateUpdated, "", uid, at, kybLevelData(uid, e.business(uid).kybID, level))
		writeJSON(w, http.StatusOK, eventAnswer{EventID: id, Type: ralio.TypeKYBStateUpdated, Timestamp: formatTime(at)})
	})
}

// handleExpirationWarning is POST /emulator/v1/users/{id}/expiration-warning
// (and related-parties/{id}/expiration-warning) with optional
// {"expirationDate":"YYYY-MM-DD","daysRemaining":N,"action":"…"}: emits
// kyc_expiration_warning. Defaults: 14 days from today, RENEW_DOCUMENT.
func (e *Emulator) handleExpirationWarning(subjectType string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		subject, ok := pathSubject(r, subjectType)
		if !ok {
			controlError(w, http.StatusBadRequest, "id must be a UUID")
			return
		}
		var in struct {
			ExpirationDate string `json:"expirationDate"`
			DaysRemaining  *int   `json:"daysRemaining"`
			Action         string `json:"action"`
		}
		if err := decodeOptional(r, &in); err != nil {
			controlError(w, http.StatusBadRequest, "%v", err)
			return
		}
		if in.Action == "" {
			in.Action = "RENEW_DOCUMENT"
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		at := e.stamp()
		today := at.Truncate(24 * time.Hour)
		switch in.ExpirationDate {
		case "":
			days := 14
			if in.DaysRemaining != nil {
				days = *in.DaysRemaining
			}
			in.DaysRemaining = &days
			in.ExpirationDate = today.AddDate(0, 0, days).Format(time.DateOnly)
		default:
			d, err := time.Parse(time.DateOnly, in.ExpirationDate)
			if err != nil {
				controlError(w, http.StatusBadRequest, "expirationDate must be YYYY-MM-DD")
				return
			}
			if in.DaysRemaining == nil {
				days := int(math.Round(d.Sub(today).Hours() / 24))
				in.DaysRemaining = &days
			}
		}
		id := e.emit(ralio.TypeKYCExpirationWarning, "", subject.ID, at,
			expirationData(subject, e.kycID(subject.ID), in.ExpirationDate, *in.DaysRemaining, in.Action))
		writeJSON(w, http.StatusOK, eventAnswer{EventID: id, Type: ralio.TypeKYCExpirationWarning, Timestamp: formatTime(at)})
	})
}

// handleInvite is POST /emulator/v1/business-users/{id}/related-parties: a
// business invites a related party (new, or relatedPartyId) to verify. A
// session opens for the party in state NOT_STARTED and
// related_party.kyc_session_created is emitted, its timestamp the created_at
// of the session's first history entry. Contact details default to
// Ralio's example.
func (e *Emulator) handleInvite() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		uid, ok := pathID(r, "id")
		if !ok {
			controlError(w, http.StatusBadRequest, "id must be a UUID")
			return
		}
		in := struct {
			RelatedPartyID      string          `json:"relatedPartyId"`
			BusinessName        string          `json:"businessName"`
			RoleType            string          `json:"roleType"`
			FirstName           string          `json:"firstName"`
			LastName            string          `json:"lastName"`
			Email               string          `json:"email"`
			PhoneNumber         string          `json:"phoneNumber"`
			Nationality         string          `json:"nationality"`
			OwnershipPercentage float64         `json:"ownershipPercentage"`
			ResidentialAddress  json.RawMessage `json:"residentialAddress"`
		}{
			BusinessName: "Example Trading S.L.", RoleType: "UBO", FirstName: "Ana", LastName: "Example",
			Email: "ana@example.com", PhoneNumber: "+34900000000", Nationality: "ES", OwnershipPercentage: 40,
			ResidentialAddress: json.RawMessage(`{"addressLine1":"1 Example Street","city":"Madrid","provinceState":"Madrid","postalCode":"28001","country":"ES"}`),
		}
		if err := decodeOptional(r, &in); err != nil {
			controlError(w, http.StatusBadRequest, "%v", err)
			return
		}
		party := uuid.NewString()
		if in.RelatedPartyID != "" {
			u, err := uuid.Parse(in.RelatedPartyID)
			if err != nil {
				controlError(w, http.StatusBadRequest, "relatedPartyId must be a UUID")
				return
			}
			party = u.String()
		}
		if !isObject(in.ResidentialAddress) {
			controlError(w, http.StatusBadRequest, "residentialAddress must be an object")
			return
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		subject := ralio.Subject{Type: ralio.SubjectRelatedParty, ID: party}
		if ss := e.bySubject[party]; len(ss) > 0 && ss[0].subject != subject {
			controlError(w, http.StatusConflict, "%s is a user, not a related party", party)
			return
		}
		s := e.newSession("", subject, baseURL(r), "", "", nil)
		details := map[string]any{
			"id": party, "roleType": in.RoleType, "firstName": in.FirstName, "lastName": in.LastName,
			"email": in.Email, "phoneNumber": in.PhoneNumber, "nationality": in.Nationality,
			"ownershipPercentage": in.OwnershipPercentage, "residentialAddress": in.ResidentialAddress,
			"status": "KYC_PENDING",
		}
		id := e.emit(ralio.TypeRelatedPartyInvited, s.id, party, s.createdAt, invitationData(e.business(uid), in.BusinessName, details, s))
		writeJSON(w, http.StatusOK, map[string]string{
			"eventId": id, "type": ralio.TypeRelatedPartyInvited, "timestamp": formatTime(s.createdAt),
			"relatedPartyId": party, "sessionId": s.id, "state": StateNotStarted,
			"hostedUrl": s.hostedURL, "expiresAt": formatTime(s.expiresAt),
		})
	})
}

// handleNewKYBSession is POST /emulator/v1/business-users/{id}/kyb-sessions
// with optional {"state":…, "documents":[…]}: a KYB session for the REST
// API's list. Ralio sends no webhook for it.
func (e *Emulator) handleNewKYBSession() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		uid, ok := pathID(r, "id")
		if !ok {
			controlError(w, http.StatusBadRequest, "id must be a UUID")
			return
		}
		in := struct {
			State     string          `json:"state"`
			Documents json.RawMessage `json:"documents"`
		}{State: StateNotStarted, Documents: json.RawMessage(`[]`)}
		if err := decodeOptional(r, &in); err != nil {
			controlError(w, http.StatusBadRequest, "%v", err)
			return
		}
		switch in.State {
		case StateNotStarted, StateStarted, StateVerified, StateReview, StateRejected, StateExpired:
		default:
			controlError(w, http.StatusBadRequest, "state must be one of NOT_STARTED, STARTED, VERIFIED, REVIEW, REJECTED, EXPIRED")
			return
		}
		var docs []json.RawMessage
		if json.Unmarshal(in.Documents, &docs) != nil || docs == nil {
			controlError(w, http.StatusBadRequest, "documents must be an array")
			return
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		b := e.business(uid)
		at := e.stamp()
		k := &kybSession{id: uuid.NewString(), state: in.State, documents: in.Documents, createdAt: at, updatedAt: at}
		b.sessions = append(b.sessions, k)
		writeJSON(w, http.StatusCreated, kybSessionJSON{
			ID: k.id, KYBID: b.kybID, State: k.state, Documents: k.documents,
			CreatedAt: formatTime(at), UpdatedAt: formatTime(at),
		})
	})
}

// handleDeliveries is GET /emulator/v1/deliveries[?eventId=&sessionId=&state=]:
// every webhook with its attempts and state, and whether the emulator is
// idle (nothing scheduled or being sent), which tests wait for.
func (e *Emulator) handleDeliveries() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		state := q.Get("state")
		switch state {
		case "", DeliveryPending, DeliveryDelivered, DeliveryDropped, DeliveryGaveUp:
		default:
			controlError(w, http.StatusBadRequest, "state must be pending, delivered, dropped or gave_up")
			return
		}
		views, idle := e.Deliveries(strings.ToLower(q.Get("eventId")), strings.ToLower(q.Get("sessionId")), state)
		writeJSON(w, http.StatusOK, map[string]any{"deliveries": views, "idle": idle})
	})
}

// handleRedeliver is POST /emulator/v1/deliveries/{eventId}/redeliver: a
// new round of attempts for a webhook, whatever its state, with the same
// body. It answers the delivery.
func (e *Emulator) handleRedeliver() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, ok := e.Redeliver(strings.ToLower(r.PathValue("eventId")))
		if !ok {
			controlError(w, http.StatusNotFound, "no webhook with event id %s", r.PathValue("eventId"))
			return
		}
		writeJSON(w, http.StatusOK, v)
	})
}

// handleHosted is GET /hosted/{sessionId}: the stand-in for Ralio's hosted
// verification page, which a hostedUrl points to.
func (e *Emulator) handleHosted() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sid, _ := pathID(r, "sessionId")
		e.mu.Lock()
		s := e.sessions[sid]
		state, id := "", ""
		if s != nil {
			// The page names the session by its own id, never by the
			// request's text.
			state, id = s.state, s.id
		}
		e.mu.Unlock()
		if s == nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		// A browser gone mid-page has no one left to tell.
		_, _ = fmt.Fprintf(w, "kycd emulator: Ralio's hosted verification page for session %s (state %s).\n\n"+
			"A user would verify here. Drive the session instead:\n"+
			"  POST /emulator/v1/sessions/%s/start\n"+
			"  POST /emulator/v1/sessions/%s/outcome {\"event\":\"kyc_session_verified\"}\n", id, state, id, id)
	})
}
