package emulator

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Generation is the envelope generation of the webhooks the emulator sends
// (ralio/CONTRACT.md, "Envelope generations").
type Generation string

// Envelope generations. GenerationMixed picks A, B or C at random for each
// event.
const (
	GenerationA     Generation = "A"
	GenerationB     Generation = "B"
	GenerationC     Generation = "C"
	GenerationMixed Generation = "mixed"
)

// ParseGeneration reads A, B, C (either case) or mixed.
func ParseGeneration(s string) (Generation, error) {
	switch g := Generation(strings.ToUpper(s)); g {
	case GenerationA, GenerationB, GenerationC:
		return g, nil
	}
	if strings.EqualFold(s, string(GenerationMixed)) {
		return GenerationMixed, nil
	}
	return "", fmt.Errorf("unknown envelope generation %q: want A, B, C or mixed", s)
}

// Defaults of Options, chosen to look like a real provider's retries: the
// first retry a minute after a failure, the last of ten attempts about
// 8.5 hours after the first.
const (
	DefaultRetryBase   = time.Minute
	DefaultMaxAttempts = 10
	DefaultTimeout     = 60 * time.Second // Ralio waits 60 s for an answer
)

// maxRetryDelay bounds one wait between attempts, so that a large
// MaxAttempts does not overflow the doubling.
const maxRetryDelay = 24 * time.Hour

// Options configure an Emulator. WebhookURL, Secret and APIKey are required.
type Options struct {
	// WebhookURL receives every webhook, as the URL a merchant registers in
	// Ralio's portal.
	WebhookURL string
	// Secret signs every webhook (X-Signature, hex HMAC-SHA256 of the body).
	Secret string
	// APIKey is the bearer token the REST API requires.
	APIKey string

	// RetryBase is the wait after the first failed attempt; each further
	// failure doubles it (DefaultRetryBase when zero).
	RetryBase time.Duration
	// Backoff, when set, replaces the doubling of RetryBase: the wait after
	// the n-th failed attempt (n ≥ 1).
	Backoff func(n int) time.Duration
	// MaxAttempts is how many attempts a webhook gets before the emulator
	// gives up on it (DefaultMaxAttempts when zero).
	MaxAttempts int
	// Timeout is how long an attempt waits for the answer (DefaultTimeout
	// when zero); it is the default client's, unused when Client is set.
	Timeout time.Duration

	// Duplicates is the probability, in [0, 1], that a delivered webhook is
	// sent once more, as after an answer Ralio did not see.
	Duplicates float64
	// Reorder holds each new webhook for a random time in [0, Reorder)
	// before its first attempt, so that events arrive out of order.
	Reorder time.Duration
	// Generation is the envelope of the webhooks (GenerationC when empty).
	Generation Generation
	// Seed seeds every random choice: duplicates, holding times, mixed
	// generations. Identifiers are random whatever the seed, so that two
	// runs never send different events under one id.
	Seed uint64

	// Now is the clock (time.Now when nil). Timestamps are taken from it;
	// Run waits on real timers, so tests with a fake clock call
	// DeliverDue instead of Run.
	Now func() time.Time
	// Client sends the webhooks (when nil, a client with Timeout that does
	// not follow redirects).
	Client *http.Client
	// Logger receives one line per attempt, without bodies (discarded when
	// nil).
	Logger *slog.Logger
}

// Emulator is a local Ralio: a REST API for KYC sessions, a control API to
// drive them, and the webhooks Ralio would send. Its state is in memory.
type Emulator struct {
	opt    Options
	client *http.Client
	log    *slog.Logger
	// wake tells Run that something was scheduled or finished.
	wake chan struct{}

	mu         sync.Mutex
	rng        *rand.Rand
	last       time.Time // the last timestamp handed out
	nextNumber int64     // kycId, kybId and businessUser.id counter
	sessions   map[string]*session
	bySubject  map[string][]*session // user or related-party id → sessions, oldest first
	kycIDs     map[string]int64      // subject id → kycId
	businesses map[string]*business
	deliveries map[string]*delivery // by event id
	sent       []*delivery          // in order of emission
	scheduled  map[*delivery]struct{}
	sending    int
}

// New returns an Emulator; it sends nothing until Run (or DeliverDue).
func New(o Options) (*Emulator, error) {
	u, err := url.Parse(o.WebhookURL)
	switch {
	case o.WebhookURL == "":
		return nil, errors.New("emulator: no webhook URL")
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return nil, fmt.Errorf("emulator: webhook URL %q: want http(s)://HOST/PATH", o.WebhookURL)
	case o.Secret == "":
		return nil, errors.New("emulator: no webhook secret")
	case o.APIKey == "":
		return nil, errors.New("emulator: no API key")
	case o.Duplicates < 0 || o.Duplicates > 1:
		return nil, fmt.Errorf("emulator: duplicate probability %v: want 0 to 1", o.Duplicates)
	case o.Reorder < 0 || o.RetryBase < 0 || o.MaxAttempts < 0 || o.Timeout < 0:
		return nil, errors.New("emulator: negative reorder, retry base, attempts or timeout")
	}
	if o.Generation == "" {
		o.Generation = GenerationC
	}
	if _, err := ParseGeneration(string(o.Generation)); err != nil {
		return nil, fmt.Errorf("emulator: %w", err)
	}
	if o.RetryBase == 0 {
		o.RetryBase = DefaultRetryBase
	}
	if o.Backoff == nil {
		o.Backoff = doubling(o.RetryBase)
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	client := o.Client
	if client == nil {
		client = &http.Client{
			Timeout:   o.Timeout,
			Transport: http.DefaultTransport.(*http.Transport).Clone(),
			// A redirect is answered like a 4xx (dropped), not followed:
			// the registered URL is wrong, and following a 302 would turn
			// the POST into a GET.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Emulator{
		opt:        o,
		client:     client,
		log:        log,
		wake:       make(chan struct{}, 1),
		rng:        rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15)), //nolint:gosec // G404: a seeded source so a run can be replayed; it picks outcomes, never secrets
		nextNumber: 1000,
		sessions:   map[string]*session{},
		bySubject:  map[string][]*session{},
		kycIDs:     map[string]int64{},
		businesses: map[string]*business{},
		deliveries: map[string]*delivery{},
		scheduled:  map[*delivery]struct{}{},
	}, nil
}

// doubling is the default backoff: base, 2·base, 4·base, … up to
// maxRetryDelay, without jitter, so a schedule can be read off the flags.
func doubling(base time.Duration) func(int) time.Duration {
	return func(n int) time.Duration {
		d := base
		for i := 1; i < n && d < maxRetryDelay; i++ {
			d *= 2
		}
		return min(d, maxRetryDelay)
	}
}

// CloseIdleConnections closes the keep-alive connections of the webhook
// client, so nothing of the emulator outlives it.
func (e *Emulator) CloseIdleConnections() { e.client.CloseIdleConnections() }

// stamp returns the time of a new fact: the clock's time at millisecond
// precision (what Ralio's timestamps carry), moved a millisecond past the
// previous one when the clock has not advanced. Timestamps therefore
// strictly increase across the emulator, and "newest by timestamp" is the
// order in which the emulator made things happen. Callers hold e.mu.
func (e *Emulator) stamp() time.Time {
	t := e.opt.Now().UTC().Truncate(time.Millisecond)
	if !t.After(e.last) {
		t = e.last.Add(time.Millisecond)
	}
	e.last = t
	return t
}

// number hands out the integer ids Ralio uses (kycId, kybId,
// businessUser.id). Callers hold e.mu.
func (e *Emulator) number() int64 {
	e.nextNumber++
	return e.nextNumber
}

// kycID is the subject's kycId, assigned on first use. Callers hold e.mu.
func (e *Emulator) kycID(subjectID string) int64 {
	id, ok := e.kycIDs[subjectID]
	if !ok {
		id = e.number()
		e.kycIDs[subjectID] = id
	}
	return id
}

// business returns the business user uid, created on first use. Callers
// hold e.mu.
func (e *Emulator) business(uid string) *business {
	b, ok := e.businesses[uid]
	if !ok {
		b = &business{uid: uid, id: e.number(), kybID: e.number()}
		e.businesses[uid] = b
	}
	return b
}

// timeFormat is how Ralio writes times: ISO 8601, milliseconds, Z.
const timeFormat = "2006-01-02T15:04:05.000Z"

func formatTime(t time.Time) string { return t.UTC().Format(timeFormat) }
