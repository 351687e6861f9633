package server

import (
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/app"
)

// queryLimit reads ?limit=, naming it when it is not a number.
func queryLimit(r *http.Request) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, kycd.Errorf(kycd.EINVALID, "limit must be a positive number (at most 500)")
	}
	return n, nil
}

func handleSession(o Options) http.Handler {
	return handleRead(o, func(r *http.Request) (any, error) {
		s, err := o.App.Session(r.Context(), pathID(r))
		if err != nil {
			return nil, err
		}
		// The sentence the user is given for each failure, as a
		// rejection's notification carries it.
		for i := range s.Failures {
			s.Failures[i].Guidance = o.Guide(s.Failures[i].Code)
		}
		return s, nil
	})
}

func handleSessionList(o Options) http.Handler {
	return handleRead(o, func(r *http.Request) (any, error) {
		q := r.URL.Query()
		limit, err := queryLimit(r)
		if err != nil {
			return nil, err
		}
		f := kycd.SessionFilter{Status: kycd.Status(q.Get("status")), SubjectID: q.Get("subject"), Limit: limit, Cursor: q.Get("cursor")}
		if err := sessionSearch(q, &f); err != nil {
			return nil, err
		}
		return o.App.Sessions(r.Context(), f)
	})
}

// sessionSearch reads ?code=, ?since= and ?until= (RFC 3339) into f.
func sessionSearch(q url.Values, f *kycd.SessionFilter) error {
	f.Code = q.Get("code")
	var err error
	if f.Since, err = queryTime(q, "since"); err != nil {
		return err
	}
	f.Until, err = queryTime(q, "until")
	return err
}

// queryTime reads the RFC 3339 time of the query parameter name, zero
// when it is absent.
func queryTime(q url.Values, name string) (time.Time, error) {
	v := q.Get(name)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, kycd.Errorf(kycd.EINVALID, "%s must be an RFC 3339 time, e.g. 2026-11-26T00:00:00Z", name)
	}
	return t.UTC(), nil
}

// handleStalledSessions lists the sessions stalled now, by the same rule
// and threshold as the watchdog that notifies them.
func handleStalledSessions(o Options) http.Handler {
	return handleRead(o, func(r *http.Request) (any, error) {
		limit, err := queryLimit(r)
		if err != nil {
			return nil, err
		}
		return o.App.StalledSessions(r.Context(), app.StalledRequest{ReviewAlertAfter: o.ReviewAlertAfter, Limit: limit, Cursor: r.URL.Query().Get("cursor")})
	})
}

func handleSubject(o Options) http.Handler {
	return handleRead(o, func(r *http.Request) (any, error) {
		return o.App.Subject(r.Context(), pathID(r), r.URL.Query().Get("type"))
	})
}
