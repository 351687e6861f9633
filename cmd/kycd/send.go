package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/ingest"
	"github.com/kycd/kycd/ralio"
)

type sendOptions struct {
	url      string
	typ      string
	file     string
	newID    bool
	attempts int
	backoff  time.Duration

	// load mode
	count       int
	concurrency int
	rate        float64
	duration    time.Duration
}

func sendCmd(e *env) *cobra.Command {
	var o sendOptions
	cmd := &cobra.Command{
		Use:   "send",
		Short: "Send a signed Ralio event to a kycd (a sample of any type, or a file), retrying like Ralio",
		Long: "Send signs an event with the Ralio secret and POSTs it to kycd's webhook, retrying 5xx answers and\n" +
			"network errors with exponential backoff as Ralio does (a refused connection fails at once: nothing\n" +
			"listens at --addr). Without --ralio-secret it uses the secret that kycd serve generated in the same\n" +
			"database. Once kycd took the event, it prints the outcome read from that database: applied, stale\n" +
			"(older than the event that set the session: nothing changed), unhandled or duplicate.\n\n" +
			"Sample types (Ralio's examples, ralio/testdata): " + strings.Join(ralio.SampleTypes(), ", "),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.send(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.url, "url", "", "webhook URL (default http://ADDR/webhooks/ralio from --addr)")
	f.StringVar(&o.typ, "type", ralio.TypeSessionFailed, "event type of the sample to send")
	f.StringVar(&o.file, "file", "", "send this file's bytes instead of a sample (- for standard input)")
	f.BoolVar(&o.newID, "new-id", false, "give the event a fresh id and the current time, so it is a new event")
	f.IntVar(&o.attempts, "attempts", 6, "attempts before giving up on 5xx answers and network errors")
	f.DurationVar(&o.backoff, "backoff", 500*time.Millisecond, "delay before the first retry; doubles each time")
	f.IntVar(&o.count, "count", 1, "load mode when over 1: send this many new events (fresh event and session ids), once each, and report throughput and latency")
	f.IntVar(&o.concurrency, "concurrency", 8, "load mode: requests in flight at once")
	f.Float64Var(&o.rate, "rate", 0, "load mode: send this many events a second on a fixed schedule whatever the answers, latency counted from each event's due time (0: as fast as answers allow)")
	f.DurationVar(&o.duration, "duration", 0, "load mode: send for this long instead of --count events")
	e.use(cmd, "database", "json")
	e.useAs(cmd, "addr", "address of the kycd serve to send to, HOST:PORT")
	e.useAs(cmd, "ralio-secret", "secret to sign the event with, one that kycd serve takes (default: the one serve generated and kept in --database)")
	return cmd
}

func (e *env) send(ctx context.Context, o sendOptions) (err error) {
	if o.attempts < 1 {
		return usagef("--attempts %d: must be at least 1", o.attempts)
	}
	if o.count < 1 {
		return usagef("--count %d: must be at least 1", o.count)
	}
	body, err := e.sendBody(o)
	if err != nil {
		return err
	}
	// The database holds the secret serve generated, and tells what became
	// of the event; without --ralio-secret it is needed.
	store, storeErr := e.openStore(ctx, existing)
	if store != nil {
		defer closeStore(store, &err)
	}
	secret, err := e.ralioSecret(ctx, store, storeErr)
	if err != nil {
		return err
	}
	url := o.url
	if url == "" {
		url = "http://" + e.cfg.Addr + "/webhooks/ralio"
	}
	if o.count > 1 || o.duration != 0 {
		return e.load(ctx, o, body, secret, url)
	}
	// Progress goes to stderr with --json, so stdout is one JSON document.
	progress := e.stdout
	if e.cfg.JSON {
		progress = e.stderr
	}
	sig := ralio.Sign(body, secret)
	client := &http.Client{Timeout: 60 * time.Second} // Ralio waits 60 s
	delay := o.backoff
	for attempt := 1; ; attempt++ {
		status, answer, retryAfter, err := post(ctx, client, url, body, sig)
		switch {
		case errors.Is(err, syscall.ECONNREFUSED):
			// Nothing listens there: no retry brings it up.
			where := "--addr " + e.cfg.Addr
			if o.url != "" {
				where = "--url"
			}
			return fmt.Errorf("%s: connection refused: nothing listens there; check %s, and that kycd serve runs", url, where)
		case err != nil:
			fmt.Fprintf(progress, "attempt %d: %s\n", attempt, shown(err.Error()))
		case status >= 500:
			fmt.Fprintf(progress, "attempt %d: %d %s\n", attempt, status, http.StatusText(status))
		default:
			fmt.Fprintf(progress, "attempt %d: %d %s %s\n", attempt, status, http.StatusText(status), shown(string(bytes.TrimSpace(answer))))
			if status/100 != 2 {
				return refusal(status)
			}
			return e.sent(ctx, store, body, sendResult{Status: status, Attempts: attempt, Answer: json.RawMessage(bytes.TrimSpace(answer))})
		}
		if attempt >= o.attempts {
			return fmt.Errorf("gave up after %d attempts", attempt)
		}
		wait := delay
		if retryAfter > wait {
			wait = retryAfter
		}
		fmt.Fprintf(progress, "retrying in %s\n", wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		delay *= 2
	}
}

// refusal says what a 4xx answer means for the event sent.
func refusal(status int) error {
	err := fmt.Errorf("the event was refused with %d; Ralio would not retry it", status)
	switch status {
	case http.StatusBadRequest, http.StatusConflict:
		return fmt.Errorf("%w; kycd keeps it in its quarantine (kycd quarantine list)", err)
	case http.StatusUnauthorized:
		return fmt.Errorf("%w; sign with a secret kycd serve takes (--ralio-secret, or none to use the one serve generated in --database)", err)
	}
	return err
}

// sendResult is what became of an event kycd took.
type sendResult struct {
	Status   int             `json:"status"`
	Attempts int             `json:"attempts"`
	Answer   json.RawMessage `json:"answer"`
	EventID  string          `json:"eventId,omitempty"`
	// Outcome is applied, stale, unhandled or duplicate; empty when the
	// database (--database) could not tell.
	Outcome string `json:"outcome,omitempty"`
	Detail  string `json:"detail,omitempty"`
}

// sent reports the outcome of an event kycd answered 2xx. The webhook only
// says whether it was a duplicate; what it did (applied, stale, unhandled)
// is read from the database once the projection has taken it in.
func (e *env) sent(ctx context.Context, store kycd.Store, body []byte, r sendResult) error {
	if ev, err := ralio.Parse(body); err == nil {
		r.EventID = ev.ID
	}
	var answer struct{ Duplicate bool }
	// An answer that is not kycd's JSON says nothing of a duplicate.
	_ = json.Unmarshal(r.Answer, &answer)
	switch {
	case answer.Duplicate:
		r.Outcome, r.Detail = "duplicate", "recorded before; this copy has no effect"
	case store != nil && r.EventID != "":
		r.Outcome, r.Detail = e.outcome(ctx, store, r.EventID)
	}
	if e.cfg.JSON {
		return printJSON(e.stdout, r)
	}
	if r.Outcome != "" {
		fmt.Fprintf(e.stdout, "outcome: %s: %s\n", shown(r.Outcome), shown(r.Detail))
	}
	return nil
}

// outcome reads what an event did, waiting a little for its projection.
func (e *env) outcome(ctx context.Context, store kycd.Store, id string) (outcome, detail string) {
	if caught, err := ingest.CaughtUp(ctx, store, cliReadWait, nil); err != nil || !caught {
		fmt.Fprintln(e.stderr, "note: the event is not projected yet (kycd serve projects it), so its outcome is not known; kycd events get "+shown(id)+" shows it later")
		return "", ""
	}
	ev, err := store.Event(ctx, id)
	if err != nil {
		fmt.Fprintf(e.stderr, "note: cannot tell the event's outcome: %v (is --database %s the database of the kycd it went to?)\n", shown(describe(err)), shown(kycd.RedactURL(e.cfg.Database)))
		return "", ""
	}
	switch ev.Outcome {
	case kycd.OutcomeApplied:
		if s, err := store.Session(ctx, ev.SessionID); ev.SessionID != "" && err == nil {
			return ev.Outcome, fmt.Sprintf("session %s is %s", s.ID, s.Status)
		}
		return ev.Outcome, "it took effect and notified"
	case kycd.OutcomeStale:
		return ev.Outcome, fmt.Sprintf("a newer event had already set session %s; kept in its history, nothing changed", ev.SessionID)
	case kycd.OutcomeUnhandled:
		return ev.Outcome, fmt.Sprintf("kycd keeps events of type %s but acts on none", ev.Type)
	}
	return ev.Outcome, ""
}

func post(ctx context.Context, client *http.Client, url string, body []byte, sig string) (int, []byte, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, 0, fmt.Errorf("--url %q: %w", url, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(ralio.SignatureHeader, sig)
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, 0, err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	return resp.StatusCode, answer, time.Duration(secs) * time.Second, nil
}

// sendBody returns the bytes to send: a file, or a sample by type.
func (e *env) sendBody(o sendOptions) ([]byte, error) {
	var body []byte
	var err error
	switch {
	case o.file == "-":
		body, err = io.ReadAll(e.stdin)
	case o.file != "":
		body, err = os.ReadFile(o.file)
	default:
		body, err = ralio.Sample(o.typ)
		if err != nil {
			return nil, fmt.Errorf("--type %q: no sample of that type; choose one of %s, or send your own with --file", o.typ, strings.Join(ralio.SampleTypes(), ", "))
		}
	}
	if err != nil {
		return nil, fmt.Errorf("--file: %w", err)
	}
	if o.newID {
		return freshen(body, false)
	}
	return body, nil
}

// freshen gives an event a new id and the current time, and with
// newSession a new data.sessionId too (when it has one).
func freshen(body []byte, newSession bool) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("--new-id: the event is not a JSON object: %w", err)
	}
	idKey := "id"
	if _, ok := m["eventId"]; ok {
		idKey = "eventId"
	}
	m[idKey] = uuid.NewString()
	m["timestamp"] = time.Now().UTC().Format("2006-01-02T15:04:05.000Z")
	if data, ok := m["data"].(map[string]any); ok && newSession {
		if _, ok := data["sessionId"]; ok {
			data["sessionId"] = uuid.NewString()
		}
	}
	return json.Marshal(m)
}

// ralioSecret is the secret to sign with: the first configured one, or the
// one kycd serve generated in the database (store, which failed to open
// with storeErr).
func (e *env) ralioSecret(ctx context.Context, store kycd.Store, storeErr error) (string, error) {
	if len(e.cfg.RalioSecrets) > 0 {
		return e.cfg.RalioSecrets[0], nil
	}
	if store == nil {
		return "", fmt.Errorf("no Ralio secret: pass --ralio-secret (KYCD_RALIO_SECRETS), or run kycd serve once on this database so it generates one (%w)", storeErr)
	}
	secret, err := store.Setting(ctx, settingRalioSecret)
	if kycd.ErrorCode(err) == kycd.ENOTFOUND {
		return "", errors.New("no Ralio secret: pass --ralio-secret (KYCD_RALIO_SECRETS), or run kycd serve once on this database so it generates one")
	}
	return secret, err
}
