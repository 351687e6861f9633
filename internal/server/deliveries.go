package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/app"
)

func handleDeliveries(o Options) http.Handler {
	return handleRead(o, func(r *http.Request) (any, error) {
		q := r.URL.Query()
		sel, err := deliverySelector(q)
		if err != nil {
			return nil, err
		}
		f := kycd.DeliveryFilter{State: sel.State, Sink: sel.Sink, DeliveryMatch: sel.DeliveryMatch, Cursor: q.Get("cursor")}
		switch q.Get("orphaned") {
		case "", "0", "false":
		case "1", "true":
			f.Orphaned = true
		default:
			return nil, kycd.Errorf(kycd.EINVALID, "orphaned must be true or false")
		}
		if f.Limit, err = queryLimit(r); err != nil {
			return nil, err
		}
		page, err := o.App.Deliveries(r.Context(), f)
		if err != nil {
			return nil, err
		}
		for _, d := range page.Items {
			app.RedactDelivery(d)
		}
		return page, nil
	})
}

// deliverySelector reads ?state=, ?sink=, ?type=, ?session=, ?subject=,
// ?since=, ?until= (RFC 3339) and ?error=.
func deliverySelector(q url.Values) (kycd.DeliverySelector, error) {
	sel := kycd.DeliverySelector{State: q.Get("state"), Sink: q.Get("sink"), DeliveryMatch: kycd.DeliveryMatch{
		Type: q.Get("type"), SessionID: q.Get("session"), SubjectID: q.Get("subject"), Error: q.Get("error")}}
	var err error
	if sel.Since, err = queryTime(q, "since"); err != nil {
		return sel, err
	}
	if sel.Until, err = queryTime(q, "until"); err != nil {
		return sel, err
	}
	return sel, app.CheckDeliveryState(sel.State)
}

func handleDeliverySummary(o Options) http.Handler {
	return handleRead(o, func(r *http.Request) (any, error) {
		sel, err := deliverySelector(r.URL.Query())
		if err != nil {
			return nil, err
		}
		return o.App.DeliverySummary(r.Context(), sel)
	})
}

// BulkRetried is the answer to a retry by filter.
type BulkRetried struct {
	Matched int `json:"matched"`
	Retried int `json:"retried"`
}

// BulkDropped is the answer to a drop by filter.
type BulkDropped struct {
	Matched int `json:"matched"`
	Dropped int `json:"dropped"`
}

// readSelector decodes a bulk change's filter: a JSON object of the list's
// query parameters, times in RFC 3339. No body is the empty filter, which
// the application layer refuses.
func readSelector(w http.ResponseWriter, r *http.Request) (kycd.DeliverySelector, error) {
	var sel kycd.DeliverySelector
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 4<<10))
	if err != nil {
		return sel, kycd.Errorf(kycd.EINVALID, "the body must be a JSON filter of at most 4 KiB, e.g. {\"state\":\"dead\",\"sink\":\"crm\"}")
	}
	if strings.TrimSpace(string(body)) == "" {
		return sel, nil
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sel); err != nil {
		return sel, kycd.Errorf(kycd.EINVALID, "the body must be a JSON filter with state, sink, type, session, subject, since, until or error, e.g. {\"state\":\"dead\",\"sink\":\"crm\"}: %v", err)
	}
	return sel, nil
}

func handleDeliveriesRetry(o Options) http.Handler {
	return handleBulk(o, o.App.RetryMatching, http.StatusAccepted, func(res kycd.BulkChange) any {
		return BulkRetried{Matched: res.Matched, Retried: res.Changed}
	})
}

func handleDeliveriesDrop(o Options) http.Handler {
	return handleBulk(o, o.App.DropMatching, http.StatusOK, func(res kycd.BulkChange) any {
		return BulkDropped{Matched: res.Matched, Dropped: res.Changed}
	})
}

// handleBulk answers a bulk change by the filter of the request's body:
// status with answer's view of what change did.
func handleBulk(o Options, change func(context.Context, app.Actor, kycd.DeliverySelector) (kycd.BulkChange, error), status int, answer func(kycd.BulkChange) any) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sel, err := readSelector(w, r)
		if err == nil {
			var res kycd.BulkChange
			if res, err = change(r.Context(), actorOf(r), sel); err == nil {
				writeJSON(w, status, answer(res))
				return
			}
		}
		writeError(w, r, o.Logger, err)
	})
}

// handleDelivery answers a delivery with its notification. An
// invitation's contact details and verification URL are personal data: a
// token below admin gets the notification without them, and an admin's
// read of them is audited first.
func handleDelivery(o Options) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, err := o.App.Delivery(r.Context(), pathID(r))
		if err != nil {
			writeError(w, r, o.Logger, err)
			return
		}
		if !callerOf(r).Role.Allows(kycd.RoleAdmin) {
			d.Payload, _ = withoutInvitation(d.Payload)
		} else if _, personal := withoutInvitation(d.Payload); personal {
			if err := o.record(r, kycd.AuditDeliveryRead, auditTarget(kycd.AuditDeliveryRead, r), kycd.AuditOK, "invitation contact data"); err != nil {
				writeError(w, r, o.Logger, kycd.Errorf(kycd.EUNAVAILABLE, "the read could not be recorded in the audit trail; try again"))
				return
			}
		}
		writeJSON(w, http.StatusOK, d)
	})
}

func handleDeliveryRetry(o Options) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := pathID(r)
		if err := o.App.RetryDelivery(r.Context(), actorOf(r), id); err != nil {
			writeError(w, r, o.Logger, err)
			return
		}
		writeJSON(w, http.StatusAccepted, map[string]string{"id": id, "state": kycd.DeliveryPending})
	})
}

// MoveRequest names the sink a delivery moves to.
type MoveRequest struct {
	Sink string `json:"sink"`
}

// DeliveryChange is the answer to a move or a drop: the delivery's sink and
// state after it.
type DeliveryChange struct {
	ID    string `json:"id"`
	Sink  string `json:"sink"`
	State string `json:"state"`
}

func handleDeliveryMove(o Options) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// An empty body names no sink: the move says whether the delivery
		// exists before it says that.
		var req MoveRequest
		if err := readSinkRequest(w, r, &req, "the body must be JSON naming the sink, e.g. {\"sink\":\"crm\"}"); err != nil {
			writeError(w, r, o.Logger, err)
			return
		}
		id := pathID(r)
		if err := o.App.MoveDelivery(r.Context(), actorOf(r), id, req.Sink); err != nil {
			writeError(w, r, o.Logger, err)
			return
		}
		writeJSON(w, http.StatusAccepted, DeliveryChange{ID: id, Sink: req.Sink, State: kycd.DeliveryPending})
	})
}

func handleDeliveryDrop(o Options) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := pathID(r)
		d, err := o.App.DropDelivery(r.Context(), actorOf(r), id)
		if err != nil {
			writeError(w, r, o.Logger, err)
			return
		}
		writeJSON(w, http.StatusOK, DeliveryChange{ID: id, Sink: d.Sink, State: d.State})
	})
}

// ResendRequest names the one sink a resend goes to; without it, every
// configured sink that takes the notification's type.
type ResendRequest struct {
	Sink string `json:"sink,omitempty"`
}

// Resent is the answer to a resend: what it did per sink.
type Resent struct {
	NotificationID string        `json:"notificationId"`
	Deliveries     []kycd.Resent `json:"deliveries"`
}

func handleNotificationResend(o Options) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req ResendRequest
		if err := readSinkRequest(w, r, &req, "the body must be JSON, e.g. {\"sink\":\"crm\"}, or empty for every sink"); err != nil {
			writeError(w, r, o.Logger, err)
			return
		}
		id := pathID(r)
		resent, err := o.App.ResendNotification(r.Context(), actorOf(r), id, req.Sink)
		if err != nil {
			writeError(w, r, o.Logger, err)
			return
		}
		writeJSON(w, http.StatusAccepted, Resent{NotificationID: id, Deliveries: resent})
	})
}

func handleSinks(o Options) http.Handler {
	return handleRead(o, func(r *http.Request) (any, error) {
		sinks, err := o.App.ListSinks(r.Context())
		if err != nil {
			return nil, err
		}
		return map[string]any{"items": sinks}, nil
	})
}

// Resumed is the answer to a resume: whether the sink was paused, and how
// many of its pending deliveries are due again.
type Resumed struct {
	Sink      string `json:"sink"`
	WasPaused bool   `json:"wasPaused"`
	Pending   int    `json:"pending"`
}

func handleSinkResume(o Options) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		res, err := o.App.ResumeSinkReport(r.Context(), actorOf(r), name)
		if err != nil {
			writeError(w, r, o.Logger, err)
			return
		}
		writeJSON(w, http.StatusOK, Resumed{Sink: name, WasPaused: res.WasPaused, Pending: res.Pending})
	})
}

// actorOf is the caller of a request as the application layer's audit
// entries name it: the token's name, from the request's remote address.
func actorOf(r *http.Request) app.Actor {
	return app.Actor{Name: callerOf(r).Name, Remote: remoteHost(r)}
}

// readSinkRequest decodes the small JSON body of a request naming a sink
// into v; an empty body leaves v as it is. EINVALID, with notJSON as the
// message, for a body that is not JSON; EINVALID for one over 4 KiB.
func readSinkRequest(w http.ResponseWriter, r *http.Request, v any, notJSON string) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 4<<10))
	if err != nil {
		return kycd.Errorf(kycd.EINVALID, "the body must be JSON of at most 4 KiB, e.g. {\"sink\":\"crm\"}")
	}
	if strings.TrimSpace(string(body)) == "" {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return kycd.Errorf(kycd.EINVALID, "%s", notJSON)
	}
	return nil
}
