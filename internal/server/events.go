package server

import (
	"net/http"

	"github.com/kycd/kycd"
)

func handleEventList(o Options) http.Handler {
	return handleRead(o, func(r *http.Request) (any, error) {
		limit, err := queryLimit(r)
		if err != nil {
			return nil, err
		}
		q := r.URL.Query()
		return o.App.Events(r.Context(), kycd.EventFilter{Type: q.Get("type"), Limit: limit, Cursor: q.Get("cursor")})
	})
}

// handleEvent answers an event with its raw body (personal data), once the
// read is in the audit trail; a read that cannot be recorded is not
// answered.
func handleEvent(o Options) http.Handler {
	return handleRead(o, func(r *http.Request) (any, error) {
		return o.App.EventWithBody(r.Context(), actorOf(r), pathID(r))
	})
}

// handleEventSummary answers an event without its body: what any token may
// read of it, unaudited.
func handleEventSummary(o Options) http.Handler {
	return handleRead(o, func(r *http.Request) (any, error) {
		ev, err := o.App.Event(r.Context(), pathID(r))
		if err != nil {
			return nil, err
		}
		return ev.EventRecord, nil
	})
}
