package emulator

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/kycd/kycd/ralio"
)

// Page sizes of the REST API's lists.
const (
	defaultPageSize = 20
	maxPageSize     = 100
)

// Views of the REST API, with CONTRACT.md's field names (its mix of
// snake_case and camelCase included).
type (
	sessionJSON struct {
		ID        string          `json:"id"`
		State     string          `json:"state"`
		Type      string          `json:"type"`
		CreatedAt string          `json:"created_at"`
		UpdatedAt string          `json:"updated_at"`
		ExpiresAt string          `json:"expiresAt"`
		HostedURL string          `json:"hostedUrl"`
		Flow      string          `json:"flow"`
		Data      json.RawMessage `json:"data"`
	}
	checksJSON struct {
		SessionID string      `json:"session_id"`
		Checks    []checkJSON `json:"checks"`
	}
	checkJSON struct {
		ID             string          `json:"id"`
		Type           string          `json:"type"`
		State          string          `json:"state"`
		Data           json.RawMessage `json:"data"`
		CreatedAt      string          `json:"created_at"`
		UpdatedAt      string          `json:"updated_at"`
		RefusedReasons []reasonJSON    `json:"refused_reasons"`
	}
	reasonJSON struct {
		ID          string          `json:"id"`
		Type        string          `json:"type"`
		Code        string          `json:"code"`
		Message     string          `json:"message"`
		MappedError json.RawMessage `json:"mappedError,omitempty"`
	}
	historyJSON struct {
		Logs []logJSON `json:"logs"`
	}
	logJSON struct {
		ID        string `json:"id"`
		NewState  string `json:"new_state"`
		CreatedAt string `json:"created_at"`
	}
	kybSessionJSON struct {
		ID        string          `json:"id"`
		KYBID     int64           `json:"kybId"`
		State     string          `json:"state"`
		Documents json.RawMessage `json:"documents"`
		CreatedAt string          `json:"createdAt"`
		UpdatedAt string          `json:"updatedAt"`
	}
	// page is a list answer: the items of one page and where it stands.
	page[T any] struct {
		Data       []T        `json:"data"`
		Pagination pagination `json:"pagination"`
	}
	pagination struct {
		Page     int  `json:"page"`
		PageSize int  `json:"pageSize"`
		NumPages int  `json:"numPages"`
		Total    int  `json:"total"`
		Next     *int `json:"next"`     // the next page's number; null on the last
		Previous *int `json:"previous"` // the previous page's number; null on the first
	}
)

func (s *session) json() sessionJSON {
	return sessionJSON{
		ID: s.id, State: s.state, Type: s.typ,
		CreatedAt: formatTime(s.createdAt), UpdatedAt: formatTime(s.updatedAt()),
		ExpiresAt: formatTime(s.expiresAt), HostedURL: s.hostedURL, Flow: s.flow, Data: s.data,
	}
}

// requireAPIKey answers 401 unless the request carries the API key as a
// bearer token.
func (e *Emulator) requireAPIKey(next http.Handler) http.Handler {
	want := []byte("Bearer " + e.opt.APIKey)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			apiError(w, http.StatusUnauthorized, "missing or wrong API key: send Authorization: Bearer <API key>")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// apiError answers the REST API's error shape.
func apiError(w http.ResponseWriter, status int, message string) {
	writeJSON(w, status, map[string]any{"statusCode": status, "error": http.StatusText(status), "message": message})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// The status is sent: a client gone mid-body has no one left to tell.
	_ = json.NewEncoder(w).Encode(v)
}

// pathID reads a UUID path parameter in canonical lower case.
func pathID(r *http.Request, name string) (string, bool) {
	u, err := uuid.Parse(r.PathValue(name))
	if err != nil {
		return "", false
	}
	return u.String(), true
}

// baseURL is the emulator's address as the client reached it, for hosted
// URLs.
func baseURL(r *http.Request) string { return "http://" + r.Host }

// handleCreateSession is POST /api/v1/account/users/{uid}/identity-verifications.
// The body is optional: {"type", "flow", "data"} with defaults KYC, default
// and {}.
func (e *Emulator) handleCreateSession() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		uid, ok := pathID(r, "uid")
		if !ok {
			apiError(w, http.StatusBadRequest, "uid must be a UUID")
			return
		}
		var in struct {
			Type string          `json:"type"`
			Flow string          `json:"flow"`
			Data json.RawMessage `json:"data"`
		}
		if err := decodeOptional(r, &in); err != nil {
			apiError(w, http.StatusBadRequest, err.Error())
			return
		}
		if len(in.Data) > 0 && !isObject(in.Data) {
			apiError(w, http.StatusBadRequest, "data must be an object")
			return
		}
		e.mu.Lock()
		s := e.newSession("", e.subjectOf(uid), baseURL(r), in.Type, in.Flow, in.Data)
		v := s.json()
		e.mu.Unlock()
		writeJSON(w, http.StatusCreated, v)
	})
}

// subjectOf is whom a session opened for id belongs to: a related party if
// the emulator invited one under that id, else a user. Callers hold e.mu.
func (e *Emulator) subjectOf(id string) ralio.Subject {
	if ss := e.bySubject[id]; len(ss) > 0 {
		return ss[0].subject
	}
	return ralio.Subject{Type: ralio.SubjectUser, ID: id}
}

// handleListSessions is GET /api/v1/account/users/{uid}/identity-verifications:
// the sessions of a user (or of a related party, by its id), oldest first.
func (e *Emulator) handleListSessions() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		uid, ok := pathID(r, "uid")
		if !ok {
			apiError(w, http.StatusBadRequest, "uid must be a UUID")
			return
		}
		p, size, err := pageParams(r)
		if err != nil {
			apiError(w, http.StatusBadRequest, err.Error())
			return
		}
		e.mu.Lock()
		all := e.bySubject[uid]
		items := make([]sessionJSON, 0, size)
		from, to := window(p, size, len(all))
		for _, s := range all[from:to] {
			items = append(items, s.json())
		}
		e.mu.Unlock()
		writeJSON(w, http.StatusOK, page[sessionJSON]{Data: items, Pagination: paginate(p, size, len(all))})
	})
}

// pathSession finds the session of the path, which must belong to uid;
// otherwise it answers 404 and returns nil. Callers hold e.mu.
func (e *Emulator) pathSession(w http.ResponseWriter, r *http.Request) *session {
	uid, ok1 := pathID(r, "uid")
	sid, ok2 := pathID(r, "sessionId")
	var s *session
	if ok1 && ok2 {
		s = e.sessions[sid]
	}
	if s == nil || s.subject.ID != uid {
		apiError(w, http.StatusNotFound, "no such identity verification for this user")
		return nil
	}
	return s
}

// handleChecks is GET …/identity-verifications/{sessionId}/checks: the
// checks of the session's newest outcome.
func (e *Emulator) handleChecks() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		defer e.mu.Unlock()
		s := e.pathSession(w, r)
		if s == nil {
			return
		}
		out := checksJSON{SessionID: s.id, Checks: []checkJSON{}}
		for _, c := range s.checks {
			cj := checkJSON{
				ID: c.id, Type: c.typ, State: c.state, Data: c.data,
				CreatedAt: formatTime(c.at), UpdatedAt: formatTime(c.at), RefusedReasons: []reasonJSON{},
			}
			for _, rs := range c.reasons {
				cj.RefusedReasons = append(cj.RefusedReasons, reasonJSON{ID: rs.id, Type: rs.typ, Code: rs.code, Message: rs.message, MappedError: rs.mappedError})
			}
			out.Checks = append(out.Checks, cj)
		}
		writeJSON(w, http.StatusOK, out)
	})
}

// handleStateHistory is GET …/identity-verifications/{sessionId}/state-history:
// every state the session was in, oldest first.
func (e *Emulator) handleStateHistory() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		defer e.mu.Unlock()
		s := e.pathSession(w, r)
		if s == nil {
			return
		}
		out := historyJSON{Logs: make([]logJSON, 0, len(s.logs))}
		for _, l := range s.logs {
			out.Logs = append(out.Logs, logJSON{ID: l.id, NewState: l.newState, CreatedAt: formatTime(l.createdAt)})
		}
		writeJSON(w, http.StatusOK, out)
	})
}

// handleKYBSessions is GET /api/v1/account/business-user/{uid}/kyb-sessions,
// paginated like the KYC list, oldest first.
func (e *Emulator) handleKYBSessions() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		uid, ok := pathID(r, "uid")
		if !ok {
			apiError(w, http.StatusBadRequest, "uid must be a UUID")
			return
		}
		p, size, err := pageParams(r)
		if err != nil {
			apiError(w, http.StatusBadRequest, err.Error())
			return
		}
		e.mu.Lock()
		var all []*kybSession
		var kybID int64
		if b := e.businesses[uid]; b != nil {
			all, kybID = b.sessions, b.kybID
		}
		items := make([]kybSessionJSON, 0, size)
		from, to := window(p, size, len(all))
		for _, k := range all[from:to] {
			items = append(items, kybSessionJSON{
				ID: k.id, KYBID: kybID, State: k.state, Documents: k.documents,
				CreatedAt: formatTime(k.createdAt), UpdatedAt: formatTime(k.updatedAt),
			})
		}
		e.mu.Unlock()
		writeJSON(w, http.StatusOK, page[kybSessionJSON]{Data: items, Pagination: paginate(p, size, len(all))})
	})
}

// pageParams reads page (from 1, default 1) and pageSize (1 to 100,
// default 20). A value out of range is refused rather than clamped, so a
// client's paging bug shows.
func pageParams(r *http.Request) (page, size int, err error) {
	page, size = 1, defaultPageSize
	q := r.URL.Query()
	if v := q.Get("page"); v != "" {
		if page, err = strconv.Atoi(v); err != nil || page < 1 {
			return 0, 0, errors.New("page must be an integer from 1")
		}
	}
	if v := q.Get("pageSize"); v != "" {
		if size, err = strconv.Atoi(v); err != nil || size < 1 || size > maxPageSize {
			return 0, 0, errors.New("pageSize must be an integer from 1 to 100")
		}
	}
	return page, size, nil
}

// window is the slice of a list of total items that page shows.
func window(page, size, total int) (from, to int) {
	from = min((page-1)*size, total)
	return from, min(from+size, total)
}

func paginate(page, size, total int) pagination {
	p := pagination{Page: page, PageSize: size, Total: total, NumPages: (total + size - 1) / size}
	if page < p.NumPages {
		next := page + 1
		p.Next = &next
	}
	if page > 1 {
		prev := min(page-1, max(p.NumPages, 1))
		p.Previous = &prev
	}
	return p
}

// decodeOptional decodes a JSON object body into v, refusing unknown
// fields; an empty body leaves v as it is.
func decodeOptional(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return err
	}
	if strings.TrimSpace(string(body)) == "" {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errors.New("body: " + err.Error())
	}
	return nil
}

func isObject(raw json.RawMessage) bool {
	var m map[string]json.RawMessage
	return json.Unmarshal(raw, &m) == nil && m != nil
}
