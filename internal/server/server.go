// Package server is kycd's HTTP face: the Ralio webhook, the read API, the
// health and metrics endpoints.
package server

import (
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/app"
	"github.com/kycd/kycd/internal/ingest"
	"github.com/kycd/kycd/internal/requestid"
	"github.com/kycd/kycd/internal/tracing"
	"github.com/kycd/kycd/ralio"
)

// DefaultMaxBody is the largest webhook body accepted unless configured.
const DefaultMaxBody = 1 << 20

// DefaultMaxInFlight is how many signed webhook deliveries wait for their
// commit at once unless configured.
const DefaultMaxInFlight = 256

// DefaultBodyBudget is how many bytes of webhook bodies are held in memory
// at once unless configured: 32 deliveries of the largest body, or
// thousands of Ralio's usual few KiB.
const DefaultBodyBudget = 32 << 20

// DefaultPeerBodyBudget is the share of a body budget that one peer
// address may hold unless configured: a quarter.
func DefaultPeerBodyBudget(budget int64) int64 { return budget / 4 }

// DefaultBodyTimeout is how long a webhook body may take to arrive, unless
// configured: Ralio's bodies are a few KiB sent between data centres; a
// client that takes longer only holds a connection.
const DefaultBodyTimeout = 5 * time.Second

// Options are the server's dependencies.
type Options struct {
	Logger *slog.Logger
	Store  kycd.Store
	// App holds the use cases the API calls (every operator action and
	// read); made from the other options when nil.
	App        *app.Service
	Verifier   *ralio.Verifier
	Ingester   *ingest.Ingester
	Metrics    *Metrics
	AdminToken string
	MaxBody    int64 // DefaultMaxBody when 0
	// The API's tokens are the store's (Store.TokenByHash), each with its
	// role. AdminTokenHash adds one more, an admin token named admin that
	// no store holds (for a program that embeds the server, and tests);
	// AdminToken, the token itself, is hashed when AdminTokenHash is
	// empty.
	AdminTokenHash string
	// Sinks are the sinks notifications go to, each taking the types of
	// its events filter: an erasure notifies kyc.subject.erased to those
	// that take it.
	Sinks []kycd.SinkRoute
	// BodyBudget bounds the bytes of webhook bodies in memory at once
	// (DefaultBodyBudget when 0; at least MaxBody+1, which a body of unknown length needs); a body that would go
	// over it is answered 503 at once, so an overload costs Ralio a retry,
	// not kycd its memory.
	BodyBudget int64
	// PeerBodyBudget bounds the bytes of webhook bodies that the requests
	// of one peer address (an IPv4 address, an IPv6 /64) hold at once
	// (DefaultPeerBodyBudget of BodyBudget when 0; at least MaxBody+1, at
	// most BodyBudget), so that one client cannot take the whole budget.
	PeerBodyBudget int64
	// BodyTimeout bounds how long a webhook body takes to arrive, from the
	// end of its headers (DefaultBodyTimeout when 0).
	BodyTimeout time.Duration
	// MaxInFlight bounds the signed webhook deliveries waiting for their
	// commit (DefaultMaxInFlight when 0); one more is answered 503 at once.
	MaxInFlight int
	Now         func() time.Time // time.Now when nil
	// WakeDispatcher makes the dispatcher look at the outbox now (after a
	// retry); may be nil.
	WakeDispatcher func()
	// Draining, once true, makes the webhook answer 503 with Retry-After,
	// /readyz fail, and every answer close its connection: kycd is shutting
	// down. May be nil.
	Draining *atomic.Bool
	// ReadWait bounds how long an API read waits for the projection of the
	// events acknowledged before it (DefaultReadWait when 0).
	ReadWait time.Duration
	// ReviewAlertAfter is how long a session may stay in REVIEW before
	// /api/v1/sessions/stalled lists it (kycd.DefaultReviewAlertAfter when
	// 0); the watchdog's threshold.
	ReviewAlertAfter time.Duration
	// Guide gives the guidance sentence for a failure code, as the
	// notifications give it to the merchant (kycd.DefaultGuidance when
	// nil); a session's failures show it.
	Guide func(code string) string
	// TrustedProxies are the peers whose X-Forwarded-For or Forwarded
	// header names the client a request came from (forwardedClient); a
	// request of any other peer is taken as coming from the peer itself.
	TrustedProxies []netip.Prefix
	// Tracing makes the webhook's spans (its request, the signature's
	// verification; the ingester the append); none when nil or off.
	Tracing *tracing.Tracing

	touches *touches // when each token's use was last written
}

// DefaultReadWait is how long an API read waits, unless configured, for
// the events acknowledged before it to be projected.
const DefaultReadWait = 5 * time.Second

// StaleHeader is set on an API answer that may miss events acknowledged
// before the request, because their projection took longer than ReadWait.
const StaleHeader = "Kycd-Read-Stale"

// New returns kycd's HTTP handler.
func New(o Options) http.Handler {
	if o.MaxBody <= 0 {
		o.MaxBody = DefaultMaxBody
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics()
	}
	if o.BodyBudget <= 0 {
		o.BodyBudget = DefaultBodyBudget
	}
	o.BodyBudget = max(o.BodyBudget, o.MaxBody+1)
	if o.PeerBodyBudget <= 0 {
		o.PeerBodyBudget = DefaultPeerBodyBudget(o.BodyBudget)
	}
	o.PeerBodyBudget = min(max(o.PeerBodyBudget, o.MaxBody+1), o.BodyBudget)
	if o.BodyTimeout <= 0 {
		o.BodyTimeout = DefaultBodyTimeout
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.Draining == nil {
		o.Draining = new(atomic.Bool)
	}
	if o.ReadWait <= 0 {
		o.ReadWait = DefaultReadWait
	}
	if o.Guide == nil {
		o.Guide = kycd.DefaultGuidance().For
	}
	if o.App == nil {
		o.App = &app.Service{Store: o.Store, Now: o.Now, Logger: o.Logger, Sinks: o.Sinks}
		if wake := o.WakeDispatcher; wake != nil {
			o.App.Wake = func(...string) { wake() }
		}
	}
	if o.AdminTokenHash == "" && o.AdminToken != "" {
		o.AdminTokenHash = kycd.TokenHash(o.AdminToken)
	}
	o.AdminToken = "" // only the hash is kept
	o.touches = &touches{last: map[string]time.Time{}}
	mux := http.NewServeMux()
	addRoutes(mux, o)
	routed := o.Metrics.instrument(mux)
	return forwarded(o.TrustedProxies, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = withRequestID(w, r)
		// While draining, every answer closes its connection, so that no
		// keep-alive client sends its next request on a connection that
		// the shutdown is about to close. (Closing idle connections at once
		// instead would race a client that is just sending on one.)
		if o.Draining.Load() {
			w.Header().Set("Connection", "close")
		}
		// An API answer may hold personal data (sessions, subjects,
		// events, deliveries, exports, the audit log), and so may its
		// problem: no cache, shared or the browser's, keeps one.
		if strings.HasPrefix(r.URL.Path, "/api/") {
			w.Header().Set("Cache-Control", "no-store")
		}
		routed.ServeHTTP(w, r)
	}))
}

// withRequestID gives the request an id, named by every log line written
// while serving it and echoed in the answer's X-Request-Id: the client's
// own X-Request-Id (a proxy's, a caller's) when it is sane
// (requestid.Sane), so that the lines of its logs and kycd's meet; a new
// one otherwise.
func withRequestID(w http.ResponseWriter, r *http.Request) *http.Request {
	id := r.Header.Get(requestid.Header)
	if !requestid.Sane(id) {
		id = uuid.NewString()
	}
	w.Header().Set(requestid.Header, id)
	return r.WithContext(requestid.With(r.Context(), id))
}

// bearer returns the credentials of an Authorization header of the Bearer
// scheme. The scheme is case-insensitive and may be followed by several
// spaces (RFC 9110, section 11.4).
func bearer(h string) (string, bool) {
	scheme, cred, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimLeft(cred, " "), true
}

// readYourWrites makes a read reflect every event acknowledged before it
// began: it waits, at most ReadWait, for their projection, and says so in
// StaleHeader when the wait ran out.
func readYourWrites(o Options, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caught, err := o.Ingester.CaughtUp(r.Context(), o.ReadWait)
		if err != nil && r.Context().Err() == nil {
			o.Logger.WarnContext(r.Context(), "could not check the projection's progress", "err", err)
		}
		if !caught {
			w.Header().Set(StaleHeader, "projection behind; events acknowledged before this request may be missing")
		}
		next.ServeHTTP(w, r)
	})
}

// isJSON reports whether a Content-Type names JSON (application/json or any
// application/*+json), ignoring parameters such as charset.
func isJSON(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// pathID is the {id} of a request's path. Ids that are UUIDs are stored in
// canonical lower case, so an upper-case spelling finds them too.
func pathID(r *http.Request) string {
	id := r.PathValue("id")
	if u, err := uuid.Parse(id); err == nil {
		return u.String()
	}
	return id
}
