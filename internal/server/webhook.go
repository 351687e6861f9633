package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"go.opentelemetry.io/otel/codes"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/ingest"
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
//
// Nothing a client without the secret sends can make a signed delivery wait
// or fail, short of flooding the network: its body is read under a deadline
// it cannot stretch, into memory counted by the bytes it really sent
// (bodyBudget), and only a body whose signature holds takes one of the
// MaxInFlight places that wait for a commit.
func handleWebhook(o Options) http.Handler {
	m := o.Metrics
	log := o.Logger
	slots := make(chan struct{}, o.MaxInFlight)
	budget := newBodyBudget(o.BodyBudget, o.PeerBodyBudget)
	badSignatures := &sampler{every: time.Second}
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

		// The deadline holds from now whatever the client does: trickling
		// bytes does not extend it. Handlers outside a real server (tests)
		// cannot set it and need not.
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(o.BodyTimeout))
		if o.Draining.Load() {
			outcome = "unavailable"
			// Read to the end: a client still sending would otherwise find
			// its connection reset, not the answer. (New has set
			// Connection: close.)
			discard(r.Body, o.MaxBody)
			writeProblem(w, Problem{Status: http.StatusServiceUnavailable, Detail: "kycd is shutting down; retry later"})
			return
		}
		if r.Method != http.MethodPost {
			outcome = "method_not_allowed"
			w.Header().Set("Allow", http.MethodPost)
			writeProblem(w, Problem{Status: http.StatusMethodNotAllowed, Detail: "Ralio webhooks are delivered with POST"})
			return
		}
		// An unsigned request (no X-Signature) of a type that is not JSON
		// is refused before its body is read. A signed one is read and
		// verified first: once its signature holds, it is Ralio's and read
		// as JSON whatever its Content-Type, so that no signed event is
		// lost to a 415. (A missing Content-Type is let through: the body
		// is checked as JSON anyway.)
		signature := r.Header.Get(ralio.SignatureHeader)
		if ct := r.Header.Get("Content-Type"); signature == "" && ct != "" && !isJSON(ct) {
			outcome = "unsupported_media_type"
			writeProblem(w, Problem{Status: http.StatusUnsupportedMediaType, Detail: "the body must be application/json"})
			return
		}
		peer := peerOf(r.RemoteAddr)
		var held int64
		defer func() { budget.release(peer, held) }()
		body, err := budget.read(r.Body, peer, r.ContentLength, o.MaxBody, &held)
		if errors.Is(err, errOverBudget) || errors.Is(err, errOverShare) {
			outcome = "overloaded"
			m.bodyBudgetRefused(err)
			// Read to the end without keeping it: a client still sending
			// would otherwise find its connection reset, not the answer.
			if !discard(r.Body, o.MaxBody) {
				w.Header().Set("Connection", "close")
			}
			writeProblem(w, Problem{Status: http.StatusServiceUnavailable, Detail: "kycd is overloaded; retry later"})
			return
		}
		if err != nil {
			// The rest of the body is not read: the connection cannot carry
			// another request.
			w.Header().Set("Connection", "close")
			switch {
			case errors.Is(err, errBodyTooLarge):
				outcome = "too_large"
				log.WarnContext(r.Context(), "webhook body over the limit", "limit", o.MaxBody, "remote", r.RemoteAddr)
				writeProblem(w, Problem{Status: http.StatusRequestEntityTooLarge, Detail: "the body is over the size limit"})
			case errors.Is(err, os.ErrDeadlineExceeded):
				outcome = "body_timeout"
				writeProblem(w, Problem{Status: http.StatusServiceUnavailable, Detail: "the body did not arrive in time; retry later"})
			default:
				outcome = "unavailable"
				writeProblem(w, Problem{Status: http.StatusServiceUnavailable, Detail: "could not read the body"})
			}
			return
		}
		// A gzip body is decoded (bounded: see gunzip), and its signature
		// holds over either the decoded or the received bytes. What is
		// kept, in the log or the quarantine, is the decoded body, so a
		// replay reads it as it reads any other. A body that does not
		// decode, or one of a coding kycd does not decode, goes on as
		// received, so a signed one is still taken if it is an event, and
		// refused 400 and kept if not.
		_, verifying := o.span(r.Context(), "kycd.webhook.verify")
		defer verifying.End() // on the ways out below; End twice is once
		verified := false
		if contentCoding(r.Header.Values("Content-Encoding")) == "gzip" {
			decoded, err := budget.gunzip(body, peer, o.MaxBody, &held)
			switch {
			case err == nil:
				// Over the decoded bytes first: those are what is kept.
				verified = o.Verifier.Verify(decoded, signature) == nil || o.Verifier.Verify(body, signature) == nil
				body = decoded
			case errors.Is(err, errOverBudget), errors.Is(err, errOverShare):
				outcome = "overloaded"
				m.bodyBudgetRefused(err)
				writeProblem(w, Problem{Status: http.StatusServiceUnavailable, Detail: "kycd is overloaded; retry later"})
				return
			case errors.Is(err, errBodyTooLarge):
				outcome = "too_large"
				log.WarnContext(r.Context(), "decoded webhook body over the limit", "limit", o.MaxBody, "remote", r.RemoteAddr, "bytes", len(body))
				writeProblem(w, Problem{Status: http.StatusRequestEntityTooLarge, Detail: "the decoded body is over the size limit"})
				return
			}
		}
		if !verified {
			if err := o.Verifier.Verify(body, signature); err != nil {
				outcome = "unauthorized"
				m.SignatureFailures.Inc()
				// A body that came with a signature is kept in the bounded
				// signature hold, in case the signature is Ralio's under a
				// secret kycd was not given: a replay checks it again. An
				// unsigned one is not, nor one whose signature no secret
				// could have made (not a digest as Verify reads them).
				// The hold writes with a context of its own: the request's
				// ends with the 401.
				wellFormed := ralio.WellFormed(signature)
				held := wellFormed && o.Ingester.Hold(body, signature) //nolint:contextcheck // see above
				if wellFormed && !held {
					m.HoldFull.Inc()
				}
				// Loud on purpose, since a wrong secret would otherwise
				// drop real events silently, but sampled: at most a line a
				// second, counting the refusals it stands for. The body is
				// never logged.
				if n := badSignatures.sample(o.Now()); n > 0 {
					log.WarnContext(r.Context(), "webhook signature refused", "reason", err.Error(),
						"remote", r.RemoteAddr, "bytes", len(body), "held", held, "count", n)
				}
				verifying.SetStatus(codes.Error, "signature refused")
				writeProblem(w, Problem{Status: http.StatusUnauthorized, Detail: "missing or wrong " + ralio.SignatureHeader})
				return
			}
		}
		verifying.End()
		// Ralio's connection: it keeps the server's idle timeout, not the
		// short one of connections that never proved anything.
		Trust(r.Context())
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
		default:
			outcome = "overloaded"
			writeProblem(w, Problem{Status: http.StatusServiceUnavailable, Detail: "kycd is overloaded; retry later"})
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
		// A refused body may have no event id or type: such fields are left
		// out rather than logged empty.
		attrs := present("event_id", res.EventID, "type", res.EventType)
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
			log.WarnContext(ctx, "event refused: invalid", append(attrs, present("quarantine_id", res.QuarantineID)...)...)
			writeProblem(w, ingest.Problem(err))
		case kycd.ECONFLICT:
			outcome = "conflict"
			log.WarnContext(ctx, "event refused: id reused with another body", append(attrs, present("quarantine_id", res.QuarantineID)...)...)
			writeProblem(w, ingest.Problem(err))
		default:
			outcome = "unavailable"
			log.ErrorContext(ctx, "event not recorded; asking Ralio to retry", append(attrs, "err", err)...)
			writeProblem(w, Problem{Status: http.StatusServiceUnavailable, Detail: "the event could not be recorded; retry later"})
		}
	})
}

// present returns the key-value pairs of kv whose value is not empty, as
// slog attributes.
func present(kv ...string) []any {
	out := make([]any, 0, len(kv))
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			out = append(out, kv[i], kv[i+1])
		}
	}
	return out
}

// discard reads what is left of body, at most limit bytes, without keeping
// it, and reports whether it reached the end.
func discard(body io.Reader, limit int64) bool {
	n, err := io.CopyN(io.Discard, body, limit+1)
	return errors.Is(err, io.EOF) && n <= limit
}

// sampler lets one log line a period through, standing for every event
// since the last one.
type sampler struct {
	every time.Duration
	mu    sync.Mutex
	last  time.Time
	n     int
}

// sample counts an event at now and returns how many events the line to
// log now stands for, or 0 when none is to be logged.
func (s *sampler) sample(now time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	if !s.last.IsZero() && now.Sub(s.last) < s.every {
		return 0
	}
	n := s.n
	s.last, s.n = now, 0
	return n
}
