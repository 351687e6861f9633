package reconcile

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/app"
	"github.com/kycd/kycd/internal/ingest"
)

// Store is what reconciliation reads and records.
type Store interface {
	app.SessionReader
	Session(ctx context.Context, id string) (*kycd.Session, error)
	SaveReconciliation(ctx context.Context, r *kycd.Reconciliation) error
	Reconciliations(ctx context.Context, limit int) ([]*kycd.Reconciliation, error)
}

// Receiver takes a body into the event log, as the webhook does: the
// ingest.Ingester.
type Receiver interface {
	Receive(ctx context.Context, body []byte) (ingest.Result, error)
}

// Reconciler compares kycd's sessions with Ralio's and appends what kycd
// missed. A run is idempotent: the events it makes have ids derived from
// Ralio's state-history entries, so a second run finds them duplicates, and
// a late webhook of the same transition changes nothing (kycd.PlanBatch).
type Reconciler struct {
	Store    Store
	Receiver Receiver
	Client   *Client
	Logger   *slog.Logger
	Metrics  *Metrics         // may be nil
	Now      func() time.Time // time.Now when nil
	// Timeout is a run's deadline (none when 0): a run still going then
	// stops, interrupted, and the next resumes where it stopped.
	Timeout time.Duration
	// Progress, when set, is called before the first user (done 0) and
	// after each user with the run so far, the users done and the users
	// of the run.
	Progress func(run *kycd.Reconciliation, done, total int)
}

// maxErrors is the most errors a run's record keeps; the last entry then
// counts the others.
const maxErrors = 100

// Run reconciles every user kycd knows a session of, and users, in id
// order. A run that an earlier one left interrupted resumes after the last
// user it finished; a user that stopped the last two runs (each
// interrupted on it, the second without finishing any user) is skipped,
// recorded as an error, so that no user holds runs back for ever.
//
// A run ends done when every user was checked, failed when a user or
// session could not be checked after retries (Errors says which; a user
// Ralio does not know is no failure) or when Ralio refused the API key,
// and interrupted when ctx ended or Timeout passed. It returns the run's
// record, also saved in the store; the error is the one that stopped it
// (nil for done and failed).
func (r *Reconciler) Run(ctx context.Context, users []string) (*kycd.Reconciliation, error) {
	now := r.now()
	run := &kycd.Reconciliation{ID: uuid.NewString(), StartedAt: now, State: kycd.ReconcileRunning, Repaired: []string{}, Errors: []string{}}
	all, err := r.users(ctx, users)
	if err != nil {
		return nil, fmt.Errorf("reconcile: list users: %w", err)
	}
	var skipped string
	if last, err := r.Store.Reconciliations(ctx, 2); err == nil && len(last) > 0 && last[0].State == kycd.ReconcileInterrupted {
		run.Cursor = last[0].Cursor
		i := 0
		if run.Cursor != "" {
			i, _ = slices.BinarySearch(all, run.Cursor)
			for i < len(all) && all[i] <= run.Cursor {
				i++
			}
		}
		if len(last) == 2 && last[1].State == kycd.ReconcileInterrupted && last[1].Cursor == last[0].Cursor && last[0].Users == 0 && i < len(all) {
			skipped = all[i]
			i++
		}
		all = all[i:]
	}
	if err := r.Store.SaveReconciliation(ctx, run); err != nil {
		return nil, fmt.Errorf("reconcile: %w", err)
	}
	if skipped != "" {
		r.fail(run, fmt.Sprintf("user %s: skipped: the last two runs stopped on it (the next run tries it again)", skipped))
		run.Cursor = skipped
	}
	runCtx := ctx
	if r.Timeout > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, r.Timeout)
		defer cancel()
	}
	if r.Progress != nil {
		r.Progress(run, 0, len(all))
	}
	var stop error
	for i, uid := range all {
		if err := r.user(runCtx, run, uid); err != nil {
			if errors.Is(err, ErrUnauthorized) {
				r.fail(run, err.Error())
				break
			}
			stop = err
			if ctx.Err() == nil && runCtx.Err() != nil {
				stop = fmt.Errorf("the run's deadline (%s) passed: %w", r.Timeout, err)
				r.fail(run, fmt.Sprintf("user %s: %v", uid, stop))
			}
			break
		}
		run.Users++
		run.Cursor = uid
		if i%20 == 19 {
			r.save(ctx, run)
		}
		if r.Progress != nil {
			r.Progress(run, i+1, len(all))
		}
	}
	run.FinishedAt = r.now()
	switch {
	case stop != nil:
		run.State = kycd.ReconcileInterrupted
	case len(run.Errors) > 0:
		run.State = kycd.ReconcileFailed
	default:
		run.State = kycd.ReconcileDone
	}
	r.save(context.WithoutCancel(ctx), run)
	if m := r.Metrics; m != nil {
		m.Runs.WithLabelValues(run.State).Inc()
		m.LastRun.Set(float64(run.FinishedAt.UnixMilli()) / 1000)
		if run.State == kycd.ReconcileDone {
			m.LastSuccess.Set(float64(run.FinishedAt.UnixMilli()) / 1000)
		}
		m.Repaired.Add(float64(len(run.Repaired)))
		m.Drift.Add(float64(run.Drift))
	}
	r.Logger.Info("reconciliation", "state", run.State, "users", run.Users, "sessions_checked", run.Checked,
		"drift", run.Drift, "repaired", len(run.Repaired), "errors", len(run.Errors))
	return run, stop
}

// fail records one error of the run: the first maxErrors-1 as they are,
// then a count of the others.
func (r *Reconciler) fail(run *kycd.Reconciliation, msg string) {
	if r.Metrics != nil {
		r.Metrics.Errors.Inc()
	}
	switch n := len(run.Errors); {
	case n < maxErrors-1:
		run.Errors = append(run.Errors, msg)
	case n == maxErrors-1:
		run.Errors = append(run.Errors, "1 more error")
	default:
		var more int
		if _, err := fmt.Sscanf(run.Errors[n-1], "%d more", &more); err != nil {
			more = 0 // not a count line: this one starts the count
		}
		run.Errors[n-1] = fmt.Sprintf("%d more errors", more+1)
	}
}

func (r *Reconciler) save(ctx context.Context, run *kycd.Reconciliation) {
	if err := r.Store.SaveReconciliation(ctx, run); err != nil {
		r.Logger.Warn("could not record the reconciliation's progress", "err", err)
	}
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// users returns, sorted and once each, the users and related parties of
// kycd's sessions and the users given.
func (r *Reconciler) users(ctx context.Context, given []string) ([]string, error) {
	seen := map[string]bool{}
	for _, u := range given {
		seen[u] = true
	}
	cursor := ""
	for {
		page, err := app.ListSessions(ctx, r.Store, kycd.SessionFilter{Limit: 500, Cursor: cursor})
		if err != nil {
			return nil, err
		}
		for _, s := range page.Sessions {
			// A related party's sessions are listed under its id like a
			// user's (an unknown id is a 404, skipped).
			if s.Subject.Type == kycd.SubjectUser || s.Subject.Type == kycd.SubjectRelatedParty {
				seen[s.Subject.ID] = true
			}
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	out := make([]string, 0, len(seen))
	for u := range seen {
		out = append(out, u)
	}
	slices.Sort(out)
	return out, nil
}

// user reconciles one user's sessions. Errors about the user are kept in
// the run; only a cancelled ctx and a refused API key stop the run.
func (r *Reconciler) user(ctx context.Context, run *kycd.Reconciliation, uid string) error {
	sessions, err := r.Client.Sessions(ctx, uid)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, ErrUnauthorized) {
			return err
		}
		if !errors.Is(err, ErrNotFound) {
			r.fail(run, fmt.Sprintf("user %s: %v", uid, err))
		}
		return nil
	}
	for _, rs := range sessions {
		run.Checked++
		if statusOf(rs.State) == "" {
			continue // NOT_STARTED, STARTED, unknown: nothing to reconcile
		}
		// A session id goes into requests, the log and the run's record
		// (printed by kycd reconcile): only a UUID, as Ralio's contract
		// says, is taken; anything else is quoted in the error.
		if _, err := uuid.Parse(rs.ID); err != nil || len(rs.ID) != 36 {
			r.fail(run, fmt.Sprintf("user %s: a session whose id is not a UUID: %q", uid, rs.ID))
			continue
		}
		repaired, err := r.session(ctx, run, uid, rs)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, ErrUnauthorized) {
				return err
			}
			r.fail(run, fmt.Sprintf("session %s: %v", rs.ID, err))
			continue
		}
		if repaired {
			run.Repaired = append(run.Repaired, rs.ID)
		}
	}
	return nil
}

// session appends the transitions of one Ralio session that kycd's
// history lacks, and reports whether there were any.
func (r *Reconciler) session(ctx context.Context, run *kycd.Reconciliation, uid string, rs Session) (bool, error) {
	status := statusOf(rs.State)
	if status == "" {
		return false, nil // NOT_STARTED, STARTED: no event of Ralio's sets them for a user's session
	}
	cur, err := r.Store.Session(ctx, rs.ID)
	if err != nil && kycd.ErrorCode(err) != kycd.ENOTFOUND {
		return false, err
	}
	updated, _ := time.Parse(time.RFC3339Nano, rs.UpdatedAt)
	if cur != nil && cur.Status == status && statusTimestamp(cur).Equal(updated) {
		return false, nil
	}
	if cur == nil || cur.Status != status {
		run.Drift++
	}
	logs, err := r.Client.History(ctx, uid, rs.ID)
	if err != nil {
		return false, fmt.Errorf("state history: %w", err)
	}
	checks, err := r.Client.Checks(ctx, uid, rs.ID)
	if err != nil {
		return false, fmt.Errorf("checks: %w", err)
	}
	type transition struct {
		log    StateLog
		status kycd.Status
		at     time.Time
	}
	var ts []transition
	for _, l := range logs {
		st := statusOf(l.NewState)
		at, err := time.Parse(time.RFC3339Nano, l.CreatedAt)
		if st == "" || err != nil {
			continue
		}
		// Compared with history times, which kycd keeps to this precision.
		ts = append(ts, transition{l, st, kycd.EventTime(at)})
	}
	slices.SortStableFunc(ts, func(a, b transition) int { return a.at.Compare(b.at) })
	known := map[string]bool{}
	if cur != nil {
		for _, h := range cur.History {
			known[string(h.Status)+"|"+h.Timestamp.UTC().Format(time.RFC3339Nano)] = true
		}
	}
	appended := false
	for i, t := range ts {
		if known[string(t.status)+"|"+t.at.UTC().Format(time.RFC3339Nano)] {
			continue
		}
		var cs []Check
		if i == len(ts)-1 && t.status == status {
			cs = checks // Ralio gives the checks of the session's current state only
		}
		body, err := envelope(rs.ID, uid, t.log, t.status, cs)
		if err != nil {
			return appended, err
		}
		res, err := r.Receiver.Receive(ctx, body)
		if err != nil {
			return appended, fmt.Errorf("record transition %s: %w", t.log.ID, err)
		}
		appended = appended || !res.Duplicate
	}
	return appended, nil
}

// statusTimestamp is Ralio's timestamp of the event that set a session's
// status: its statusAt, unless the event was stamped too far after its
// receipt and is ordered earlier (kycd.OrderingTime); Ralio's updatedAt is
// the former.
func statusTimestamp(s *kycd.Session) time.Time {
	for _, h := range s.History {
		if h.EventID == s.StatusEventID {
			return h.Timestamp
		}
	}
	return s.StatusAt
}

// statusOf maps a Ralio state, by name or by its numeric code, to the
// status kycd keeps; "" for states no event sets (NOT_STARTED of a user's
// session, STARTED) and for unknown ones.
func statusOf(raw json.RawMessage) kycd.Status {
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		var n int
		if json.Unmarshal(raw, &n) != nil {
			return ""
		}
		v = strconv.Itoa(n)
	}
	switch strings.ToUpper(strings.TrimSpace(v)) {
	case "VERIFIED", "3":
		return kycd.StatusVerified
	case "REVIEW", "4":
		return kycd.StatusReview
	case "REJECTED", "5":
		return kycd.StatusRejected
	case "EXPIRED", "6":
		return kycd.StatusExpired
	}
	return ""
}

// eventTypes is the Ralio event that announces each status.
var eventTypes = map[kycd.Status]string{
	kycd.StatusVerified: "kyc_session_verified",
	kycd.StatusReview:   "kyc_session_manual_review",
	kycd.StatusRejected: "kyc_session_failed",
	kycd.StatusExpired:  "kyc_session_expired",
}

var eventNamespace = uuid.MustParse("0c3e6f1a-7b2d-4f5e-9a8c-1d2e3f4a5b6c")

// envelope is the webhook Ralio would have sent for a transition, in
// envelope generation A, marked as kycd's own (kycdSource): it goes through
// the log, and is decoded again from it, like any webhook. Its id derives
// from the state-history entry, so every run makes the same event.
func envelope(sessionID, userID string, l StateLog, st kycd.Status, checks []Check) ([]byte, error) {
	type reason struct {
		Type     string `json:"type"`
		Code     string `json:"code"`
		Message  string `json:"message"`
		Category string `json:"category,omitempty"`
	}
	type check struct {
		Type    string          `json:"type"`
		State   json.RawMessage `json:"state"`
		Reasons []reason        `json:"reasons"`
	}
	cs := []check{}
	for _, c := range checks {
		k := check{Type: c.Type, State: c.State, Reasons: []reason{}}
		for _, r := range c.RefusedReasons {
			rr := reason{Type: r.Type, Code: r.Code, Message: r.Message}
			if r.MappedError != nil {
				rr.Category = r.MappedError.Category
			}
			k.Reasons = append(k.Reasons, rr)
		}
		if len(bytes.TrimSpace(k.State)) == 0 {
			k.State = json.RawMessage(`"Validated"`)
			if len(k.Reasons) > 0 {
				k.State = json.RawMessage(`"Refused"`)
			}
		}
		cs = append(cs, k)
	}
	return json.Marshal(struct {
		ID         string `json:"id"`
		Event      string `json:"event"`
		Timestamp  string `json:"timestamp"`
		KycdSource string `json:"kycdSource"`
		Data       struct {
			SessionID string  `json:"sessionId"`
			UserID    string  `json:"userId"`
			Checks    []check `json:"checks"`
		} `json:"data"`
	}{
		ID:         uuid.NewSHA1(eventNamespace, []byte(sessionID+"|"+l.ID+"|"+l.CreatedAt)).String(),
		Event:      eventTypes[st],
		Timestamp:  l.CreatedAt,
		KycdSource: kycd.SourceReconciliation,
		Data: struct {
			SessionID string  `json:"sessionId"`
			UserID    string  `json:"userId"`
			Checks    []check `json:"checks"`
		}{sessionID, userID, cs},
	})
}

// Metrics are reconciliation's Prometheus metrics.
type Metrics struct {
	Runs     *prometheus.CounterVec
	Repaired prometheus.Counter
	Drift    prometheus.Counter
	Errors   prometheus.Counter
	// LastRun and LastSuccess are when the last run of this process ended,
	// and the last that ended done: 0 until then, so that "never ran" shows.
	LastRun     prometheus.Gauge
	LastSuccess prometheus.Gauge
	// Interval is serve's --reconcile-every in seconds, 0 when it never
	// reconciles: what the alerts measure the last run against.
	Interval prometheus.Gauge
}

// NewMetrics registers reconciliation's metrics on reg, every series
// present (at 0) before a first run.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kycd_reconcile_runs_total",
			Help: "Reconciliation runs by how they ended (done, failed: a user or session could not be checked, interrupted: stopped by a shutdown or the run's deadline).",
		}, []string{"state"}),
		Repaired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kycd_reconcile_sessions_repaired_total",
			Help: "Sessions that reconciliation found missing transitions for and repaired.",
		}),
		Drift: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kycd_reconcile_drift_total",
			Help: "Sessions whose state in Ralio differed from kycd's when reconciliation looked.",
		}),
		Errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kycd_reconcile_errors_total",
			Help: "Users and sessions reconciliation could not check after retries, and runs stopped (a refused API key, the run's deadline, a user skipped).",
		}),
		LastRun: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kycd_reconcile_last_run_timestamp_seconds",
			Help: "When the last reconciliation run of this process ended, however it ended (Unix time); 0 before the first.",
		}),
		LastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kycd_reconcile_last_success_timestamp_seconds",
			Help: "When the last reconciliation run of this process that checked every user ended (state done; Unix time); 0 before the first.",
		}),
		Interval: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kycd_reconcile_interval_seconds",
			Help: "How often serve reconciles (--reconcile-every), in seconds; 0 when it does not.",
		}),
	}
	for _, state := range []string{kycd.ReconcileDone, kycd.ReconcileFailed, kycd.ReconcileInterrupted} {
		m.Runs.WithLabelValues(state)
	}
	reg.MustRegister(m.Runs, m.Repaired, m.Drift, m.Errors, m.LastRun, m.LastSuccess, m.Interval)
	return m
}
