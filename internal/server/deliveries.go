package server

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/app"
)

func handleDeliveries(o Options) http.Handler {
	return handleRead(o, func(r *http.Request) (any, error) {
		q := r.URL.Query()
		f := kycd.DeliveryFilter{State: q.Get("state"), Sink: q.Get("sink"), Cursor: q.Get("cursor")}
		switch f.State {
		case "", kycd.DeliveryPending, kycd.DeliveryDelivered, kycd.DeliveryDead, kycd.DeliveryDropped:
		default:
			return nil, kycd.Errorf(kycd.EINVALID, "state must be pending, delivered, dead or dropped")
		}
		switch q.Get("orphaned") {
		case "", "0", "false":
		case "1", "true":
			f.Orphaned = true
		default:
			return nil, kycd.Errorf(kycd.EINVALID, "orphaned must be true or false")
		}
		var err error
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

// Resumed is the answer to a resume: how many pending deliveries of the
// sink are due again.
type Resumed struct {
	Sink    string `json:"sink"`
	Pending int    `json:"pending"`
}

func handleSinkResume(o Options) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		n, err := o.App.ResumeSink(r.Context(), actorOf(r), name)
		if err != nil {
			writeError(w, r, o.Logger, err)
			return
		}
		writeJSON(w, http.StatusOK, Resumed{Sink: name, Pending: n})
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
