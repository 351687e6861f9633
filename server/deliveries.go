package server

import (
	"net/http"

	"github.com/kycd/kycd"
)

func handleDeliveries(o Options) http.Handler {
	return handleRead(o, func(r *http.Request) (any, error) {
		state := r.URL.Query().Get("state")
		switch state {
		case "", kycd.DeliveryPending, kycd.DeliveryDelivered, kycd.DeliveryDead:
		default:
			return nil, kycd.Errorf(kycd.EINVALID, "state must be pending, delivered or dead")
		}
		limit, err := queryLimit(r)
		if err != nil {
			return nil, err
		}
		items, err := o.Store.Deliveries(r.Context(), state, kycd.PageLimit(limit))
		if err != nil {
			return nil, err
		}
		for _, d := range items {
			d.Sink = kycd.SinkLabel(d.Sink)
		}
		return map[string]any{"items": items}, nil
	})
}

func handleDelivery(o Options) http.Handler {
	return handleRead(o, func(r *http.Request) (any, error) {
		d, err := o.Store.Delivery(r.Context(), pathID(r))
		if err != nil {
			return nil, err
		}
		d.Sink = kycd.SinkLabel(d.Sink)
		return d, nil
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
