package server

import (
	"net/http"

	"github.com/kycd/kycd"
)

func handleDeliveries(o Options) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		state := r.URL.Query().Get("state")
		switch state {
		case "", kycd.DeliveryPending, kycd.DeliveryDelivered, kycd.DeliveryDead:
		default:
			writeProblem(w, Problem{Status: http.StatusBadRequest, Detail: "state must be pending, delivered or dead"})
			return
		}
		limit, err := queryLimit(r)
		if err != nil {
			writeError(w, r, o.Logger, err)
			return
		}
		items, err := o.Store.Deliveries(r.Context(), state, kycd.PageLimit(limit))
		if err != nil {
			writeError(w, r, o.Logger, err)
			return
		}
		for _, d := range items {
			d.Sink = kycd.SinkLabel(d.Sink)
		}
		writeJSON(w, http.StatusOK, map[string]any{"items": items})
	})
}

func handleDelivery(o Options) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, err := o.Store.Delivery(r.Context(), pathID(r))
		if err != nil {
			writeError(w, r, o.Logger, err)
			return
		}
		d.Sink = kycd.SinkLabel(d.Sink)
		writeJSON(w, http.StatusOK, d)
	})
}

func handleDeliveryRetry(o Options) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := pathID(r)
		if err := o.Store.RetryDelivery(r.Context(), id, o.Now()); err != nil {
			writeError(w, r, o.Logger, err)
			return
		}
		if o.WakeDispatcher != nil {
			o.WakeDispatcher()
		}
		writeJSON(w, http.StatusAccepted, map[string]string{"id": id, "state": kycd.DeliveryPending})
	})
}
