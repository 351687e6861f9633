package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/ingest"
	"github.com/kycd/kycd/ralio"
)

// ingestTimeout bounds the store work of one delivery, well inside the 60 s
// that Ralio waits, so a stuck store answers 503 (retried) instead of timing
// out on Ralio's side.
const ingestTimeout = 20 * time.Second

// handleWebhook receives Ralio's deliveries. Only a committed event is
// answered 200; every failure of kycd's own is a 503 so that Ralio retries;
// a 4xx (which Ralio never retries) is answered only for a request that can
// never succeed, and a refused body is kept in quarantine first.
func handleWebhook(o Options) http.Handler {
	m := o.Metrics
	log := o.Logger
	slots := make(chan struct{}, o.MaxInFlight)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := o.Now()
		// Accepted events are counted by the projector, with the outcome
		// their projection had; the webhook counts the rest.
		typ, outcome := "unknown", ""
		defer func() {
			if outcome != "" {
				m.EventsReceived.WithLabelValues(typ, outcome).Inc()
			}
			m.IngestDuration.Observe(o.Now().Sub(start).Seconds())
		}()

		if o.Draining.Load() {
			outcome = "unavailable"
			writeProblem(w, Problem{Status: http.StatusServiceUnavailable, Detail: "kycd is shutting down; retry later"})
			return
		}
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
		default:
			outcome = "overloaded"
			writeProblem(w, Problem{Status: http.StatusServiceUnavailable, Detail: "kycd is overloaded; retry later"})
			return
		}
		if r.Method != http.MethodPost {
			outcome = "method_not_allowed"
			w.Header().Set("Allow", http.MethodPost)
			writeProblem(w, Problem{Status: http.StatusMethodNotAllowed, Detail: "Ralio webhooks are delivered with POST"})
			return
		}
		// A missing Content-Type is let through: refusing it would lose the
		// event for good, and the body is checked as JSON anyway.
		if ct := r.Header.Get("Content-Type"); ct != "" && !isJSON(ct) {
			outcome = "unsupported_media_type"
			writeProblem(w, Problem{Status: http.StatusUnsupportedMediaType, Detail: "the body must be application/json"})
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, o.MaxBody))
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				outcome = "too_large"
				log.WarnContext(r.Context(), "webhook body over the limit", "limit", o.MaxBody)
				writeProblem(w, Problem{Status: http.StatusRequestEntityTooLarge, Detail: "the body is over the size limit"})
				return
			}
			outcome = "unavailable"
			writeProblem(w, Problem{Status: http.StatusServiceUnavailable, Detail: "could not read the body"})
			return
		}
		if err := o.Verifier.Verify(body, r.Header.Get(ralio.SignatureHeader)); err != nil {
			outcome = "unauthorized"
			m.SignatureFailures.Inc()
			// Loud on purpose: a wrong secret would otherwise drop real
			// events silently. The body is never logged.
			log.WarnContext(r.Context(), "webhook signature refused", "reason", err.Error(),
				"remote", r.RemoteAddr, "bytes", len(body))
			writeProblem(w, Problem{Status: http.StatusUnauthorized, Detail: "missing or wrong " + ralio.SignatureHeader})
			return
		}

		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), ingestTimeout)
		defer cancel()
		res, err := o.Ingester.Receive(ctx, body)
		if res.Known {
			typ = res.EventType
		} else if res.EventType != "" {
			typ = "other"
		}
		attrs := []any{"event_id", res.EventID, "type", res.EventType}
		switch code := kycd.ErrorCode(err); code {
		case "":
			if res.Duplicate {
				outcome = kycd.OutcomeDuplicate
				log.InfoContext(ctx, "event received again", append(attrs, "outcome", outcome, "duration", o.Now().Sub(start))...)
				writeJSON(w, http.StatusOK, map[string]bool{"received": true, "duplicate": true})
				return
			}
			log.InfoContext(ctx, "event received", append(attrs, "seq", res.Seq, "duration", o.Now().Sub(start))...)
			writeJSON(w, http.StatusOK, map[string]bool{"received": true})
		case kycd.EINVALID:
			outcome = "invalid"
			log.WarnContext(ctx, "event refused: invalid", append(attrs, "quarantine_id", res.QuarantineID)...)
			writeProblem(w, ingest.Problem(err))
		case kycd.ECONFLICT:
			outcome = "conflict"
			log.WarnContext(ctx, "event refused: id reused with another body", append(attrs, "quarantine_id", res.QuarantineID)...)
			writeProblem(w, ingest.Problem(err))
		default:
			outcome = "unavailable"
			log.ErrorContext(ctx, "event not recorded; asking Ralio to retry", append(attrs, "err", err)...)
			writeProblem(w, Problem{Status: http.StatusServiceUnavailable, Detail: "the event could not be recorded; retry later"})
		}
	})
}
